"""What compiling a kernel group runs: small calls through the public API that reach every kernel.

A group is the set of kernels one kind of public call needs (``_tiers``
decides per call from the group's ready stamp):

``predict``    ``predict``, ``transform``, ``score`` on dense data (any estimator)
``kmeans``     ``KMeans.fit`` on dense data, every algorithm; ``kmeans_plusplus``
``minibatch``  ``MiniBatchKMeans.fit`` and ``partial_fit`` on dense data
``sparse``     every call on CSR data
``metrics``    ``fastkm.metrics``' silhouette (float64; float32 for data it holds exactly)

Each group is a list of steps, run for float64 and float32. The data are tiny
(compiling is the cost, not running), but shaped to take each branch that
compiles something of its own: every algorithm, both tile widths, weights and
negative weights, each kind of init, several inits, the duplicate-rows path
(from 16,384 rows), centres of the other dtype than the data's. A call runs
the kernels of its data's dtype (a model given data of the other dtype is
carried over to it), so each unit compiles its own dtype's kernels only. A
miss (a call that compiles anyway) only costs time; ``tests/test_tiers.py``
checks that the public paths load everything from a compiled cache.
"""

import warnings

import numpy as np
import scipy.sparse as sp

GROUPS = ("predict", "kmeans", "minibatch", "sparse", "metrics")
DTYPES = (np.float64, np.float32)


def _data(n_samples, n_features, dtype, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(8, n_features))
    X = centers[rng.integers(0, 8, n_samples)] + rng.normal(size=(n_samples, n_features))
    return X.astype(dtype)


def _colours(dtype):
    # Colour-like rows with many copies: the duplicate-rows path (>= 16,384 rows).
    rng = np.random.default_rng(1)
    return (rng.integers(0, 24, size=(1 << 14, 3)) / 24.0).astype(dtype)


def _fitted(cls, centers, **params):
    # A fitted estimator without fitting (the predict group compiles no fit).
    estimator = cls(n_clusters=centers.shape[0], **params)
    estimator.cluster_centers_ = centers
    estimator.n_features_in_ = centers.shape[1]
    estimator._n_features_out = centers.shape[0]
    return estimator


def _predict(dtype):
    from ._kmeans import KMeans

    for n_features in (2, 8, 24):
        X = _data(600, n_features, dtype)
        weights = np.ones(len(X), dtype=dtype)
        for centers_dtype in DTYPES:
            model = _fitted(KMeans, X[:5].astype(centers_dtype))
            model.predict(X)
            if np.result_type(dtype, centers_dtype) == dtype:
                # float32 data, float64 centres: float64 distances, the float64 unit's.
                model.transform(X)
            model.score(X)
            model.score(X, sample_weight=weights)
        yield f"predict {n_features} features"


def _kmeans(dtype):
    from ._kmeans import KMeans, kmeans_plusplus
    from ._solvers import layout

    shapes = {
        "lloyd": (600, 2, 4),  # past 512 rows: fastkm's own sums, a whole tiled run
        "elkan": (400, 8, 8),
        "hamerly": (1100, 8, 64),
        "yinyang": (2100, 32, 128),
    }
    for algorithm, (n_samples, n_features, k) in shapes.items():
        X = _data(n_samples, n_features, dtype)
        KMeans(k, algorithm=algorithm, random_state=0, max_iter=5).fit(X)
        weights = np.random.default_rng(0).uniform(0.5, 2.0, n_samples)
        KMeans(k, algorithm=algorithm, random_state=0, max_iter=5).fit(X, sample_weight=weights)
        yield f"KMeans {algorithm}"
    for n_features in (3, 16):
        X = _data(500, n_features, dtype)
        KMeans(4, init="random", n_init=2, random_state=0, max_iter=5).fit(X)
        KMeans(4, init=X[:4], random_state=0, copy_x=False).fit(X.copy())
        KMeans(4, init=lambda X, k, random_state: X[:k], random_state=0).fit(X)
        weights = np.ones(len(X))
        weights[0] = -0.5
        KMeans(4, init=X[:4], algorithm="hamerly", max_iter=5).fit(X, sample_weight=weights)
        kmeans_plusplus(X, 4, random_state=0)
        kmeans_plusplus(X, 4, sample_weight=np.ones(len(X)), random_state=0)
        yield f"KMeans inits {n_features} features"
    # Brute force on tiled rows in whole runs (float32 first for float64 past
    # 65,536 multiply-adds an iteration), and step by step past 4 million.
    X = _data(600, 16, dtype)
    KMeans(8, algorithm="lloyd", random_state=0, max_iter=5).fit(X)
    KMeans(8, init=np.repeat(X[:1], 8, axis=0), n_init=1, algorithm="lloyd", max_iter=3).fit(X)
    yield "KMeans lloyd, whole runs"
    # Data whose float32 copy would pass the tiled copy's budget: Lloyd scored in X's dtype.
    budget = layout.TILED_COPY_BUDGET
    layout.TILED_COPY_BUDGET = 0
    try:
        KMeans(4, algorithm="lloyd", random_state=0, max_iter=5).fit(_data(600, 8, dtype))
    finally:
        layout.TILED_COPY_BUDGET = budget
    yield "KMeans lloyd, large data"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = _colours(dtype)
        KMeans(8, random_state=0, max_iter=5).fit(X)
        KMeans(64, random_state=0, max_iter=3).fit(X)
        # Copies of one centre: empty clusters are relocated, and each
        # algorithm's bounds brought up to date after it; on at most 512
        # rows between whole runs and with scikit-learn's sums, past them
        # with fastkm's own.
        for algorithm in ("lloyd", "elkan", "hamerly", "yinyang"):
            init = np.repeat(X[:1], 5, axis=0)
            for rows in (200, 600):
                KMeans(5, init=init, n_init=1, max_iter=3, algorithm=algorithm).fit(X[:rows])
    yield "KMeans duplicate rows"


