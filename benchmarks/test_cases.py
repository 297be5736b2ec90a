"""fastkm beside scikit-learn (and installed peers) on every case of fastkm.bench's table.

Run with ``python -m pytest benchmarks --benchmark-only``; add
``--benchmark-json=PATH`` to keep the run for ``pytest-benchmark compare``.
Each group (``dataset|estimator|k``) holds one case for every library, so
pytest-benchmark's tables put them side by side; the summary at the end gives
the speed-ups. The calls are the ones ``fastkm bench`` times, prepared by the
same code. A warm-up round keeps JIT compilation out of the timings. The
cold-start cases run in fresh processes and are left to ``fastkm bench``.
"""

import warnings

import pytest

from fastkm.bench import CASES, LIBRARIES
from fastkm.bench.cases import load_dataset
from fastkm.bench.libraries import REFERENCE, CaseData
from fastkm.bench.measure import score, settle

IN_PROCESS = [case for case in CASES if not (case.cold_start or case.on_cluster)]
_datasets, _data, _references = {}, {}, {}


def _case_data(case):
    import sklearn.cluster

    if case.dataset not in _datasets:
        _datasets[case.dataset] = load_dataset(case.dataset)
    key = case.dataset, case.k
    if key not in _data:
        X, target = _datasets[case.dataset]
        init = sklearn.cluster.kmeans_plusplus(X, case.k, random_state=0)[0]
        _data[key] = CaseData(X, target, init)
    return _data[key]


def _reference(case, data):
    """scikit-learn's fit from the shared init, for libraries that follow it (faiss: its n_iter)."""
    key = case.dataset, case.k
    if key not in _references:
        timed = LIBRARIES[REFERENCE].prepare("fit-init", data, case.k)
        _references[key] = timed.outcome(timed.call())
    return _references[key]


def _rounds(case):
    if case.dataset == "blobs":
        return 200
    if case.dataset == "digits":
        return 50
    if case.task == "predict":
        return 20
    return 3 if case.dataset in ("large", "highd", "sparse") else 5 if case.k >= 256 else 9


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("case", IN_PROCESS, ids=[case.name for case in IN_PROCESS])
def test_case(benchmark, case, library):
    lib = LIBRARIES[library]
    if not lib.available():
        pytest.skip(f"{library} is not installed (pip install {lib.distribution})")
    data = _case_data(case)
    reference = _reference(case, data) if lib.needs_reference else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        timed = lib.prepare(case.task, data, case.k, reference=reference)
        if timed is None:
            pytest.skip(f"{library} has no {case.task}")
        benchmark.group = case.group
        benchmark.extra_info["library"] = library
        settle()
        raw = benchmark.pedantic(timed.call, rounds=_rounds(case), warmup_rounds=1)
    fitted = timed.outcome(raw)
    inertia, accuracy = score(fitted, data.X, data.target)
    benchmark.extra_info["inertia"] = inertia
    if accuracy is not None:
        benchmark.extra_info["accuracy"] = accuracy
    if fitted.n_iter is not None:
        benchmark.extra_info["n_iter"] = fitted.n_iter
