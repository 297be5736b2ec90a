"""Output files: written whole or not at all, never over a read-only file, with one-line errors.

Every file fastkm writes (``fastkm quantize``'s images and label masks,
``fastkm bench``'s JSON, markdown and plot) goes through ``replacing``: the
content is written to a hidden file beside the target and renamed over it
once complete, so a failure leaves nothing half-written. ``check_writable``
says before any work is done whether the target can be written: a missing
or unwritable directory, a directory in the target's place, or an existing
file marked read-only (refused even where the permissions would let the
user replace it, as root). The errors are ``OutputError``: one line, for the
command line to print.
"""

import contextlib
import os
import stat
import tempfile


class OutputError(OSError):
    """A file that cannot be written: ``cannot write PATH: REASON``."""

    def __init__(self, path, reason):
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason = path, reason

    def __str__(self):
        return self.args[0]


def check_writable(path):
    """Raise ``OutputError`` unless ``path`` can be written (created or replaced)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(path, "no such directory")
    if os.path.isdir(path):
        raise OutputError(path, "it is a directory")
    if os.path.lexists(path):
        try:
            mode = os.stat(path).st_mode
        except OSError as error:  # a dangling symbolic link, a loop of them
            raise OutputError(path, error.strerror or str(error)) from error
        if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
            raise OutputError(path, "the file is read-only")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(path, f"permission denied (cannot create files in {directory})")


def _read_umask():
    # os.umask can only be read by setting it: done once, at import, before
    # any thread of the caller's could create a file meanwhile.
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


@contextlib.contextmanager
def replacing(path, suffix=""):
    """A temporary path beside ``path``, renamed over it once the block completes.

    ``suffix`` (an extension, say) is given to the temporary file. The file
    keeps the mode of the one it replaces, or gets a new file's; a symbolic
    link is followed (the file it points to is replaced). On any
    failure the temporary file is removed; an ``OSError`` becomes an
    ``OutputError`` naming ``path``.
    """
    path = os.fspath(path)
    check_writable(path)
    # A symbolic link stays one: the file it points to is the one replaced.
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    try:
        handle, partial = tempfile.mkstemp(dir=directory, prefix=".fastkm-", suffix=suffix)
    except OSError as error:
        raise OutputError(path, error.strerror or str(error)) from error
    os.close(handle)
    try:
        yield partial
        # mkstemp's file is private (0600): give it the mode the target has or would get.
        mode = stat.S_IMODE(os.stat(target).st_mode) if os.path.exists(target) else 0o666 & ~_UMASK
        os.chmod(partial, mode)
        os.replace(partial, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        if isinstance(error, OSError) and not isinstance(error, OutputError):
            raise OutputError(path, error.strerror or str(error)) from error
        raise


def write_text(path, text):
    """Write ``text`` to ``path``, whole or not at all (see ``replacing``)."""
    with replacing(path) as partial, open(partial, "w") as f:
        f.write(text)