def _minibatch(dtype):
    from ._minibatch_kmeans import MiniBatchKMeans

    for n_features in (3, 16):
        X = _data(2000, n_features, dtype)
        weights = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
        MiniBatchKMeans(8, batch_size=256, random_state=0, max_iter=3, n_init=1).fit(X)
        MiniBatchKMeans(8, batch_size=256, random_state=0, max_iter=3, init="random").fit(
            X, sample_weight=weights
        )
        MiniBatchKMeans(8, init=X[:8], n_init=1, random_state=0, compute_labels=False, max_iter=2).fit(X)
        # Reassignment of low-count centres (a high ratio makes it happen).
        MiniBatchKMeans(30, batch_size=100, reassignment_ratio=0.5, random_state=0, max_iter=3).fit(X)
        online = MiniBatchKMeans(8, random_state=0, n_init=1)
        for start in range(0, 1200, 300):
            online.partial_fit(X[start : start + 300])
        _capped_reassignment(MiniBatchKMeans, X)
        yield f"MiniBatchKMeans {n_features} features"


def _capped_reassignment(cls, X):
    # More starved centres than half a batch: numpy's argsort picks those
    # that stay, between two kernel calls (fit and partial_fit).
    cls(40, batch_size=20, random_state=0, max_iter=2).fit(X)
    online = cls(40, batch_size=20, random_state=0)
    for start in range(0, 400, 50):
        online.partial_fit(X[start : start + 50])


def _sparse(dtype):
    from ._kmeans import KMeans, kmeans_plusplus
    from ._minibatch_kmeans import MiniBatchKMeans

    dense = _data(600, 20, dtype)
    dense[np.abs(dense) < 2.0] = 0
    X = sp.csr_matrix(dense)
    for algorithm in ("lloyd", "elkan"):
        model = KMeans(6, algorithm=algorithm, random_state=0, max_iter=5).fit(X)
    model.predict(X)
    model.transform(X)
    model.score(X)
    model.score(X, sample_weight=np.ones(X.shape[0]))
    KMeans(6, init="random", n_init=2, random_state=0, max_iter=5).fit(X, sample_weight=np.ones(X.shape[0]))
    kmeans_plusplus(X, 6, random_state=0)
    # A centre nobody is nearest to: an empty cluster, relocated.
    far = np.vstack([dense[:2], np.full((1, dense.shape[1]), 1e3, dtype=dtype)])
    KMeans(3, init=far, n_init=1, max_iter=3).fit(X)
    # At most 512 rows: the centre sums made as scikit-learn makes them.
    KMeans(3, init=far, n_init=1, max_iter=3).fit(X[:300])
    yield "sparse KMeans"
    MiniBatchKMeans(6, batch_size=128, random_state=0, max_iter=3).fit(X)
    MiniBatchKMeans(30, batch_size=64, reassignment_ratio=0.5, random_state=0, max_iter=3).fit(X)
    online = MiniBatchKMeans(6, random_state=0, n_init=1)
    for start in range(0, 600, 200):
        online.partial_fit(X[start : start + 200])
    _capped_reassignment(MiniBatchKMeans, X)
    yield "sparse MiniBatchKMeans"


def _metrics(dtype):
    from .metrics import silhouette_samples
    from .metrics._silhouette import silhouette_scores

    # Narrow (d <= 4, distances in registers) and wide rows; blocks with and
    # without a partner (odd cluster runs), tiles off and on the diagonal;
    # several labellings at once (a k sweep).
    for n_features in (3, 9):
        X = _data(700, n_features, dtype)
        if dtype == np.float32:
            # float32 kernels: data whose squared distances float32 holds exactly.
            X = np.rint(X * 10)
        silhouette_samples(X, np.arange(len(X)) % 5)
        silhouette_scores(X, [np.arange(len(X)) % 5, np.arange(len(X)) % 3])
    yield "silhouette"


_STEPS = {
    "predict": _predict,
    "kmeans": _kmeans,
    "minibatch": _minibatch,
    "sparse": _sparse,
    "metrics": _metrics,
}

#: A unit of compiling: one group's calls for one dtype, ``"kmeans:float64"``.
UNITS = tuple(f"{group}:{np.dtype(dtype).name}" for group in GROUPS for dtype in DTYPES)

# Steps per unit (for a progress bar's total), and a rough share of the
# compile time (for spreading units over processes).
N_STEPS = {"predict": 3, "kmeans": 8, "minibatch": 2, "sparse": 2, "metrics": 1}
WEIGHT = {"predict": 1, "kmeans": 5, "minibatch": 2, "sparse": 2, "metrics": 1}


def units_of(group):
    """The units of ``group``, one per dtype."""
    return [unit for unit in UNITS if unit.partition(":")[0] == group]


def run(unit):
    """Run a unit's calls (``"group:dtype"``), yielding a label as each step is done."""
    group, _, dtype = unit.partition(":")
    for label in _STEPS[group](np.dtype(dtype).type):
        yield f"{label}, {dtype}"
