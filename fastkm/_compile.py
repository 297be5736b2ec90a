"""``fastkm compile`` and ``fastkm.compile()``: every kernel compiled into the cache, ahead of use.

The groups (``_workloads.GROUPS``) are compiled for float64 and float32 in
units (``"kmeans:float64"``) spread over child processes (``fastkm compile
--lane``) so that every core compiles, each reporting its steps on stdout for
the progress bar; each unit is stamped ready when done. A unit already
stamped ready is skipped, so a second run is a no-op. The
background compile a first call starts (``_tiers``) is ``fastkm compile
--background``: one process, low priority, one at a time per cache directory.
"""

import contextlib
import gc
import os
import subprocess
import sys
import threading
import time
import traceback
import typing

from . import _cache, _tiers, _workloads
from ._progress import ProgressBar


class CompileReport(typing.NamedTuple):
    """What :func:`compile` did.

    Attributes
    ----------
    cache_dir : pathlib.Path
        Where the kernels are cached.
    compiled : dict
        Seconds taken per group compiled by this call.
    already : list of str
        Groups that were already compiled (skipped).
    seconds : float
        Wall time of the call.
    """

    cache_dir: object
    compiled: dict
    already: list
    seconds: float


def compile(groups=None, *, processes=None, progress=True):
    """Compile and cache every fastkm kernel, for float32 and float64 data.

    Run it once where fastkm is installed (a Dockerfile's ``RUN`` line, a CI
    image, a notebook's first cell) so that no call meets the compiler. The
    kernels go to fastkm's cache directory (``NUMBA_CACHE_DIR`` if set, else
    ``FASTKM_CACHE_DIR``, else the user's cache folder). Groups already
    compiled for this machine and these sources are skipped.

    Parameters
    ----------
    groups : list of str, default=None
        Some of ``"predict"``, ``"kmeans"``, ``"minibatch"``, ``"sparse"``;
        None means all.
    processes : int, default=None
        Processes to compile in (compiling is single-threaded), started by
        this one (a frozen application compiles in this process, in turn);
        None means one per CPU, at most 4. float64 and float32 go to
        different processes.
    progress : bool, default=True
        Show progress on stderr: a bar on a terminal, a line per step
        otherwise.

    Returns
    -------
    report : CompileReport
        The cache directory, the seconds per group compiled, the groups skipped.
    """
    start = time.perf_counter()
    groups = list(_workloads.GROUPS if groups is None else groups)
    unknown = sorted(set(groups) - set(_workloads.GROUPS))
    if unknown:
        raise ValueError(f"unknown kernel groups {unknown}; choose from {list(_workloads.GROUPS)}")
    if processes is None:
        processes = min(os.cpu_count() or 1, 4)
    root = _cache.cache_root()
    units = [
        unit for group in groups for unit in _workloads.units_of(group) if not _cache.is_ready(unit, root)
    ]
    already = [group for group in groups if not any(_group(unit) == group for unit in units)]
    compiled = {}
    if units:
        n_steps = sum(_workloads.N_STEPS[_group(unit)] for unit in units)
        bar = ProgressBar(n_steps, enabled=None if progress else False)
        lanes = _lanes(units, max(1, processes))
        seconds = {}
        if getattr(sys, "frozen", False) or not sys.executable:
            # No Python to start a lane with (a frozen application, an
            # embedded interpreter): here, in turn.
            for lane in lanes:
                seconds.update(_run_units(lane, step=bar))
        else:
            # Every lane a child, this one included: a lane leaves its
            # garbage to its exit (run_lane), which this process, perhaps a
            # notebook, must not do.
            children = [_start_lane(lane) for lane in lanes]
            readers = [threading.Thread(target=_follow, args=(child, bar, seconds)) for child in children]
            for reader in readers:
                reader.start()
            for child, reader in zip(children, readers, strict=True):
                reader.join()
                if child.wait() != 0:
                    raise RuntimeError(f"compiling {', '.join(child.lane)} failed:\n{child.error.strip()}")
        bar.finish()
        missing = [unit for unit in units if not _cache.is_ready(unit, root)]
        if missing:
            raise RuntimeError(f"compiling {', '.join(missing)} left no ready stamp in {root}")
        for unit, unit_seconds in seconds.items():
            compiled[_group(unit)] = compiled.get(_group(unit), 0.0) + unit_seconds
    return CompileReport(root, compiled, already, time.perf_counter() - start)


