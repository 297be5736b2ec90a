"""Kernels loaded from numba's cache in a fresh process run (no missing symbols).

numba records, per cached function, that loading it must start the threading
layer first; a serial kernel calling a parallel one can be cached without that
record when the parallel one came from the cache. This replays such a history
in a private cache directory: fastkm must start the threads itself. And
numba's own implementations (``np.empty``, ``max``) that fastkm compiles as IR
only, inside its kernels, still serve a user's numba code afterwards. Python's
garbage collector is off while a kernel compiles, and as it was after. numba's
runtime is loaded from the cache directory, and what compiles after links it.
numba's extensions are loaded for a user's function, not for kernels loaded.
A kernel's dispatcher is made when the kernel is first used, not at import.
"""

import os
import stat
import subprocess
import sys

_DATA = "import numpy as np; X = np.random.default_rng(0).normal(size=(500, 5));"
_STEPS = [
    # 1: compiles the parallel labelling kernels (predict).
    _DATA + "from fastkm import KMeans; KMeans(3, n_init=1, random_state=0).fit(X).predict(X)",
    # 2: compiles the mini-batch loop against the cached parallel kernels.
    _DATA + "from fastkm import MiniBatchKMeans; MiniBatchKMeans(3, random_state=0).fit(X)",
    # 3: a fresh process whose first kernel is the cached mini-batch loop.
    _DATA + "from fastkm import _solvers; _solvers.minibatch_fit("
    "X, np.ones(500), X[:3].copy(), 100, 5, 0.0, 10, 0.01, np.random.RandomState(0))",
]


def test_cached_kernels_load_in_any_order(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    for code in _STEPS:
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]


_IMPLEMENTATIONS = """
import sys
import numba, numpy as np
import numba.core.event as event
from fastkm import KMeans
from fastkm._kernels._linking import LinkedLibrary

met = []

class Compiles(event.Listener):
    def on_start(self, ev):
        met.append(ev.data["dispatcher"])

    def on_end(self, ev):
        pass

event.register("numba:compile", Compiles())
X = np.random.default_rng(0).normal(size=(300, 2))
KMeans(4, random_state=0).fit(X)
event.unregister("numba:compile", event._registered["numba:compile"][-1])
numba_own = [d for d in met if d.py_func.__module__.startswith("numba.")]
if sys.argv[1] == "compiling":
    assert numba_own, "the fit met no numba implementation"
    # Linked into the kernels as IR: none made machine code of its own.
    assert all(not d.overloads and d._linked for d in numba_own), numba_own
    assert all(c.library.__class__ is LinkedLibrary for d in numba_own for _, c in d._linked.values())
else:
    assert not met, met
# numba's third-party extensions: not looked for by kernels loaded, still by a user's function.
from numba.core import entrypoints
assert entrypoints._already_initialized is (sys.argv[1] == "compiling")
from user_code import fill
print(fill(5), fill(3.5))
assert entrypoints._already_initialized
"""

_USER_CODE = """
import numba, numpy as np

@numba.njit(cache=True)
def fill(n):
    a = np.empty(int(n), dtype=np.float64)
    a[:] = 2.0
    return a.sum() + max(n, 3)
"""


