"""The runner behind `fastkm bench`: every selected case, every library, one process."""

import datetime
import os
import platform
import sys
import warnings
from dataclasses import dataclass, field

from . import cluster, measure
from .cases import DATASETS, SEED, load_dataset
from .libraries import REFERENCE, CaseData


@dataclass
class CaseResult:
    """A case's measurements, by library name (a library without the task is absent)."""

    case: object
    measurements: dict = field(default_factory=dict)

    @property
    def reference(self):
        """The library the others are compared with: scikit-learn (the Dask case: fastkm, one process)."""
        return cluster.ONE_PROCESS if self.case.on_cluster else REFERENCE

    def speedup(self, library):
        """The reference's median time over ``library``'s, or None."""
        ours, ref = self.measurements.get(library), self.measurements.get(self.reference)
        if ours is None or ref is None:
            return None
        return ref.median / ours.median

    def inertia_ratio(self, library):
        """``library``'s inertia over scikit-learn's, or None."""
        ours, ref = self.measurements.get(library), self.measurements.get(REFERENCE)
        if ours is None or ref is None or ours.inertia is None or not ref.inertia:
            return None
        return ours.inertia / ref.inertia


@dataclass
class Report:
    """A whole run: the machine, the libraries and settings, and one result per case."""

    machine: dict
    libraries: dict  # name -> version
    quick: bool
    results: list = field(default_factory=list)


def machine_info():
    """What the numbers were measured on."""
    import numba

    info = {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }
    for name in ("numpy", "numba"):
        info[name] = sys.modules[name].__version__ if name in sys.modules else "?"
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(cases, libraries, *, budget, quick=False, progress=None):
    """Time ``cases`` for ``libraries`` (the reference first) and return a :class:`Report`.

    ``progress``, if given, is called with ``(case, library)`` before each step
    and with ``(None, None)`` after the last one; a cold-start case measures
    its libraries together (their processes take turns), so it announces them
    all before it starts.
    """
    report = Report(machine={}, libraries={lib.name: lib.version() for lib in libraries}, quick=quick)
    session = _Session()
    for case in cases:
        result = CaseResult(case)
        report.results.append(result)
        if case.on_cluster:
            # Its own libraries, on a cluster of its own: one step.
            _notify(progress, case, _ClusterLibraries)
            result.measurements.update(_on_cluster(case, budget))
            continue
        if case.cold_start:
            # The libraries' processes take turns: one step for all of them.
            for library in libraries:
                _notify(progress, case, library)
            result.measurements.update(_cold_start(case, libraries, session, budget))
            continue
        for library in libraries:
            _notify(progress, case, library)
            measurement = _in_process(case, library, session, budget)
            if measurement is not None:
                result.measurements[library.name] = measurement
    _notify(progress, None, None)
    report.machine = machine_info()
    if any(case.on_cluster for case in cases):
        report.machine["dask"] = cluster.versions()
    return report


class _Session:
    """What the cases of one run share: loaded datasets, init arrays, fitted models."""

    def __init__(self):
        self.datasets, self.inits, self.models, self.references = {}, {}, {}, {}

    def dataset(self, name):
        if name not in self.datasets:
            self.datasets[name] = load_dataset(name)
        return self.datasets[name]

    def case_data(self, case):
        X, target = self.dataset(case.dataset)
        key = case.dataset, case.k
        if key not in self.inits:
            import sklearn.cluster

            self.inits[key] = sklearn.cluster.kmeans_plusplus(X, case.k, random_state=SEED)[0]
            self.inits[key].setflags(write=False)
        return CaseData(X, target, self.inits[key])


def _cold_start(case, libraries, session, budget):
    """The cold-start measurements of the libraries that have such a task, by name."""
    X, _ = session.dataset(case.dataset)
    minibatch = case.task == "cold-start-first-minibatch"
    able = [lib for lib in libraries if not (minibatch and lib.cold_start_minibatch_code is None)]
    mode = {"cold-start": "warm", "cold-start-compile": "compile"}.get(case.task, "first")
    times = measure.time_cold_starts(
        able, X, case.k, mode=mode, repeats=budget.cold_start_repeats, minibatch=minibatch
    )
    return {name: measure.Measurement(times=seconds) for name, seconds in times.items()}


class _ClusterLibraries:
    name = f"{cluster.DASK}, {cluster.ONE_PROCESS}, {cluster.DASK_ML}"


def _on_cluster(case, budget):
    """The Dask case's measurements (seconds per iteration), by name; none without dask."""
    if cluster.missing():
        return {}
    spec = DATASETS[case.dataset]
    rows, features = spec.shape
    # A round times every library once; the budget's least repeats is the rounds.
    return cluster.measure(rows, features, spec.chunks, case.k, rounds=budget.min_repeats)


def _in_process(case, library, session, budget):
    """Time one library on one case; None if the library has no such task."""
    data = session.case_data(case)
    model_key = (library.name, case.dataset, case.k)
    reference = session.references.get(case) if library.name != REFERENCE else None
    with warnings.catch_warnings():
        # e.g. fewer distinct clusters than k on china.jpg at k=256: the same
        # for every library and not the benchmark's business.
        warnings.simplefilter("ignore")
        timed = library.prepare(
            case.task, data, case.k, reference=reference, model=session.models.get(model_key)
        )
        if timed is None:
            return None
        times, raw = measure.time_calls(timed.call, budget)
        fitted = timed.outcome(raw)
    if case.task == "fit-init":
        session.models[model_key] = raw
    if library.name == REFERENCE:
        session.references[case] = fitted
    inertia, accuracy = measure.score(fitted, data.X, data.target)
    return measure.Measurement(times=times, inertia=inertia, accuracy=accuracy, n_iter=fitted.n_iter)


def _notify(progress, case, library):
    if progress is not None:
        progress(case, library)
