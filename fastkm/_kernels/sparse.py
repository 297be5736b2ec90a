"""CSR kernels: scoring sparse rows against dense centres.

X arrives as the tuple ``(data, indices, starts, stops, n_features)`` of a
CSR matrix or of some of its rows (indices sorted or not; see ``rows``). What
does not depend on the storage is shared with the dense kernels: the row
groups (``lloyd.group_bounds``), the centre-sum corrections
(``lloyd.accumulate_changes``, through ``rows.add_row``) and the end of an
iteration (``lloyd.finish_iteration``), so labels give the same centres
whichever form X came in.

A row's dot products with all the centres are accumulated over its stored
values against the centres stored feature-major (``centers_t``, one row of
``n_clusters`` values per feature): the loop over centres is unit-stride and
vectorises, and each centre's sum still adds the row's values in storage
order, as scikit-learn's sparse kernel does, with its roundings (no FMA), so
ties break as there.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, exact_kernel, kernel, parallel_kernel, prefetch
from .lloyd import accumulate_changes, group_bounds
from .rows import n_rows

# Stored values ahead whose centre row is prefetched, and doubles per cache line.
_PREFETCH_AHEAD = 4
_LINE = 8


@kernel
def float64_sq_norms(centers):
    """Squared norm of every centre, in float64."""
    out = np.empty(centers.shape[0])
    for j in range(centers.shape[0]):
        s = 0.0
        for f in range(centers.shape[1]):
            s += np.float64(centers[j, f]) * np.float64(centers[j, f])
        out[j] = s
    return out


@kernel
def transposed(centers, dtype):
    """The centres feature-major: (n_features, n_clusters) in ``dtype``."""
    n_clusters, n_features = centers.shape
    out = np.empty((n_features, n_clusters), dtype=dtype)
    # Written in order, read as one stream per centre (9x faster than
    # writing one centre's column at a time at 10,000 x 32).
    for f in range(n_features):
        for j in range(n_clusters):
            out[f, j] = centers[j, f]
    return out


@exact_kernel
def row_dots(X, r, centers_t, dots):
    """``dots[j] = x_r . c_j`` for every centre, in ``dots``' dtype, storage order.

    centers_t : (n_features, n_clusters) IN, see ``transposed``
    dots : (n_clusters,) OUT
    """
    data, indices, starts, stops, _ = X
    n_clusters = dots.shape[0]
    last = indices.shape[0] - 1
    for j in range(n_clusters):
        dots[j] = 0
    for p in range(starts[r], stops[r]):
        # The centres' row for a value a few ahead (10,000 x 32 centres: 10%
        # off the iteration; the rows are gathered from all over).
        ahead = indices[min(p + _PREFETCH_AHEAD, last)]
        for j in range(0, n_clusters, _LINE):
            prefetch(centers_t, ahead, j)
        x = dots.dtype.type(data[p])
        column = centers_t[indices[p]]
        for j in range(n_clusters):
            dots[j] += column[j] * x


@exact_kernel
def row_argmin(X, r, centers_t, center_sq_norms, dots):
    """Nearest centre of row ``r`` by ``||c||^2 - 2 x.c`` (the first on ties)."""
    row_dots(X, r, centers_t, dots)
    two = dots.dtype.type(2)
    best = np.inf
    label = 0
    for j in range(dots.shape[0]):
        score = center_sq_norms[j] - two * dots[j]
        if score < best:
            best = score
            label = j
    return label


@kernel
def _assign_rows(X, sample_weight, centers_t, center_sq_norms, labels, row_start, row_stop, out):
    """Label rows ``row_start:row_stop``; correct the centre sums for those relabelled.

    The sparse twin of ``lloyd._assign_rows``: labels INOUT, ``out`` the
    corrections (shape (0, 0) for labels only); returns the number changed.
    """
    update_centers = out.shape[0] > 0
    dots = np.empty(centers_t.shape[1], dtype=center_sq_norms.dtype)
    old_labels = np.empty(CHUNK, dtype=np.int32)
    chunk_labels = np.empty(CHUNK, dtype=np.int32)
    every_row = np.arange(CHUNK)
    for j in range(out.shape[0]):
        for f in range(out.shape[1]):
            out[j, f] = 0.0
    changed = 0
    for start in range(row_start, row_stop, CHUNK):
        n_rows = min(CHUNK, row_stop - start)
        for i in range(n_rows):
            chunk_labels[i] = row_argmin(X, start + i, centers_t, center_sq_norms, dots)
            old_labels[i] = labels[start + i]
            changed += old_labels[i] != chunk_labels[i]
            labels[start + i] = chunk_labels[i]
        if update_centers:
            accumulate_changes(X, start, every_row, n_rows, old_labels, chunk_labels, sample_weight, out)
    return changed


@parallel_kernel
def _assign_groups(X, sample_weight, centers_t, center_sq_norms, labels, group_partials, group_changed):
    """``_assign_rows`` over every group of rows, the groups in parallel."""
    n_samples = n_rows(X)
    n_groups = group_changed.shape[0]
    for task in prange(n_groups):
        g = np.int64(task)
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        group_changed[g] = _assign_rows(
            X, sample_weight, centers_t, center_sq_norms, labels, g_start, g_stop, group_partials[g]
        )


@kernel
def assign_labels(X, sample_weight, centers, center_sq_norms, labels, group_partials, group_changed):
    """Nearest-centre labels of every CSR row, in place; returns how many changed.

    As ``lloyd.assign_labels``: the labels alone (``sample_weight`` of shape
    (0,), ``group_partials`` of shape (n_groups, 0, 0)) or with each group's
    centre-sum corrections, one compiled kernel for both.

    X : tuple (data, indices, starts, stops, n_features) IN, CSR rows
    center_sq_norms : (n_clusters,) IN, in X's dtype
    """
    _assign_groups(
        X,
        sample_weight,
        transposed(centers, center_sq_norms.dtype),
        center_sq_norms,
        labels,
        group_partials,
        group_changed,
    )
    n_changed = 0
    for g in range(group_changed.shape[0]):
        n_changed += group_changed[g]
    return n_changed


@kernel
def row_sq_distance(X, r, center, center_sq_norm):
    """Squared distance from CSR row ``r`` to a dense centre, in float64.

    ``||c||^2`` plus, over the row's stored values, ``(x - c)^2 - c^2``;
    clipped at zero.
    """
    data, indices, starts, stops, _ = X
    s = np.float64(center_sq_norm)
    for p in range(starts[r], stops[r]):
        c = np.float64(center[indices[p]])
        diff = np.float64(data[p]) - c
        s += diff * diff - c * c
    return max(s, 0.0)


@kernel
def label_distances(X, centers, labels, out):
    """Squared distance of every CSR row to the centre of its label (float64 OUT)."""
    norms = float64_sq_norms(centers)
    for i in range(n_rows(X)):
        j = labels[i]
        out[i] = row_sq_distance(X, i, centers[j], norms[j])


@kernel
def inertia(X, sample_weight, centers, labels, group_partials):
    """Weighted sum of squared distances of CSR rows to their centres.

    As ``lloyd.inertia``: float64 per group, groups reduced in order.
    """
    n_groups = group_partials.shape[0]
    distances = np.empty(n_rows(X))
    label_distances(X, centers, labels, distances)
    for g in range(n_groups):
        g_start, g_stop = group_bounds(g, n_groups, n_rows(X))
        acc = 0.0
        for i in range(g_start, g_stop):
            acc += distances[i] * sample_weight[i]
        group_partials[g] = acc
    total = 0.0
    for g in range(n_groups):
        total += group_partials[g]
    return total


@parallel_kernel
def euclidean_distances(X, x_sq_norms, centers, n_groups, out):
    """Euclidean distance from every CSR row to every centre.

    ``sqrt(max(||x||^2 - 2 x.c + ||c||^2, 0))`` in float64, stored in
    ``out``'s dtype.

    x_sq_norms : (n_samples,) float64 IN
    out : (n_samples, n_clusters) OUT
    """
    n_clusters = centers.shape[0]
    centers_t = transposed(centers, np.float64)
    norms = float64_sq_norms(centers)
    for task in prange(n_groups):
        g_start, g_stop = group_bounds(np.int64(task), n_groups, n_rows(X))
        dots = np.empty(n_clusters)
        for i in range(g_start, g_stop):
            row_dots(X, i, centers_t, dots)
            for j in range(n_clusters):
                out[i, j] = np.sqrt(max(x_sq_norms[i] - 2.0 * dots[j] + norms[j], 0.0))


@kernel
def row_sq_norms(X, out):
    """Squared norm of every CSR row, summed in float64 (OUT)."""
    data, _, starts, stops, _ = X
    for i in range(n_rows(X)):
        s = 0.0
        for p in range(starts[i], stops[i]):
            s += np.float64(data[p]) * np.float64(data[p])
        out[i] = s
