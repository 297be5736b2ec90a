"""fastkm._files: outputs written whole or not at all, never over a read-only file."""

import os
import stat

import pytest

from fastkm import _files


def test_check_writable(tmp_path):
    _files.check_writable(tmp_path / "new.txt")
    existing = tmp_path / "old.txt"
    existing.write_text("x")
    _files.check_writable(existing)
    os.chmod(existing, 0o444)
    with pytest.raises(_files.OutputError, match=r"old.txt: the file is read-only$"):
        _files.check_writable(existing)
    with pytest.raises(_files.OutputError, match="no such directory"):
        _files.check_writable(tmp_path / "missing" / "x.txt")
    with pytest.raises(_files.OutputError, match="it is a directory"):
        _files.check_writable(tmp_path)


def test_replacing_keeps_the_mode_and_cleans_up(tmp_path):
    target = tmp_path / "out.txt"
    with _files.replacing(target) as partial:
        assert os.path.dirname(partial) == str(tmp_path)
        open(partial, "w").write("one")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask
    os.chmod(target, 0o640)
    with _files.replacing(target) as partial:
        open(partial, "w").write("two")
    assert target.read_text() == "two" and stat.S_IMODE(os.stat(target).st_mode) == 0o640
    with pytest.raises(RuntimeError), _files.replacing(target) as partial:
        open(partial, "w").write("three")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "two" and sorted(os.listdir(tmp_path)) == ["out.txt"]
    # An OSError while writing names the target, on one line.
    with pytest.raises(_files.OutputError, match=r"^cannot write .*out.txt: No space left on device$"):
        with _files.replacing(target):
            raise OSError(28, "No space left on device")
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]


def test_a_folder_it_may_not_write_to():
    # /sys takes no new files, even from root.
    with pytest.raises(_files.OutputError, match=r"^cannot write /sys/fastkm-test.txt: "):
        with _files.replacing("/sys/fastkm-test.txt") as partial:
            open(partial, "w").write("x")


def test_symbolic_links(tmp_path):
    # A link to a file stays a link (the file is replaced); a dangling one is a one-line error.
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with _files.replacing(link) as partial:
        open(partial, "w").write("new")
    assert link.is_symlink() and real.read_text() == "new"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere.txt")
    with pytest.raises(_files.OutputError, match=r"dangling\.txt: No such file or directory"):
        _files.check_writable(dangling)
