"""Lloyd iteration kernels: assignment, partial sums, inertia, centre update.

Rows are split into *groups* of consecutive rows (``n_groups`` is fixed by the
caller from the data shape only), and each group is processed in chunks of up
to ``CHUNK`` rows. Each group owns
one slot of every partial-result buffer, and groups are reduced in index order,
so every result is bit-for-bit the same whatever the number of threads.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, kernel, parallel_kernel
from .row_major import argmin_rows_of, centers_for_rows
from .rows import add_row
from .tiles import (
    chunk_tile,
    finite_probe,
    new_scores,
    new_tile,
    padded_centers,
    prefetch_offset,
    tile_argmin,
)

# Groups are cut at multiples of this many rows, so that vector loops start aligned.
_ROW_ALIGN = 16


@kernel
def _rows_per_group(n_groups, n_samples):
    # The largest group's rows.
    units = -(-n_samples // _ROW_ALIGN)
    return -(-units // n_groups) * _ROW_ALIGN


@kernel
def group_bounds(g, n_groups, n_samples):
    """First and one-past-last row of group ``g``.

    Groups are contiguous runs of rows whose sizes differ by at most
    ``_ROW_ALIGN``: the threads get even shares even when the data holds
    only a few chunks (digits: 8 groups of 224 or 240 rows, where cutting
    every group at 240 rows left 117 to the last, and one thread 15% more).
    """
    units = -(-n_samples // _ROW_ALIGN)
    start = min(_ROW_ALIGN * ((g * units) // n_groups), n_samples)
    stop = min(_ROW_ALIGN * (((g + 1) * units) // n_groups), n_samples)
    return start, stop


@kernel
def tiles_per_group(n_groups, n_samples):
    """Number of ``CHUNK``-row tiles each group is cut into."""
    return -(-_rows_per_group(n_groups, n_samples) // CHUNK)


def n_tiles(n_groups, n_samples):
    """Number of tiles that hold X for this grouping (see ``_assign_rows``)."""
    # ``tiles_per_group``'s count, in Python: no kernel to load for a call from
    # Python (tests/test_kernels.py keeps the two in step).
    return n_groups * -(-_rows_per_group.__wrapped__(n_groups, n_samples) // CHUNK)


@kernel
def _assign_rows(
    X,
    tiles,
    fill_tiles,
    first_tile,
    sample_weight,
    centers,
    center_sq_norms,
    centers_t,
    norms_t,
    labels,
    row_start,
    row_stop,
    out,
):
    """Label rows ``row_start:row_stop``; correct the centre sums for those relabelled.

    tiles : (n_tiles, padded_width, >= CHUNK) INOUT, a copy of X kept in tiles
        across calls, group ``g``'s ``m``-th chunk of rows in tile
        ``g * tiles_per_group + m`` (the rows' first at ``first_tile``); or
        zero tiles to read X directly
    fill_tiles : bool, copy X into ``tiles`` (first call) rather than read them
    centers : (n_clusters, padded_width) IN, zero-padded to the tile width
    centers_t, norms_t : ``row_major.centers_for_rows``: if not empty, X's
        rows are scored as they lie against these, no tile filled
    labels : (n_samples,) int32 INOUT, previous labels in, new labels out
    out : (n_clusters, n_features + 2) float64 OUT, the corrections to the
        centre sums (see ``accumulate_changes``); shape (0, 0) for labels only
    Returns the number of labels that changed, and (reading X directly) 0 if
    the rows are all finite or NaN if not; see ``load_tile``.
    """
    n_features = X.shape[1]
    update_centers = out.shape[0] > 0
    by_rows = centers_t.shape[0] > 0
    # Only used when no tiles are kept (then X is loaded into it chunk by chunk).
    scratch = new_tile(n_features if tiles.shape[0] == 0 and not by_rows else 0, X.dtype)
    scores = new_scores(X.dtype)
    best = np.empty(CHUNK, dtype=X.dtype)
    old_labels = np.empty(CHUNK, dtype=np.int32)
    chunk_labels = np.empty(CHUNK, dtype=np.int32)
    every_row = np.arange(CHUNK)
    # Task-private corrections, copied out at the end.
    acc = np.zeros(out.shape, dtype=np.float64)
    changed = 0
    probe = X.dtype.type(0.0)
    for m, start in enumerate(range(row_start, row_stop, CHUNK)):
        stop = min(start + CHUNK, row_stop)
        n_rows = stop - start
        if by_rows:
            argmin_rows_of(X, start, n_rows, centers_t, norms_t, best, chunk_labels)
            # A row holding a NaN or an infinity scores no finite best (nor
            # does a finite row whose dot products overflow): only such rows
            # are probed, for load_tile's exact answer.
            for i in range(n_rows):
                if not np.isfinite(best[i]):
                    probe += finite_probe(X, start + i, start + i + 1, X.dtype.type(0.0))
        else:
            tile, chunk_probe = chunk_tile(X, tiles, fill_tiles, first_tile + m, start, stop, scratch)
            probe += chunk_probe
            ahead = prefetch_offset(tiles, centers.shape[0], fill_tiles, stop < row_stop)
            tile_argmin(tile, n_rows, n_features, centers, center_sq_norms, scores, best, chunk_labels, ahead)
        row_labels = labels[start:stop]  # indexed from 0: the loop vectorises
        for i in range(n_rows):
            old_labels[i] = row_labels[i]
            changed += old_labels[i] != chunk_labels[i]
            row_labels[i] = chunk_labels[i]
        if update_centers:
            accumulate_changes(X, start, every_row, n_rows, old_labels, chunk_labels, sample_weight, acc)
    store_partials(acc, out)
    return changed, probe


@kernel
def store_partials(acc, out):
    """Copy a task's private centre-sum corrections into its slot ``out`` (same shape).

    A loop, not ``out[:, :] = acc``: numba's slice assignment checks the
    shapes and formats the error, which compiles its string library.
    """
    for j in range(acc.shape[0]):
        for f in range(acc.shape[1]):
            out[j, f] = acc[j, f]


@kernel
def accumulate_changes(X, start, rows, n_rows, old_labels, new_labels, sample_weight, acc):
    """Move the chunk's relabelled rows between their clusters' sums.

    Centre sums are kept across iterations and only corrected for the rows
    whose label changed: a row leaves ``old`` (unless it had no label, -1)
    and joins ``new``. Rows are taken in order, so the corrections depend on
    the sequence of labels alone, whichever kernel chose them: algorithms
    that go through the same labels get the same centres, bit for bit. The
    sums carry the rounding of every correction since the first iteration;
    scikit-learn recomputes its sums every iteration, so the two agree to
    rounding, not bit for bit.

    X : (n_samples, n_features) IN, dense or CSR (see ``rows.add_row``)
    rows : (CHUNK,) int64 IN, the rows taken, ``start + rows[q]``, in increasing order
    old_labels, new_labels : (CHUNK,) int32 IN, row ``q``'s label before and after
    acc : (n_clusters, n_features + 2) float64 INOUT, per cluster the weighted
        sum of rows, the weight, and the number of rows of non-zero weight
    """
    n_features = acc.shape[1] - 2
    for i in range(n_rows):
        old = old_labels[i]
        new = new_labels[i]
        if old == new:
            continue
        r = start + rows[i]
        w = np.float64(sample_weight[r])
        weighted = 1.0 if w != 0 else 0.0
        if old >= 0:
            add_row(X, r, -w, acc[old])
            acc[old, n_features] -= w
            acc[old, n_features + 1] -= weighted
        add_row(X, r, w, acc[new])
        acc[new, n_features] += w
        acc[new, n_features + 1] += weighted


@parallel_kernel
def _assign_groups(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers,
    center_sq_norms,
    centers_t,
    norms_t,
    labels,
    group_partials,
    group_changed,
    group_probe,
):
    """``_assign_rows`` over every group of rows, the groups in parallel.

    The parallel kernels stay this small on purpose: numba's parallel compiler
    passes take time in proportion to the code they see.
    """
    n_samples = X.shape[0]
    n_groups = group_changed.shape[0]
    per_group = tiles_per_group(n_groups, n_samples)
    for task in prange(n_groups):
        g = np.int64(task)  # one index type, one compilation of each helper
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        group_changed[g], group_probe[g] = _assign_rows(
            X,
            tiles,
            fill_tiles,
            g * per_group,
            sample_weight,
            centers,
            center_sq_norms,
            centers_t,
            norms_t,
            labels,
            g_start,
            g_stop,
            group_partials[g],
        )


@kernel
def assign_labels(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers,
    center_sq_norms,
    labels,
    group_partials,
    group_changed,
):
    """Nearest-centre labels of every row, in place (first centre on ties).

    Labelling alone (``predict``) and Lloyd's per-block entry (the labels and
    each group's centre-sum corrections, which ``finish_iteration`` reduces;
    see ``_solvers.steps``) are this one kernel, compiled once.

    X : (n_samples, n_features) IN, C-contiguous
    tiles : X kept in tiles (see ``_assign_rows``), or shape (0, 0, 0) to read X
    fill_tiles : bool, fill ``tiles`` from X (first use) rather than read them
    sample_weight : (n_samples,) IN, or shape (0,) for the labels alone
    centers : (n_clusters, n_features) IN
    center_sq_norms : (n_clusters,) IN
    labels : (n_samples,) int32 INOUT, previous labels in (-1: none yet)
    group_partials : (n_groups, n_clusters, n_features + 2) float64 OUT, each
        group's corrections (see ``accumulate_changes``); shape
        (n_groups, 0, 0) for the labels alone
    group_changed : (n_groups,) int64 OUT, labels that differ from the input

    Returns
    -------
    n_changed : int, labels that differ from the input
    finite : bool, False if X was read (not from filled tiles) and holds a
        NaN or infinity
    """
    n_groups = group_changed.shape[0]
    group_probe = np.empty(n_groups, dtype=X.dtype)
    centers_t, norms_t = centers_for_rows(X, tiles, centers, center_sq_norms)
    _assign_groups(
        X,
        tiles,
        fill_tiles,
        sample_weight,
        padded_centers(centers, X.dtype),
        center_sq_norms,
        centers_t,
        norms_t,
        labels,
        group_partials,
        group_changed,
        group_probe,
    )
    probe = X.dtype.type(0.0)
    n_changed = 0
    for g in range(n_groups):
        probe += group_probe[g]
        n_changed += group_changed[g]
    return n_changed, probe == 0


@kernel
def finish_iteration(group_partials, group_changed, sums, centers, new_centers, weights):
    """The end of an iteration: add the groups' corrections to the sums in group order; the new centres.

    Shared by every exact algorithm, after its per-block kernel (``assign_labels``,
    ``bounds.hamerly_block``, ...): the same labels give the same bits. The
    groups are added in index order, never in the order threads finish, so
    the result does not depend on the number of threads; blocks of rows
    reduce the same way, their groups stacked in block order. A cluster left
    with no row of non-zero weight gets sums of exactly zero, whatever
    rounding the corrections left behind.

    group_partials : (n_groups, n_clusters, n_features + 2) float64 IN, each
        group's corrections (see ``accumulate_changes``)
    group_changed : (n_groups,) int64 IN, labels each group changed
    sums : (n_clusters, n_features + 2) float64 INOUT, the centre sums of the
        previous labels (zeros before the first iteration), of the new labels
        on return
    centers : (n_clusters, n_features) IN, the iteration's centres
    new_centers : (n_clusters, n_features) OUT, means (sums if any cluster is empty)
    weights : (n_clusters,) OUT, total weight per cluster

    Returns
    -------
    n_changed : int, labels that changed
    n_empty : int, clusters with zero weight; then ``new_centers`` holds the
        weighted sums, for the caller to relocate and average (``average_centers``)
    center_shift : float, total squared centre shift (0 when ``n_empty``)
    """
    n_groups, n_clusters, width = group_partials.shape
    n_features = width - 2
    for g in range(n_groups):
        for j in range(n_clusters):
            for f in range(width):
                sums[j, f] += group_partials[g, j, f]
    for j in range(n_clusters):
        if sums[j, n_features + 1] < 0.5:
            for f in range(width):
                sums[j, f] = 0.0
        for f in range(n_features):
            new_centers[j, f] = sums[j, f]
        weights[j] = sums[j, n_features]
    n_changed, n_empty = changed_and_empty(group_changed, weights)
    center_shift = 0.0
    if n_empty == 0:
        average_centers(new_centers, weights)
        center_shift = center_shift_total(centers, new_centers)
    return n_changed, n_empty, center_shift


@kernel
def changed_and_empty(group_changed, weights):
    """The labels the row groups changed, and the clusters left with no weight."""
    n_changed = 0
    for g in range(group_changed.shape[0]):
        n_changed += group_changed[g]
    n_empty = 0
    for j in range(weights.shape[0]):
        n_empty += weights[j] == 0
    return n_changed, n_empty


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


@kernel
def rows_inertia(X, sample_weight, centers, labels, start, stop):
    """Weighted sum of squared distances of rows ``start:stop`` to their centres, in float64.

    Exact differences, added row by row: one group's part of ``inertia``.
    """
    n_features = X.shape[1]
    acc = 0.0
    for i in range(start, stop):
        label = labels[i]
        s = 0.0
        for f in range(n_features):
            diff = np.float64(X[i, f]) - np.float64(centers[label, f])
            s += diff * diff
        acc += s * sample_weight[i]
    return acc


@parallel_kernel
def inertia(X, sample_weight, centers, labels, group_partials):
    """Weighted sum of squared distances of rows to their assigned centre.

    Computed from exact differences (not the norm expansion), accumulated in
    float64 per group and reduced in group order: the groups run in
    parallel, and the total does not depend on the thread count (a fit of
    1,000,000 x 16 read its rows once more for it, 17 ms on one thread).

    X : (n_samples, n_features) IN
    sample_weight : (n_samples,) IN
    centers : (n_clusters, n_features) IN
    labels : (n_samples,) int32 IN
    group_partials : (n_groups,) float64 scratch
    """
    n_samples = X.shape[0]
    n_groups = group_partials.shape[0]
    for task in prange(n_groups):
        g = np.int64(task)
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        group_partials[g] = rows_inertia(X, sample_weight, centers, labels, g_start, g_stop)
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
    for task in prange(n_groups):
        g_start, g_stop = group_bounds(np.int64(task), n_groups, n_samples)
        for i in range(g_start, g_stop):
            for j in range(n_clusters):
                s = 0.0
                for f in range(n_features):
                    diff = np.float64(X[i, f]) - np.float64(centers[j, f])
                    s += diff * diff
                out[i, j] = np.sqrt(s)
