"""MiniBatchKMeans benchmarks: fastkm beside scikit-learn, default parameters.

Run with ``python -m pytest benchmarks --benchmark-only``. Each case is timed
for random_state 0, 1 and 2 (one group per seed); the summary at the end gives
the median speed-up over the seeds. Warm-up rounds keep JIT compilation out.
"""

import numpy as np
import pytest
import sklearn.cluster

import fastkm
from fastkm import datasets

from .conftest import settle

LIBRARIES = {"fastkm": fastkm.MiniBatchKMeans, "sklearn": sklearn.cluster.MiniBatchKMeans}
CASES = [("digits", 10), ("china", 16), ("china", 64), ("china", 256), ("large_blobs", 32)]
SEEDS = [0, 1, 2]
_LOADERS = {"digits": datasets.digits, "china": datasets.china, "large_blobs": datasets.large_blobs}
_cache = {}


def _data(name):
    if name not in _cache:
        _cache[name] = _LOADERS[name]()
    return _cache[name]


def _rounds(name):
    return {"digits": 30, "china": 3}.get(name, 1)


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name, k", CASES, ids=[f"{n}-k{k}" for n, k in CASES])
def test_minibatch_fit(benchmark, name, k, seed, library):
    X = _data(name)
    estimator = LIBRARIES[library]
    benchmark.group = f"{name}|MiniBatchKMeans.fit|k={k}|seed={seed}"
    benchmark.extra_info["library"] = library
    settle()
    model = benchmark.pedantic(
        lambda: estimator(k, random_state=seed).fit(X),
        rounds=_rounds(name),
        warmup_rounds=1 if library == "fastkm" else 0,
    )
    benchmark.extra_info["inertia"] = float(model.inertia_)
    benchmark.extra_info["n_steps"] = int(model.n_steps_)


def test_same_trajectory():
    # The fits being timed are scikit-learn's own, step for step.
    X = _data("china")
    ours = fastkm.MiniBatchKMeans(16, random_state=0).fit(X)
    theirs = sklearn.cluster.MiniBatchKMeans(16, random_state=0).fit(X)
    assert ours.n_steps_ == theirs.n_steps_
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-9)
