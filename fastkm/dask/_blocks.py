"""What a Dask worker computes on one block of rows, from its inputs alone.

The moments and checks of the setup pass, the centring, the farthest rows
for empty-cluster relocation, k-means||'s draws, and the labels,
distances and inertia of ``predict``, ``transform`` and ``score``. Each
reads its inputs and returns new arrays; the per-block results are added in
block order (``add``, ``combine``), so no result depends on which worker ran
what. What a worker keeps for a block across a fit is in ``_states``.
Kernels run with the worker's own thread count (``worker_threads``).
"""

import numba
import numpy as np

from .._kernels._jit import start_threads
from .._solvers import predict


def worker_threads():
    """Give numba's kernels in this task the threads of the worker running it, no more.

    A worker with one thread runs one task at a time: its kernels get one
    thread, so two workers on two cores do not fight for them. Outside a
    worker (dask's local schedulers), numba's own count.
    """
    try:
        from distributed import get_worker

        n_threads = get_worker().state.nthreads
    except (ImportError, ValueError):
        start_threads()  # this process's own count, as fastkm.KMeans starts them
        return
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))


# Rows column_moments converts to float64 at a time: small temporaries for a large block.
_MOMENT_ROWS = 1 << 15


def column_moments(X):
    """The block's row count, column means and summed squared deviations (float64).

    Taken ``_MOMENT_ROWS`` rows at a time and merged (``merge_moments``), so
    the float64 temporaries stay small whatever the block's size. A NaN or an
    infinity anywhere in the block makes them non-finite.
    """
    moments = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for start in range(0, X.shape[0], _MOMENT_ROWS):
        part = np.asarray(X[start : start + _MOMENT_ROWS], dtype=np.float64)
        means = part.mean(axis=0)
        moments = merge_moments(moments, (part.shape[0], means, ((part - means) ** 2).sum(axis=0)))
    return moments


def is_finite(X):
    """Whether every value of the block is finite."""
    return bool(np.isfinite(X).all())


def merge_moments(a, b):
    """Two blocks' moments as one (Chan et al.'s pairwise update)."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    if n == 0:
        return a
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    return n, mean, m2_a + m2_b + delta * delta * (n_a * n_b / n)


def center_block(X, means):
    """The block minus the column means, in its own dtype."""
    return X - means.astype(X.dtype)


def weights_of(X, sample_weight):
    """The block's weights in its dtype; ones for None."""
    if sample_weight is None:
        return np.ones(X.shape[0], dtype=X.dtype)
    return np.ascontiguousarray(sample_weight, dtype=X.dtype)


def add(a, b):
    """Two blocks' sums added (``a`` is the earlier block's)."""
    return a + b


def combine(a, b):
    """Two shares of an iteration added (``a`` is the earlier block)."""
    return a[0] + b[0], a[1] + b[1]


def farthest_rows(X, sample_weight, centers, labels, n, offset):
    """The block's ``n`` rows farthest from their own centre, for empty-cluster relocation.

    Returns (distances, global row indices, rows, weights, labels), farthest
    first, ties by row index; fewer when the block has fewer rows.
    """
    X = np.ascontiguousarray(X)
    distances = ((X - centers[labels]) ** 2).sum(axis=1)
    order = np.lexsort((np.arange(len(X)), -distances))[:n]
    return distances[order], order + offset, X[order], weights_of(X, sample_weight)[order], labels[order]


def merge_farthest(a, b, n):
    """The ``n`` farthest of two blocks' candidates, farthest first, ties by row index."""
    merged = [np.concatenate([x, y]) for x, y in zip(a, b, strict=True)]
    order = np.lexsort((merged[1], -merged[0]))[:n]
    return tuple(part[order] for part in merged)


def block_labels(X, centers):
    """Nearest-centre labels of a block of rows, and whether it is finite."""
    worker_threads()
    return predict.predict_labels(np.ascontiguousarray(X), centers)


def block_distances(X, centers):
    """Euclidean distances from the block's rows to every centre."""
    worker_threads()
    return predict.euclidean_distances(np.ascontiguousarray(X), centers)


def labelled_inertia(X, sample_weight, centers, labels):
    """The block's weighted squared distances to its rows' centres, summed."""
    worker_threads()
    X = np.ascontiguousarray(X)
    centers = np.ascontiguousarray(centers, dtype=X.dtype)
    return predict.total_inertia(X, weights_of(X, sample_weight), centers, labels)


def label_pairs(labels1, labels2, n_clusters):
    """The distinct (label in one run, label in another) pairs of a block, as ``l1 * k + l2``."""
    return np.unique(labels1.astype(np.int64) * n_clusters + labels2)


def nearest_sq_distances(X, centers):
    """Each row's squared distance to its nearest centre (float64), and its label."""
    worker_threads()
    X = np.ascontiguousarray(X)
    labels, _ = predict.predict_labels(X, np.ascontiguousarray(centers, dtype=X.dtype))
    diff = X.astype(np.float64) - centers[labels].astype(np.float64)
    return np.einsum("ij,ij->i", diff, diff), labels


def weighted_cost(sq_distances, sample_weight):
    """The block's share of the potential: its weighted squared distances, summed."""
    if sample_weight is None:
        return float(sq_distances.sum())
    return float(np.dot(np.asarray(sample_weight, dtype=np.float64), sq_distances))


def sample_candidates(X, sample_weight, sq_distances, scale, seed):
    """k-means||'s draw in a block: each row with probability min(1, scale * w * d^2).

    ``seed`` (the fit's seed, the round and the block's index) makes the draw
    the block's own, whichever worker runs it.
    """
    rng = np.random.default_rng(seed)
    p = scale * weights_of(X, sample_weight).astype(np.float64) * sq_distances
    return np.ascontiguousarray(X)[rng.random(X.shape[0]) < p]


def candidate_weights(X, sample_weight, candidates):
    """The total weight of the block's rows nearest each candidate."""
    _, labels = nearest_sq_distances(X, candidates)
    weights = weights_of(X, sample_weight).astype(np.float64)
    return np.bincount(labels, weights=weights, minlength=len(candidates))


def row_at(X, index):
    """One row of the block, as a 1-row array."""
    return np.array(X[index : index + 1])


def weight_total(X, sample_weight):
    """The block's total weight (float64)."""
    return float(weights_of(X, sample_weight).astype(np.float64).sum())


def row_by_weight(X, sample_weight, values, target):
    """The first row whose running sum of ``w * values`` (or ``w``) exceeds ``target``."""
    weights = weights_of(X, sample_weight).astype(np.float64)
    running = np.cumsum(weights if values is None else weights * values)
    index = min(int(np.searchsorted(running, target, side="right")), X.shape[0] - 1)
    return row_at(X, index)
