"""Which tier answers a public call: fastkm's compiled kernels, or scikit-learn's estimator.

A call whose kernels are not compiled yet must not wait for the compiler
(tens of seconds). Its kernels are a *unit*: a group of calls (``predict``,
``kmeans``, ``minibatch``, ``sparse``) for one float dtype, see
``_workloads``. When the unit's ready stamp is in the cache
(``_cache.is_ready``) the call runs compiled, loading the kernels it needs.
Otherwise scikit-learn's own estimator answers it (fastkm's contract is
scikit-learn's results), a background process compiles the unit into the
cache, then the other dense ones, and one ``logging`` record says so; a
later call, in this process or the next, runs compiled once the stamp is
written.

``FASTKM_COMPILE=wait`` compiles in process instead (the call waits). So does
a process that has no cache directory it can write (there is nowhere for a
background process to put the kernels: they compile in memory, with the
compile notice of ``_kernels._disk_cache``).

A process forked after its parent started numba's OpenMP threads (joblib and
multiprocessing workers on Linux) cannot start threads of its own: GNU
OpenMP aborts the process. Such a child is answered by scikit-learn.
"""

import logging
import os
import subprocess
import sys
import threading

import numpy as np
import scipy.sparse as sp

from . import _cache

COMPILED = "compiled"
FALLBACK = "scikit-learn"

logger = logging.getLogger("fastkm")

_DENSE_GROUPS = ("predict", "kmeans", "minibatch")
_DTYPES = ("float64", "float32")

_lock = threading.Lock()
_started = set()  # units whose background compile this process started
_background = []  # the background compiles' processes, with their units
_ready = set()  # units known to be ready (a stamp, once seen, stays)
_writable = {}  # cache root -> whether it can be written
_noticed = False
_forked_after_threads = False


def mode():
    """``"wait"`` (compile in process) or ``"background"`` (the default), from ``FASTKM_COMPILE``."""
    value = os.environ.get("FASTKM_COMPILE", "").strip().lower()
    return "wait" if value == "wait" else "background"


def units_for(X, group):
    """The units a call on ``X`` needs: ``group`` (``"sparse"`` for sparse X) for X's dtype.

    float32 data runs float32 kernels, anything else float64 ones. Input
    without a dtype (a list, a DataFrame) needs both until validated.
    """
    kind = "sparse" if type(X) is not np.ndarray and sp.issparse(X) else group
    try:
        dtype = np.dtype(X.dtype)
    except (AttributeError, TypeError):
        return [f"{kind}:{name}" for name in _DTYPES]
    return [f"{kind}:{'float32' if dtype == np.float32 else 'float64'}"]


def choose(units, what):
    """The tier for a call needing the kernel ``units``; ``what`` names the call in the notice."""
    if _forked_after_threads:
        _notice(
            "fastkm: %s was answered by scikit-learn: this process was forked after its parent "
            "started fastkm's OpenMP threads, which cannot be started again in a forked child "
            "(use joblib's loky or multiprocessing's 'spawn' or 'forkserver' start method).",
            what,
        )
        return FALLBACK
    if mode() == "wait":
        return COMPILED
    missing = [unit for unit in units if not _is_ready(unit)]
    if not missing:
        return COMPILED
    root = _cache.cache_root()
    if (
        not _can_write(root)
        or getattr(sys, "frozen", False)
        or any(_cache.has_failed(unit, root) for unit in missing)
        or any(_ended(unit) for unit in missing)
        or not _start_background(missing + _then(missing), root)
    ):
        # Nowhere to compile to, no Python to run a background compile (a
        # frozen application), a background compile that failed or ended
        # without this unit, or none could be started: in process.
        return COMPILED
    _notice(
        "fastkm: %s was answered by scikit-learn while fastkm's kernels (%s) compile in a "
        "background process into %s (about half a minute); later calls run compiled. "
        "Run `fastkm compile` ahead of time, or set FASTKM_COMPILE=wait to wait for the compiler.",
        what,
        ", ".join(missing),
        root,
    )
    return FALLBACK


def _then(missing):
    """What the background compile does after ``missing``: the dense units, in its dtype first."""
    first = missing[0].partition(":")[2]
    dtypes = [first] + [name for name in _DTYPES if name != first]
    queue = [f"{group}:{name}" for name in dtypes for group in _DENSE_GROUPS]
    return [
        unit for unit in queue if unit not in missing and not _is_ready(unit) and not _cache.has_failed(unit)
    ]


def is_ready(unit):
    """Whether ``unit``'s kernels are in the cache: a question only, no compile is started."""
    return _is_ready(unit)


def _is_ready(unit):
    if unit in _ready:
        return True
    if _cache.is_ready(unit):
        _ready.add(unit)
        return True
    return False


def _can_write(root):
    key = str(root)
    if key not in _writable:
        _writable[key] = _cache.writable(root)
    return _writable[key]


def _notice(message, *args):
    global _noticed
    with _lock:
        if _noticed:
            return
        _noticed = True
    logger.warning(message, *args)


def _ended(unit):
    """Whether the background compile this process started for ``unit`` has ended."""
    return any(unit in units and process.poll() is not None for process, units in _background)


def _start_background(units, root):
    """Start ``fastkm compile --background`` for the ``units`` not started yet (once per process).

    Returns False if it could not be started.
    """
    with _lock:
        units = [unit for unit in units if unit not in _started]
        _started.update(units)
    if not units:
        return True
    env = compile_environment()
    command = [sys.executable, "-m", "fastkm", "compile", "--background", "--only", ",".join(units)]
    try:
        log = open(root / "compile.log", "ab")
    except OSError:
        log = subprocess.DEVNULL
    try:
        # A session of its own: it outlives this process and its Ctrl-C.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        _background.append((process, units))
    except OSError as error:
        logger.debug("fastkm: could not start the background compile: %s", error)
        return False
    finally:
        if log is not subprocess.DEVNULL:
            log.close()
    return True


def compile_environment():
    """The environment of a compile process this one starts: it compiles itself, on this fastkm.

    The child imports this fastkm, wherever this process found it (a path
    added to ``sys.path`` included): another copy would compile its own
    sources and stamp them, not this one's.
    """
    path = os.pathsep.join(entry for entry in sys.path if entry)
    return dict(os.environ, FASTKM_COMPILE="wait", PYTHONPATH=path)


def background_pids():
    """Process ids of the background compiles this process started (still running or not)."""
    return [process.pid for process, _ in _background]


def compiling():
    """Whether a background compile this process started is still running."""
    return any(process.poll() is None for process, _ in _background)


def _after_fork_in_child():
    global _forked_after_threads
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is None or not getattr(parallel, "_is_initialized", False):
        return
    try:
        layer = parallel.threading_layer()
    except ValueError:
        return
    # GNU OpenMP aborts a forked child that starts threads; TBB and the
    # workqueue start new ones.
    _forked_after_threads = layer == "omp"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