def _group(unit):
    return unit.partition(":")[0]


def _lanes(units, processes):
    """Units spread over at most ``processes`` lanes, heaviest first onto the lightest lane.

    A dtype's units keep to their own lanes where there are enough: the
    kernels they share (k-means++, the labelling) then compile once per lane.
    """
    n_lanes = min(processes, len(units))
    dtypes = sorted({unit.partition(":")[2] for unit in units})
    lanes = [[] for _ in range(n_lanes)]
    loads = [0] * n_lanes
    for unit in sorted(units, key=lambda u: -_workloads.WEIGHT[_group(u)]):
        kind = dtypes.index(unit.partition(":")[2])
        allowed = [i for i in range(n_lanes) if n_lanes < len(dtypes) or i % len(dtypes) == kind]
        lane = min(allowed, key=loads.__getitem__)
        lanes[lane].append(unit)
        loads[lane] += _workloads.WEIGHT[_group(unit)]
    return [lane for lane in lanes if lane]


def _run_units(units, step=None, root=None):
    """Compile ``units`` in this process, stamping each when done; returns the seconds each took."""
    from ._kernels import _disk_cache

    seconds = {}
    with _disk_cache.quiet(), _compiling_in_process():
        for unit in units:
            start = time.perf_counter()
            for label in _workloads.run(unit):
                if step is not None:
                    step(f"{_group(unit)}: {label}")
            seconds[unit] = time.perf_counter() - start
            _cache.mark_ready(unit, seconds[unit], root)
    return seconds


@contextlib.contextmanager
def _compiling_in_process():
    """``FASTKM_COMPILE=wait`` inside (the workloads' calls compile), as it was after."""
    previous = os.environ.get("FASTKM_COMPILE")
    os.environ["FASTKM_COMPILE"] = "wait"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["FASTKM_COMPILE"]
        else:
            os.environ["FASTKM_COMPILE"] = previous


def _start_lane(units):
    command = [sys.executable, "-m", "fastkm", "compile", "--lane", "--only", ",".join(units)]
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_tiers.compile_environment(),
    )
    child.lane = units
    child.error = ""
    return child


def _follow(child, bar, seconds):
    """Advance ``bar`` for each step a lane reports; collect its units' seconds and errors."""

    def read_errors():
        child.error = child.stderr.read()

    errors = threading.Thread(target=read_errors)
    errors.start()
    for line in child.stdout:
        kind, _, rest = line.rstrip("\n").partition(" ")
        if kind == "step":
            bar(rest)
        elif kind == "done":
            unit, _, unit_seconds = rest.partition(" ")
            seconds[unit] = float(unit_seconds)
    errors.join()


def run_lane(units):
    """``fastkm compile --lane``: compile ``units``, ``step``/``done`` lines on stdout."""

    def report(label):
        print("step", label, flush=True)

    # A process that ends when its units are compiled: the collector is off
    # (the compiles' garbage, a few hundred MB, is left to the exit; freeing
    # it as it came took a tenth of the time) and is not walked at the exit
    # either (frozen).
    gc.disable()
    try:
        for unit in units:
            if _cache.is_ready(unit):
                continue
            seconds = _run_units([unit], step=report)
            print("done", unit, f"{seconds[unit]:.3f}", flush=True)
    finally:
        gc.freeze()
    return 0


def run_background(units):
    """``fastkm compile --background``: what a first call started, at low priority, one at a time."""
    root = _cache.cache_root()
    try:
        # The lowest priority: the calls scikit-learn answers meanwhile keep
        # their cores (at nice 10, a digits fit's OpenMP threads waited up to
        # 140 ms for each other; at 19, 11 ms, as on an idle machine).
        os.nice(19)
    except (AttributeError, OSError):
        pass
    marker = root / "workers" / str(os.getpid())
    with _cache.locked("compile", root):
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            for unit in units:
                # Another process may have compiled it while this one waited for the lock.
                if _cache.is_ready(unit, root):
                    continue
                print(time.strftime("%Y-%m-%d %H:%M:%S"), f"compiling {unit} (pid {os.getpid()})", flush=True)
                try:
                    seconds = _run_units([unit], root=root)[unit]
                except Exception:
                    _cache.mark_failed(unit, traceback.format_exc(), root)
                    raise
                print(time.strftime("%Y-%m-%d %H:%M:%S"), f"{unit} done in {seconds:.1f} s", flush=True)
        finally:
            marker.unlink(missing_ok=True)
    return 0
