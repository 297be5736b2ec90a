"""KMeans benchmarks: fastkm beside scikit-learn on the seeds' datasets.

Run with ``python -m pytest benchmarks --benchmark-only``. Each group holds the
same case for both libraries; fits start from the same k-means++ init array.
Warm-up rounds keep JIT compilation out of the timings.
"""

import numpy as np
import pytest
import sklearn.cluster

import fastkm
from fastkm import datasets

from .conftest import settle

LIBRARIES = {"fastkm": fastkm.KMeans, "sklearn": sklearn.cluster.KMeans}

FIT_CASES = [("blobs", 4), ("digits", 10), ("china", 16), ("china", 64)]

_LOADERS = {"blobs": datasets.blobs, "digits": datasets.digits, "china": datasets.china}
_cache = {}


def _data(name, k):
    if (name, k) not in _cache:
        X = _LOADERS[name]()
        init, _ = sklearn.cluster.kmeans_plusplus(X, k, random_state=0)
        _cache[name, k] = X, init
    return _cache[name, k]


def _rounds(name):
    # china: 9 rounds, so that one slow round does not move the median.
    return {"blobs": 200, "digits": 50}.get(name, 9)


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("name, k", FIT_CASES, ids=[f"{n}-k{k}" for n, k in FIT_CASES])
def test_fit_same_init(benchmark, name, k, library):
    X, init = _data(name, k)
    estimator = LIBRARIES[library]
    benchmark.group = f"{name}|KMeans.fit same init|k={k}"
    benchmark.extra_info["library"] = library
    settle()
    model = benchmark.pedantic(
        lambda: estimator(k, init=init, n_init=1).fit(X), rounds=_rounds(name), warmup_rounds=1
    )
    benchmark.extra_info["inertia"] = float(model.inertia_)
    benchmark.extra_info["n_iter"] = int(model.n_iter_)


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_predict_china_k64(benchmark, library):
    X, init = _data("china", 64)
    model = LIBRARIES[library](64, init=init, n_init=1).fit(X)
    benchmark.group = "china|KMeans.predict|k=64"
    benchmark.extra_info["library"] = library
    settle()
    labels = benchmark.pedantic(model.predict, args=(X,), rounds=20, warmup_rounds=2)
    benchmark.extra_info["inertia"] = float(-model.score(X))
    assert labels.shape == (X.shape[0],)


def test_results_agree():
    # Speed without quality is no speed: the fits being timed agree.
    for name, k in FIT_CASES:
        X, init = _data(name, k)
        ours = fastkm.KMeans(k, init=init, n_init=1).fit(X)
        theirs = sklearn.cluster.KMeans(k, init=init, n_init=1).fit(X)
        assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-6)
        assert np.array_equal(ours.labels_, theirs.labels_)
