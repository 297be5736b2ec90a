"""Timing and scoring: how one library's run of one case becomes numbers."""

import functools
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

# After a call, OpenBLAS's and OpenMP's worker threads keep spinning for a
# while; on 2 cores they would steal time from whatever is timed next.
SETTLE_SECONDS = 0.2


@dataclass(frozen=True)
class Budget:
    """How long to time each case for each library (warm-up call not counted)."""

    seconds: float = 2.0
    min_repeats: int = 3
    # A call of 60 us timed 200 times spans 12 ms: one slow stretch of this
    # machine moved its median by half (the seeds' blobs fit read 61-68 us
    # in most runs, 91-107 us in some).
    max_repeats: int = 5000
    cold_start_repeats: int = 5


FULL = Budget()
QUICK = Budget(seconds=0.3, min_repeats=1, max_repeats=50, cold_start_repeats=1)


@dataclass
class Measurement:
    """One library on one case: wall times of the timed calls and the result's quality."""

    times: list = field(default_factory=list)
    inertia: float = None
    accuracy: float = None
    n_iter: int = None

    @property
    def median(self):
        return statistics.median(self.times)


def settle():
    time.sleep(SETTLE_SECONDS)


def time_calls(call, budget):
    """Call once to warm up (JIT compilation, caches), then time repeats within ``budget``.

    Returns the list of times in seconds and the last call's result.
    """
    call()
    gc.collect()
    settle()
    times = []
    start = time.perf_counter()
    while len(times) < budget.max_repeats and (
        len(times) < budget.min_repeats or time.perf_counter() - start < budget.seconds
    ):
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    return times, result


def inertia(X, centers, labels, chunk=1 << 16):
    """Sum of squared distances from each row of X to its labelled centre, in float64.

    Sparse X is made dense a chunk of rows at a time (8 MB of rows at most).
    """
    centers = np.asarray(centers, dtype=np.float64)
    sparse = not isinstance(X, np.ndarray)
    if sparse:
        chunk = max(1, (1 << 20) // X.shape[1])
    total = 0.0
    for start in range(0, X.shape[0], chunk):
        rows = X[start : start + chunk]
        rows = rows.toarray() if sparse else rows
        rows = np.asarray(rows, dtype=np.float64)
        diff = rows - centers[labels[start : start + chunk]]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


def nearest_labels(X, centers):
    """Each row's nearest centre (for libraries that return only centres)."""
    from sklearn.metrics import pairwise_distances_argmin

    return pairwise_distances_argmin(X, np.asarray(centers, dtype=X.dtype))


def majority_accuracy(labels, target):
    """The fraction of rows whose cluster's most common target is their own.

    The seeds' score for clustering digits: map each cluster to the digit most
    of its members show, then count the members that show it.
    """
    labels = np.asarray(labels, dtype=np.intp)
    target = np.asarray(target, dtype=np.intp)
    counts = np.zeros((labels.max() + 1, target.max() + 1), dtype=np.intp)
    np.add.at(counts, (labels, target), 1)
    return float(counts.max(axis=1).sum() / len(labels))


def score(fitted, X, target=None):
    """Inertia (and with a target, majority accuracy) of a library's result on X."""
    labels = fitted.labels if fitted.labels is not None else nearest_labels(X, fitted.centers)
    labels = np.asarray(labels).ravel()
    accuracy = majority_accuracy(labels, target) if target is not None else None
    return inertia(X, fitted.centers, labels), accuracy


_COLD_START_TEMPLATE = """
import time, warnings
import numpy as np
warnings.simplefilter("ignore")
X = np.load({data_path!r})
t0 = time.perf_counter()
{code}
print(time.perf_counter() - t0)
import sys
tiers = sys.modules.get("fastkm._tiers")
print("background", *(tiers.background_pids() if tiers else []))
"""

# How each cold-start mode runs a process: a compiled cache (filled first),
# an empty cache compiled in process, an empty cache in the default mode.
COLD_START_MODES = ("warm", "compile", "first")


def cold_start_seconds(library, k, data_path, *, cache_dir=None, mode="warm", minibatch=False):
    """Import + first fit in a new Python process, in seconds.

    The process loads X from ``data_path`` (a .npy file) with numpy before the
    clock starts; the library's import, and scikit-learn's under it, are
    timed. ``cache_dir`` points the kernel cache at another directory (an
    empty one makes fastkm compile, or answer by scikit-learn while a
    background process compiles, which is stopped once the time is taken).
    ``mode="compile"`` sets ``FASTKM_COMPILE=wait``.
    """
    env = dict(os.environ)
    env.pop("FASTKM_COMPILE", None)
    # An installed package has its bytecode compiled; without it every new
    # process compiles fastkm's sources again (an editable install's, here).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if mode == "compile":
        env["FASTKM_COMPILE"] = "wait"
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    code = library.cold_start_minibatch_code if minibatch else library.cold_start_code
    code = _COLD_START_TEMPLATE.format(data_path=data_path, code=code.format(k=k))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"cold start of {library.name} failed:\n{out.stderr.strip()}")
    lines = out.stdout.strip().splitlines()
    stop_processes([int(pid) for pid in lines[-1].split()[1:]])
    return float(lines[-2])


def stop_processes(pids, timeout=10.0):
    """Stop the processes ``pids`` (background compiles a timed process left) and wait until gone."""
    import signal

    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)  # its own session: the compile and any child
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _running(pid):
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def time_cold_starts(libraries, X, k, *, mode="warm", repeats=3, minibatch=False):
    """The times of ``repeats`` fresh processes per library that import it and fit X.

    Returns ``{library name: [seconds, ...]}``. The libraries' processes take
    turns (the first to go alternates each round), so that the machine's
    drift over the run falls on all of them alike.

    ``mode="warm"``: each library's own setup fills its cache first (fastkm:
    ``fastkm.compile``) and one untimed process warms the OS file cache, so
    the times are those of a user's runs after that. ``"compile"`` and
    ``"first"``: every process gets a new, empty cache.
    """
    if mode not in COLD_START_MODES:
        raise ValueError(f"mode must be one of {COLD_START_MODES}, got {mode!r}")
    with tempfile.TemporaryDirectory() as scratch:
        data_path = os.path.join(scratch, "X.npy")
        np.save(data_path, X)
        runs = {
            library.name: functools.partial(
                cold_start_seconds, library, k, data_path, mode=mode, minibatch=minibatch
            )
            for library in libraries
        }
        if mode == "warm":
            for library in libraries:
                _set_up_cold_start(library)
            for run in runs.values():
                run()
        times = {name: [] for name in runs}
        for n in range(repeats):
            for name in runs if n % 2 == 0 else reversed(runs):
                if mode == "warm":
                    times[name].append(runs[name]())
                else:
                    fresh = os.path.join(scratch, f"cache-{name}-{n}")
                    os.mkdir(fresh)
                    times[name].append(runs[name](cache_dir=fresh))
        return times


def _set_up_cold_start(library):
    """Run the library's cold-start setup (fill its cache) in its own process."""
    if not library.cold_start_setup:
        return
    setup = subprocess.run([sys.executable, "-c", library.cold_start_setup], capture_output=True, text=True)
    if setup.returncode != 0:
        raise RuntimeError(f"cold start setup of {library.name} failed:\n{setup.stderr.strip()}")
