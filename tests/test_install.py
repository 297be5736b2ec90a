"""Install, use, uninstall, reinstall editable: the kernel cache never stays in the way.

numba's default cache lives in the package's ``__pycache__``, which ``pip
uninstall`` does not own; the folder left behind made a later editable install
import as an empty namespace package. fastkm's cache lives outside the package.
This runs the README's sequence in a fresh virtual environment (its
dependencies are this environment's, through a ``.pth`` file).
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import fastkm

REPOSITORY = Path(__file__).resolve().parents[1]

_PREDICT = """
import numpy as np
import fastkm
from fastkm import KMeans
model = KMeans(2)
model.cluster_centers_ = np.array([[0.0, 0.0], [5.0, 5.0]])
model.n_features_in_, model._n_features_out = 2, 2
assert model.predict(np.array([[0.1, 0.0], [4.0, 6.0]])).tolist() == [0, 1]
print(fastkm.__file__)
"""


def _source_copy(target):
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "build", "*.egg-info", ".ruff_cache")
    shutil.copytree(REPOSITORY, target, ignore=ignore)
    return target


@pytest.mark.slow
def test_install_uninstall_reinstall_editable(tmp_path):
    if not (REPOSITORY / "pyproject.toml").exists():
        pytest.skip("needs the source tree")
    source = _source_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    # pip, setuptools and the dependencies: this environment's.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True
    )
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {
        k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "FASTKM_CACHE_DIR", "PYTHONPATH")
    }
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), FASTKM_COMPILE="wait")
    pip = [python, "-m", "pip", "install", "--quiet", "--no-deps"]

    def run(*command):
        result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    run(*pip, str(source))
    installed = Path(run(python, "-c", _PREDICT).strip()).parent
    assert installed.parent == site
    # The kernels went to the user's cache folder, none into the package.
    assert list((tmp_path / "xdg" / "fastkm" / fastkm.__version__).glob("*.nbi"))
    assert not list(installed.rglob("*.nb[ic]"))

    run(python, "-m", "pip", "uninstall", "--yes", "--quiet", "fastkm")
    assert not installed.exists()

    run(*pip, "--editable", str(source))
    assert Path(run(python, "-c", _PREDICT).strip()).parent == source / "fastkm"