def test_numba_implementations_in_kernels_are_linked_and_user_code_still_compiles(tmp_path):
    # np.empty, max...: a kernel's compile makes their IR only; a user's own
    # numba function needing the same ones afterwards compiles, runs and caches.
    (tmp_path / "user_code.py").write_text(_USER_CODE)
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(tmp_path / "cache"),
        FASTKM_COMPILE="wait",
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    )
    for state in ("compiling", "cached"):  # the second process loads everything
        result = subprocess.run(
            [sys.executable, "-c", _IMPLEMENTATIONS, state],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split() == ["15.0", "9.5"]


_COLLECTOR = """
import gc, sys
import numpy as np
import numba.core.event as event
from fastkm._kernels import tiles

compiling = []
during = []

class Compiles(event.Listener):
    def on_start(self, ev):
        compiling.append(1)

    def on_end(self, ev):
        compiling.pop()

event.register("numba:compile", Compiles())
gc.callbacks.append(lambda phase, info: phase == "start" and compiling and during.append(info))
if sys.argv[1] == "disabled":
    gc.disable()
centers = np.arange(15.0).reshape(5, 3)
norms = tiles.squared_norms(centers, np.float64)
assert np.array_equal(norms, (centers**2).sum(axis=1))
print(len(during), gc.isenabled())
"""


def test_the_collector_is_off_while_a_kernel_compiles_and_as_it_was_after(tmp_path):
    # A compile makes objects by the hundred thousand: every collection then
    # walked them all. The user's setting is left as it was.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), FASTKM_COMPILE="wait")
    for state, enabled_after in (("enabled", "True"), ("disabled", "False")):
        result = subprocess.run(
            [sys.executable, "-c", _COLLECTOR, state], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split() == ["0", enabled_after]
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "again")  # compile again in the second process


_RUNTIME = """
import sys
import numpy as np
from fastkm._kernels import _runtime, stats, tiles

def compile_refused(target_context):
    raise AssertionError("numba's runtime compiled again")

if sys.argv[1] == "loads":
    _runtime._compile = compile_refused
centers = np.arange(15.0).reshape(5, 3)
print(tiles.squared_norms(centers, np.float64).sum())
if sys.argv[1] == "loads":
    print(stats.column_sums(centers).sum())  # compiled here: links the loaded runtime's IR
    from user_code import fill
    print(fill(5))
"""


def test_numba_runtime_is_loaded_from_the_cache_and_what_compiles_after_links_it(tmp_path):
    (tmp_path / "user_code.py").write_text(_USER_CODE)
    cache = tmp_path / "cache"
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(cache),
        FASTKM_COMPILE="wait",
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    )

    def run(state):
        result = subprocess.run(
            [sys.executable, "-c", _RUNTIME, state], env=env, capture_output=True, text=True, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.split()

    def saved():
        return sorted(cache.glob("fastkm-*/runtime-*.nrt"))

    # 1: squared_norms compiles; the runtime is compiled before it and saved,
    # readable as any new file (a cache one user builds, another reads).
    assert run("saves") == ["1015.0"] and len(saved()) == 1
    (tmp_path / "new-file").write_bytes(b"")
    assert stat.S_IMODE(saved()[0].stat().st_mode) == stat.S_IMODE((tmp_path / "new-file").stat().st_mode)
    # 2: the runtime is loaded; a kernel and a user's function compile after it.
    assert run("loads") == ["1015.0", "105.0", "15.0"]
    # A file that does not load is compiled again and replaced.
    saved()[0].write_bytes(b"not a runtime")
    assert run("saves") == ["1015.0"]
    assert run("loads")[0] == "1015.0"


_LAZY = """
import pickle
import sys
from fastkm import _solvers  # every kernel module
from fastkm._kernels import tiles
from fastkm._kernels._jit import LazyKernel
from fastkm._kernels._linking import Kernel

kernel_modules = [m for name, m in sys.modules.items() if name.startswith("fastkm._kernels.")]
declared = [obj for m in kernel_modules for obj in vars(m).values() if isinstance(obj, LazyKernel)]
assert len(declared) > 100, len(declared)
assert not any(isinstance(obj, Kernel) for m in kernel_modules for obj in vars(m).values())
lazy = tiles.squared_norms
assert pickle.loads(pickle.dumps(lazy)) is lazy
import numpy as np
norms = lazy(np.arange(6.0).reshape(2, 3), np.float64)  # made, loaded or compiled, run
assert isinstance(tiles.squared_norms, Kernel) and tiles.squared_norms is lazy.dispatcher
assert pickle.loads(pickle.dumps(lazy)) is tiles.squared_norms
print(norms.tolist())
"""


def test_kernels_make_their_dispatchers_when_first_used(tmp_path):
    # None at import (over a hundred, 0.1 ms each); a kernel's, once made, in its module.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), FASTKM_COMPILE="wait")
    result = subprocess.run([sys.executable, "-c", _LAZY], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["[5.0,", "50.0]"]
