"""The exact algorithms side by side: the measurements behind ``algorithm="auto"``.

Each group fits one shape from one k-means++ init with every algorithm
("auto" included); all give the same result, so only the time differs.
Each is timed for about half a second of fits (at least 3 rounds). The
summary gives each algorithm's speed-up over brute force (``"lloyd"``) and
auto's time over the fastest fixed algorithm's.
"""

import time

import numpy as np
import pytest
import sklearn.cluster
from sklearn.datasets import make_blobs

from fastkm import KMeans, datasets
from fastkm.bench.measure import settle

_ALGORITHMS = ["lloyd", "hamerly", "yinyang", "elkan", "auto"]
# Elkan's bounds take n_samples x n_clusters float64 and it is slow: small shapes only.
_ELKAN_MAX_BOUNDS = 30_000_000


def _blobs(n_features):
    return make_blobs(100_000, n_features=n_features, centers=100, cluster_std=2.0, random_state=0)[0]


_SHAPES = {
    # fastkm bench's cases
    "blobs-k4": (datasets.blobs, 4),
    "digits-k10": (datasets.digits, 10),
    "large-k32": (datasets.large_blobs, 32),
    "highd-k100": (datasets.high_dim_blobs, 100),
    # shapes around auto's choices
    "china-k64": (datasets.china, 64),
    "china-k256": (datasets.china, 256),
    "blobs-d8-k512": (lambda: _blobs(8), 512),
    "blobs-d16-k256": (lambda: _blobs(16), 256),
    "blobs-d64-k128": (lambda: _blobs(64), 128),
    "blobs-d64-k256": (lambda: _blobs(64), 256),
}


# Rounds fill about this many seconds (3 to 200 of them): three fits of a
# millisecond were as far apart as 10% in one run, identical code included.
_ROUND_SECONDS = 0.5


def _rounds(fit):
    """How many rounds to time ``fit`` for, from one call (which also warms it up)."""
    start = time.perf_counter()
    fit()
    took = time.perf_counter() - start
    return int(min(200, max(3, _ROUND_SECONDS // max(took, 1e-6))))


@pytest.mark.parametrize("algorithm", _ALGORITHMS)
@pytest.mark.parametrize("shape", list(_SHAPES))
def test_exact_algorithm(benchmark, shape, algorithm):
    load, k = _SHAPES[shape]
    X = load()
    if algorithm == "elkan" and X.shape[0] * k > _ELKAN_MAX_BOUNDS:
        pytest.skip("Elkan's n_samples x n_clusters bounds: small shapes only")
    init, _ = sklearn.cluster.kmeans_plusplus(X, k, random_state=0)
    benchmark.group = f"exact algorithms|{shape}"
    benchmark.extra_info["algorithm"] = algorithm
    settle()

    def fit():
        return KMeans(k, init=init, n_init=1, algorithm=algorithm).fit(X)

    model = benchmark.pedantic(fit, rounds=_rounds(fit), warmup_rounds=1)
    benchmark.extra_info["n_iter"] = model.n_iter_
    benchmark.extra_info["inertia"] = model.inertia_
    reference = KMeans(k, init=init, n_init=1, algorithm="lloyd").fit(X)
    np.testing.assert_array_equal(model.labels_, reference.labels_)
