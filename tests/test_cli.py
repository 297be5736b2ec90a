"""The ``fastkm`` command: arguments, errors and a small real run."""

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from fastkm import bench, cli
from fastkm.bench.progress import ProgressBar


def _exit_code(argv):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    return exited.value.code


def test_list(capsys):
    assert cli.main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == len(bench.CASES) - 1  # all but the Dask case
    assert "china-k64-fit-init" in out and "[heavy]" in out
    assert cli.main(["bench", "--list", "--cases", "dask"]) == 0
    assert capsys.readouterr().out.startswith("dask-blobs10m-k32 ")


def test_list_with_patterns(capsys):
    assert cli.main(["bench", "--list", "--cases", "digits", "--cases", "cold-start,*-k64-predict"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == [
        "digits-k10-fit-init",
        "digits-k10-fit",
        "digits-k10-minibatch",
        "digits-k10-predict",
        "china-k64-predict",
        "cold-start",
    ]


def test_unknown_case(capsys):
    assert _exit_code(["bench", "--cases", "china-k65-fit"]) == 2
    err = capsys.readouterr().err
    assert "usage: fastkm bench" in err
    assert "unknown case 'china-k65-fit'; valid cases" in err
    assert "china-k64-fit-init" in err and "cold-start" in err


def test_unknown_library(capsys):
    assert _exit_code(["bench", "--libraries", "kmeans"]) == 2
    assert (
        "unknown library 'kmeans'; valid libraries: sklearn, fastkm, sklearnex, faiss"
        in capsys.readouterr().err
    )


def test_output_directory_must_exist(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "results.json"
    assert _exit_code(["bench", "--json", str(missing)]) == 2
    assert f"cannot write {missing}: no such directory" in capsys.readouterr().err


def test_outputs_are_never_written_over_a_read_only_file(tmp_path, capsys):
    target = tmp_path / "results.json"
    target.write_text("keep")
    os.chmod(target, 0o444)
    assert _exit_code(["bench", "--json", str(target), "--cases", "blobs-k4-fit"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"fastkm bench: error: cannot write {target}: the file is read-only"
    )
    assert target.read_text() == "keep"


def test_plot_without_matplotlib(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    assert _exit_code(["bench", "--plot", "speedups.png"]) == 2
    assert "--plot needs matplotlib: pip install 'fastkm[bench]'" in capsys.readouterr().err


def test_a_command_is_required(capsys):
    assert _exit_code([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_small_run_writes_json_and_markdown(tmp_path, capsys):
    json_path, md_path = tmp_path / "r.json", tmp_path / "r.md"
    argv = ["bench", "--quick", "--cases", "blobs-k4-predict", "--libraries", "fastkm", "--no-progress"]
    argv += ["--json", str(json_path), "--markdown", str(md_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "fastkm bench: 1 cases; sklearn" in out
    assert "blobs-k4-predict" in out and "fastkm speed-up" in out
    data = json.loads(json_path.read_text())
    assert data["quick"] and [r["case"] for r in data["results"]] == ["blobs-k4-predict"]
    assert set(data["results"][0]["libraries"]) == {"sklearn", "fastkm"}
    assert md_path.read_text().startswith(
        "`fastkm bench --quick --cases blobs-k4-predict --libraries fastkm` on "
    )


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "fastkm", "bench", "--list", "--cases", "cold-start"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("cold-start ")


def test_console_script():
    script = shutil.which("fastkm")
    if script is None:
        pytest.skip("fastkm is not installed as a command here")
    out = subprocess.run([script, "bench", "--cases", "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown case 'nope'" in out.stderr


_IMPORT = """
import sys
import fastkm, fastkm.cli
light = not any(name in sys.modules for name in ("sklearn", "numba", "fastkm._kmeans"))
names = set(fastkm.__all__)
assert names <= set(dir(fastkm))
from fastkm import KMeans, MiniBatchKMeans, compile, k_means, kmeans_plusplus, quantize
import fastkm.quantize
assert all(getattr(fastkm, name) is not None for name in names)
assert fastkm.quantize is quantize and callable(quantize)  # the function, not its module
assert KMeans.__module__ == "fastkm._kmeans" and compile.__module__ == "fastkm._compile"
try:
    fastkm.nope
except AttributeError as error:
    assert "nope" in str(error)
print(light)
"""


def test_import_fastkm_is_light_and_names_resolve_on_use():
    # The command starts (fastkm compile's processes) without scikit-learn or
    # numba; the estimators are imported when first named.
    out = subprocess.run([sys.executable, "-c", _IMPORT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True"]


def test_progress_bar_draws_in_place():
    stream = io.StringIO()
    bar = ProgressBar(4, stream=stream, enabled=True, width=8)
    case, lib = bench.CASES[0], bench.LIBRARIES["fastkm"]
    bar(case, lib)
    bar(case, lib)
    bar(None, None)
    text = stream.getvalue()
    assert "[........] 0/4  blobs-k4-fit-init  fastkm" in text
    assert "[##......] 1/4" in text and text.endswith("\r")


def test_progress_bar_prints_lines_off_a_terminal():
    # Piped output (a CI log) still says what is running, a line per step.
    stream = io.StringIO()
    bar = ProgressBar(2, stream=stream)
    bar(bench.CASES[0], bench.LIBRARIES["fastkm"])
    bar(bench.CASES[0], bench.LIBRARIES["sklearn"])
    bar(None, None)
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[:3] for line in lines] == [
        ["1/2", "blobs-k4-fit-init", "fastkm"],
        ["2/2", "blobs-k4-fit-init", "sklearn"],
    ]


def test_progress_bar_can_be_silenced():
    stream = io.StringIO()
    bar = ProgressBar(2, stream=stream, enabled=False)
    bar(bench.CASES[0], bench.LIBRARIES["fastkm"])
    bar(None, None)
    assert stream.getvalue() == ""
