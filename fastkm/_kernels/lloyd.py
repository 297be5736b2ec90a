"""Lloyd iteration kernels: assignment, partial sums, inertia, centre update.

Rows are processed in chunks of ``CHUNK``; consecutive chunks form *groups*
(``n_groups`` is fixed by the caller from the data shape only). Each group owns
one slot of every partial-result buffer, and groups are reduced in index order,
so every result is bit-for-bit the same whatever the number of threads.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, kernel, parallel_kernel
from .tiles import load_tile, new_tile, tile_argmin


@kernel
def group_bounds(g, n_groups, n_samples):
    """First and one-past-last row of group ``g``."""
    n_chunks = -(-n_samples // CHUNK)
    chunks_per_group = -(-n_chunks // n_groups)
    start = min(g * chunks_per_group * CHUNK, n_samples)
    stop = min((g + 1) * chunks_per_group * CHUNK, n_samples)
    return start, stop


@parallel_kernel
def lloyd_step(
    X,
    sample_weight,
    centers,
    center_sq_norms,
    labels,
    group_partials,
    group_changed,
):
    """One fused E+M pass: labels, per-group weighted sums, changed-label count.

    X : (n_samples, n_features) IN, C-contiguous
    sample_weight : (n_samples,) IN
    centers : (n_clusters, padded_width) IN, zero-padded to the tile width
    center_sq_norms : (n_clusters,) IN
    labels : (n_samples,) int32 INOUT, previous labels in, new labels out
    group_partials : (n_groups, n_clusters, n_features + 1) OUT, per group the
        weighted coordinate sums of each cluster, its total weight in the last
        column; pass shape (n_groups, 0, 0) for a labels-only pass (predict)
    group_changed : (n_groups,) int64 OUT, labels that differ from the input
    """
    n_samples, n_features = X.shape
    n_groups = group_changed.shape[0]
    update_centers = group_partials.shape[1] > 0
    for g in prange(n_groups):
        tile = new_tile(n_features, X.dtype)
        scores = np.empty(CHUNK, dtype=X.dtype)
        best = np.empty(CHUNK, dtype=X.dtype)
        chunk_labels = np.empty(CHUNK, dtype=np.int32)
        # Task-private accumulator, weights beside the sums in the same row: kept
        # apart, the weight stores made the sum loads stall now and then (an
        # address-dependent 4-15x slowdown of the update seen on this machine).
        acc = np.zeros(group_partials.shape[1:], dtype=group_partials.dtype)
        changed = 0
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        for start in range(g_start, g_stop, CHUNK):
            stop = min(start + CHUNK, g_stop)
            n_rows = stop - start
            load_tile(X, start, stop, tile)
            tile_argmin(tile, n_rows, centers, center_sq_norms, scores, best, chunk_labels)
            for i in range(n_rows):
                changed += labels[start + i] != chunk_labels[i]
                labels[start + i] = chunk_labels[i]
            if update_centers:
                for i in range(n_rows):
                    label = chunk_labels[i]
                    w = sample_weight[start + i]
                    for f in range(n_features):
                        acc[label, f] += w * X[start + i, f]
                    acc[label, n_features] += w
        group_partials[g] = acc
        group_changed[g] = changed


@parallel_kernel
def reduce_groups(group_partials, sums, weights):
    """Add the group partials in group order (deterministic), one cluster per task.

    group_partials : (n_groups, n_clusters, n_features + 1) IN
    sums : (n_clusters, n_features) OUT
    weights : (n_clusters,) OUT
    """
    n_groups, n_clusters, width = group_partials.shape
    n_features = width - 1
    for j in prange(n_clusters):
        for f in range(n_features):
            sums[j, f] = group_partials[0, j, f]
        w = group_partials[0, j, n_features]
        for g in range(1, n_groups):
            for f in range(n_features):
                sums[j, f] += group_partials[g, j, f]
            w += group_partials[g, j, n_features]
        weights[j] = w


@kernel
def average_centers(centers, weights):
    """Divide each cluster's weighted sum by its weight, in place.

    A cluster that still has zero weight (possible only when every point sits
    on its centre, or its relocated point has zero weight) takes the row of the
    heaviest cluster as it stands at that moment, exactly as scikit-learn does.

    centers : (n_clusters, n_features) INOUT, weighted sums in, means out
    weights : (n_clusters,) IN
    """
    n_clusters, n_features = centers.shape
    heaviest = np.argmax(weights)
    for j in range(n_clusters):
        if weights[j] > 0:
            # Reciprocal in double then rounded to the data type, as in sklearn.
            alpha = centers.dtype.type(1.0 / np.float64(weights[j]))
            for f in range(n_features):
                centers[j, f] *= alpha
        else:
            for f in range(n_features):
                centers[j, f] = centers[heaviest, f]


@kernel
def center_shift_total(old_centers, new_centers):
    """Sum over clusters of the squared distance each centre moved."""
    n_clusters, n_features = old_centers.shape
    total = 0.0
    for j in range(n_clusters):
        s = 0.0
        for f in range(n_features):
            diff = new_centers[j, f] - old_centers[j, f]
            s += diff * diff
        total += s
    return total


@parallel_kernel
def inertia(X, sample_weight, centers, labels, group_partials):
    """Weighted sum of squared distances of rows to their assigned centre.

    Computed from exact differences (not the norm expansion), accumulated in
    float64 per group and reduced in group order.

    X : (n_samples, n_features) IN
    sample_weight : (n_samples,) IN
    centers : (n_clusters, n_features) IN
    labels : (n_samples,) int32 IN
    group_partials : (n_groups,) float64 scratch
    """
    n_samples, n_features = X.shape
    n_groups = group_partials.shape[0]
    for g in prange(n_groups):
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        acc = 0.0
        for i in range(g_start, g_stop):
            label = labels[i]
            s = 0.0
            for f in range(n_features):
                diff = np.float64(X[i, f]) - np.float64(centers[label, f])
                s += diff * diff
            acc += s * sample_weight[i]
        group_partials[g] = acc
    total = 0.0
    for g in range(n_groups):
        total += group_partials[g]
    return total


@parallel_kernel
def euclidean_distances(X, centers, n_groups, out):
    """Euclidean distance from every row of X to every centre.

    Exact differences accumulated in float64, then stored in ``out``'s dtype.

    X : (n_samples, n_features) IN
    centers : (n_clusters, n_features) IN
    out : (n_samples, n_clusters) OUT
    """
    n_samples, n_features = X.shape
    n_clusters = centers.shape[0]
    for g in prange(n_groups):
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        for i in range(g_start, g_stop):
            for j in range(n_clusters):
                s = 0.0
                for f in range(n_features):
                    diff = np.float64(X[i, f]) - np.float64(centers[j, f])
                    s += diff * diff
                out[i, j] = np.sqrt(s)
