"""``fastkm compile`` and ``fastkm.compile()``: every kernel compiled into the cache, ahead of use.

The groups (``_workloads.GROUPS``) are spread over processes so that both
cores compile: this process runs one share and child processes
(``fastkm compile --lane``) the others, each reporting its steps on stdout
for the progress bar. A group already stamped ready is skipped, so a second
run is a no-op. The background compile a first call starts (``_tiers``) is
``fastkm compile --background``: one process, low priority, one at a time per
cache directory.
"""

import os
import subprocess
import sys
import threading
import time
import traceback
import typing

from . import _cache, _workloads
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


def compile(groups=None, *, processes=2, progress=True):
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
    processes : int, default=2
        Processes to spread the groups over (compiling is single-threaded).
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
    root = _cache.cache_root()
    already = [group for group in groups if _cache.is_ready(group, root)]
    todo = [group for group in groups if group not in already]
    compiled = {}
    if todo:
        bar = ProgressBar(sum(2 * _workloads.N_STEPS[g] for g in todo), enabled=None if progress else False)
        lanes = _lanes(todo, max(1, processes))
        children = [_start_lane(lane) for lane in lanes[1:]]
        readers = [threading.Thread(target=_follow, args=(child, bar, compiled)) for child in children]
        for reader in readers:
            reader.start()
        compiled.update(_run_groups(lanes[0], step=bar))
        for child, reader in zip(children, readers, strict=True):
            reader.join()
            if child.wait() != 0:
                raise RuntimeError(f"compiling {', '.join(child.lane)} failed:\n{child.error.strip()}")
        bar.finish()
    return CompileReport(root, compiled, already, time.perf_counter() - start)


def _lanes(groups, processes):
    """Groups spread over at most ``processes`` lanes, heaviest first onto the lightest lane."""
    lanes = [[] for _ in range(min(processes, len(groups)))]
    loads = [0] * len(lanes)
    for group in sorted(groups, key=lambda g: -_workloads.WEIGHT[g]):
        lightest = loads.index(min(loads))
        lanes[lightest].append(group)
        loads[lightest] += _workloads.WEIGHT[group]
    return lanes


def _run_groups(groups, step=None):
    """Compile ``groups`` in this process; returns the seconds each took."""
    from ._kernels import _disk_cache

    os.environ["FASTKM_COMPILE"] = "wait"
    seconds = {}
    with _disk_cache.quiet():
        for group in groups:
            start = time.perf_counter()
            for label in _workloads.run(group):
                if step is not None:
                    step(f"{group}: {label}")
            seconds[group] = time.perf_counter() - start
            _cache.mark_ready(group, seconds[group])
    return seconds


def _start_lane(groups):
    command = [sys.executable, "-m", "fastkm", "compile", "--lane", "--only", ",".join(groups)]
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, FASTKM_COMPILE="wait"),
    )
    child.lane = groups
    child.error = ""
    return child


def _follow(child, bar, compiled):
    """Advance ``bar`` for each step a lane reports; collect its groups' seconds and errors."""

    def read_errors():
        child.error = child.stderr.read()

    errors = threading.Thread(target=read_errors)
    errors.start()
    for line in child.stdout:
        kind, _, rest = line.rstrip("\n").partition(" ")
        if kind == "step":
            bar(rest)
        elif kind == "done":
            group, _, seconds = rest.partition(" ")
            compiled[group] = float(seconds)
    errors.join()


def run_lane(groups):
    """``fastkm compile --lane``: compile ``groups``, one ``step``/``done`` line each on stdout."""

    def report(label):
        print("step", label, flush=True)

    for group in groups:
        if _cache.is_ready(group):
            continue
        seconds = _run_groups([group], step=report)
        print("done", group, f"{seconds[group]:.3f}", flush=True)
    return 0


def run_background(groups):
    """``fastkm compile --background``: what a first call started, at low priority, one at a time."""
    root = _cache.cache_root()
    try:
        os.nice(10)
    except (AttributeError, OSError):
        pass
    marker = root / "workers" / str(os.getpid())
    with _cache.locked("compile", root):
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            for group in groups:
                # Another process may have compiled it while this one waited for the lock.
                if _cache.is_ready(group, root):
                    continue
                print(
                    time.strftime("%Y-%m-%d %H:%M:%S"), f"compiling {group} (pid {os.getpid()})", flush=True
                )
                try:
                    seconds = _run_groups([group])
                except Exception:
                    _cache.mark_failed(group, traceback.format_exc(), root)
                    raise
                print(
                    time.strftime("%Y-%m-%d %H:%M:%S"), f"{group} done in {seconds[group]:.1f} s", flush=True
                )
        finally:
            marker.unlink(missing_ok=True)
    return 0
