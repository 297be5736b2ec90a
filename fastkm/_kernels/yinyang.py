"""Yinyang k-means (Ding et al., 2015): Hamerly's bounds, one lower bound per group.

The centres are split into groups (by the solver, once per run). Every row keeps
Hamerly's key (``bounds``) and, per group ``g``, a lower bound on its distance to
every centre of ``g`` other than its own, stored as ``l_g + G_g``: ``G_g`` is
the running sum of the group's largest shift, so the bound now is at least the
stored value less ``G_g`` now, and stored bounds are never rewritten when the
centres move. A group bound decays by its own group's shifts only, where
Hamerly's single bound decays by the largest shift of all.

A row whose key falls behind gets its exact distance ``u`` to its own centre;
its lower bound is the smallest group bound (or the half separation), and the
row is decided if that bound beats ``u`` by the rounding margin, as in
Hamerly's second test. Otherwise each group is tested on its own: a group whose
bound beats ``u`` by the margin cannot hold the nearest centre. The row's own
group and the groups that fail are scored with ``tiles.tile_top2``, one group
at a time, over the chunk's rows that need that group, gathered into one tile:
the scores have Lloyd's bits. The best of them, taken in centre index order
with ties to the lower index, is Lloyd's label; the centres left out are
farther than the own centre by more than rounding can undo. The rescored
groups get fresh bounds from their best or second-best score, widened by the
margin ``E`` (see ``bounds``). Memory is O(n * groups) float64.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, kernel, parallel_kernel
from .bounds import (
    CENTER_DRIFT,
    FIRST,
    HALF_SEP,
    MARGIN,
    ROUND_UP,
    SCALARS,
    half_separations,
    record_drift,
    row_key,
    rows_to_test,
)
from .lloyd import accumulate_changes, group_bounds, store_partials, tiles_per_group
from .tiles import chunk_tile, gather_tile, new_scores, new_tile, padded_centers, tile_top2

_EPS = float(np.finfo(np.float64).eps)

# Columns of the per-chunk (group, row) tables: CHUNK and a few more, so that
# their rows do not lie a power of two apart (L1 set conflicts).
_WORK_WIDTH = CHUNK + 8


@kernel
def _group_lower(stored, group_drift):
    """A group bound now, from its stored value: rounded down a few ulps."""
    if stored == np.inf:
        return np.inf  # a group with no centre but the row's own
    return stored - group_drift - 4.0 * _EPS * (abs(stored) + group_drift)


@kernel
def _tighten(X, start, rows, n_behind, centers, labels, key, group_lower, group_drift, state, scratch):
    """Second test of the rows behind: exact distance to the own centre.

    As ``bounds.tighten_rows``, with the smallest group bound as the lower
    bound (each decayed by its own group's drift). Rows it decides get fresh
    keys; the others stay in ``rows`` (in order) with ``u^2`` in
    ``scratch[1]``; their count is returned.
    """
    n_features = X.shape[1]
    n_center_groups = group_drift.shape[0]
    half_sep, center_drift = state[HALF_SEP], state[CENTER_DRIFT]
    margin = state[SCALARS, MARGIN]
    b, u_sq, new_key, decided, t = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
    for q in range(n_behind):
        b[q] = np.inf
    # Groups outer, rows inner: each group's bounds are a row of group_lower.
    for g in range(n_center_groups):
        drift = group_drift[g]
        for q in range(n_behind):
            b[q] = min(b[q], _group_lower(group_lower[g, start + rows[q]], drift))
    for q in range(n_behind):
        r = start + rows[q]
        label = labels[r]
        b[q] = max(b[q], half_sep[label])
        t[q] = center_drift[label]
        s = 0.0
        for f in range(n_features):
            diff = np.float64(X[r, f]) - np.float64(centers[label, f])
            s += diff * diff
        u_sq[q] = s
    for q in range(n_behind):
        bq = b[q]
        ok = bq > 0.0 and bq * bq - u_sq[q] > margin
        decided[q] = 1.0 if ok else 0.0
        new_key[q] = row_key(np.sqrt(u_sq[q]), bq, t[q], margin)
    n_left = 0
    for q in range(n_behind):
        i = rows[q]
        key[start + i] = new_key[q]
        rows[n_left] = i
        u_sq[n_left] = u_sq[q]
        n_left += decided[q] == 0.0
    return n_left


@kernel
def _groups_to_score(
    start, rows, n_left, first_pass, labels, center_group, group_lower, group_drift, margin, u_sq, need
):
    """``need[g, q]``: whether undecided row ``q`` must be scored against group ``g``.

    Always its own group (so the own centre's score has Lloyd's bits too), and
    every group whose bound does not beat ``u`` by the margin.
    """
    n_center_groups = group_drift.shape[0]
    own = np.empty(n_left, dtype=np.int64)
    for q in range(n_left):
        own[q] = center_group[labels[start + rows[q]]] if not first_pass else -1
    for g in range(n_center_groups):
        drift = group_drift[g]
        for q in range(n_left):
            lower = _group_lower(group_lower[g, start + rows[q]], drift)
            beaten = lower > 0.0 and lower * lower - u_sq[q] > margin
            need[g, q] = first_pass or g == own[q] or not beaten


@kernel
def _score_groups(
    tile, cols, n_left, every_row, n_features, grouped, grouped_norms, order, offsets, need, work
):
    """Score each undecided row against the groups it needs, one group at a time.

    The ``q``-th undecided row is column ``cols[q]`` of ``tile``.

    Per group, the rows that need it are gathered into one tile and scored by
    ``tile_top2`` against the group's centres (in increasing index order within
    the group); with ``every_row`` (the first pass) the chunk's tile is scored
    as it is. Results go to ``group_best``, ``group_second`` and
    ``group_label`` (original centre indices), rows ``g``, columns ``q``.
    """
    gathered, positions, scores, best, second, labels, group_best, group_second, group_label = work
    width = gathered.shape[0]
    for g in range(offsets.shape[0] - 1):
        m = 0
        for q in range(n_left):
            positions[m] = q
            m += need[g, q]
        if m == 0:
            continue
        scored = tile
        if not every_row:
            scored = gathered
            for f in range(width):
                for p in range(m):
                    gathered[f, p] = tile[f, cols[positions[p]]]
        lo, hi = offsets[g], offsets[g + 1]
        group = grouped[lo:hi], grouped_norms[lo:hi]
        tile_top2(scored, m, n_features, *group, scores, best, second, labels, 0)
        for p in range(m):
            q = positions[p]
            group_best[g, q] = best[p]
            group_second[g, q] = second[p]
            group_label[g, q] = order[lo + labels[p]]


@kernel
def _new_bounds(
    tile, cols, start, rows, n_left, need, group_drift, state, group_lower, key, new_labels, work, xx, norms
):
    """Labels and bounds of the rescored rows, from the groups' scores.

    Row ``start + rows[q]`` is column ``cols[q]`` of ``tile``.

    The label is the best score over the groups scored, ties to the lower
    centre index: Lloyd's. Each scored group's bound is its best score, or its
    second best when it holds the label, widened by the margin.
    """
    group_best, group_second, group_label = work[6], work[7], work[8]
    n_center_groups = group_drift.shape[0]
    width = tile.shape[0]
    half_sep, center_drift = state[HALF_SEP], state[CENTER_DRIFT]
    margin = state[SCALARS, MARGIN]
    for q in range(n_left):
        norms[q] = 0.0
    for f in range(width):
        for q in range(n_left):
            x = np.float64(tile[f, cols[q]])
            norms[q] += x * x
    best, lower = work[3], xx  # best scores (X's dtype) and lower bounds, per row
    for q in range(n_left):
        best[q] = np.inf
        new_labels[q] = -1
    # Groups outer, rows inner: the (group, row) tables are read along their rows.
    for g in range(n_center_groups):
        for q in range(n_left):
            s = group_best[g, q]
            j = group_label[g, q]
            take = need[g, q] and (s < best[q] or (s == best[q] and j < new_labels[q]) or new_labels[q] < 0)
            best[q] = s if take else best[q]
            new_labels[q] = j if take else new_labels[q]
    for q in range(n_left):
        lower[q] = np.inf
    for g in range(n_center_groups):
        g_drift = group_drift[g]
        for q in range(n_left):
            r = start + rows[q]
            if need[g, q]:
                s = group_second[g, q] if group_label[g, q] == new_labels[q] else group_best[g, q]
                bound = np.sqrt(max(np.float64(s) + norms[q] - margin, 0.0))
                group_lower[g, r] = bound + g_drift
            else:
                bound = _group_lower(group_lower[g, r], g_drift)
            lower[q] = min(lower[q], bound)
    for q in range(n_left):
        r = start + rows[q]
        label = new_labels[q]
        u = np.sqrt(max(np.float64(best[q]) + norms[q] + margin, 0.0))
        key[r] = row_key(u, max(lower[q], half_sep[label]), center_drift[label], margin)


@kernel
def _yinyang_rows(
    X,
    tiles,
    fill_tiles,
    first_tile,
    sample_weight,
    centers,
    grouped,
    grouped_norms,
    state,
    center_group,
    order,
    offsets,
    group_drift,
    labels,
    key,
    group_lower,
    row_start,
    row_stop,
    out,
):
    """One Yinyang step for rows ``row_start:row_stop``: bounds, labels, sums.

    centers : (n_clusters, width) IN, zero-padded, index order (exact distances)
    grouped, grouped_norms : the centres and their squared norms in group
        order, ``order[p]`` being the index of the ``p``-th; group ``g`` is
        ``offsets[g]:offsets[g + 1]``
    group_drift : (n_center_groups,) IN, ``G_g``
    key : (n_samples,) float64 INOUT, Hamerly's key (``bounds``)
    group_lower : (n_center_groups, n_samples) float64 INOUT
    out : (n_clusters, n_features + 2) float64 OUT, as ``lloyd._assign_rows``
    Returns the number of labels that changed.
    """
    n_features = X.shape[1]
    n_center_groups = group_drift.shape[0]
    center_drift = state[CENTER_DRIFT]
    first_pass = state[SCALARS, FIRST] > 0.0
    margin = state[SCALARS, MARGIN]
    # Without kept tiles, the first pass loads each chunk of X into ``scratch``
    # and the later ones gather the undecided rows from X into ``packed``.
    kept = tiles.shape[0] > 0
    scratch = new_tile(0 if kept else n_features, X.dtype)
    packed = new_tile(0 if kept else n_features, X.dtype)
    in_order = np.arange(CHUNK)
    work = (
        new_tile(n_features, X.dtype),
        np.empty(CHUNK, dtype=np.int64),
        new_scores(X.dtype),
        np.empty(CHUNK, dtype=X.dtype),
        np.empty(CHUNK, dtype=X.dtype),
        np.empty(CHUNK, dtype=np.int32),
        np.empty((n_center_groups, _WORK_WIDTH), dtype=X.dtype),
        np.empty((n_center_groups, _WORK_WIDTH), dtype=X.dtype),
        np.empty((n_center_groups, _WORK_WIDTH), dtype=np.int64),
    )
    need = np.empty((n_center_groups, _WORK_WIDTH), dtype=np.bool_)
    old_labels = np.empty(CHUNK, dtype=np.int32)
    new_labels = np.empty(CHUNK, dtype=np.int32)
    rows = np.empty(CHUNK, dtype=np.int64)
    tight = np.empty((5, CHUNK))
    acc = np.zeros(out.shape, dtype=np.float64)
    changed = 0
    for m, start in enumerate(range(row_start, row_stop, CHUNK)):
        stop = min(start + CHUNK, row_stop)
        n_rows = stop - start
        n_left = rows_to_test(first_pass, key, labels, start, n_rows, center_drift, rows)
        if n_left == 0 and not fill_tiles:
            continue
        tile, cols = scratch, rows
        if kept or first_pass:
            tile = chunk_tile(X, tiles, fill_tiles, first_tile + m, start, stop, scratch)[0]
        if not first_pass:
            n_left = _tighten(
                X, start, rows, n_left, centers, labels, key, group_lower, group_drift, state, tight
            )
        if n_left == 0:
            continue
        if not (kept or first_pass):
            gather_tile(X, start, rows, n_left, packed)
            tile, cols = packed, in_order
        _groups_to_score(
            start,
            rows,
            n_left,
            first_pass,
            labels,
            center_group,
            group_lower,
            group_drift,
            margin,
            tight[1],
            need,
        )
        _score_groups(
            tile, cols, n_left, first_pass, n_features, grouped, grouped_norms, order, offsets, need, work
        )
        _new_bounds(
            tile,
            cols,
            start,
            rows,
            n_left,
            need,
            group_drift,
            state,
            group_lower,
            key,
            new_labels,
            work,
            tight[0],
            tight[2],
        )
        for q in range(n_left):
            r = start + rows[q]
            old_labels[q] = labels[r]
            changed += old_labels[q] != new_labels[q]
            labels[r] = new_labels[q]
        accumulate_changes(X, start, rows, n_left, old_labels, new_labels, sample_weight, acc)
    store_partials(acc, out)
    return changed


@parallel_kernel
def _yinyang_groups(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers,
    grouped,
    grouped_norms,
    state,
    center_group,
    order,
    offsets,
    group_drift,
    labels,
    key,
    group_lower,
    group_partials,
    group_changed,
):
    """``_yinyang_rows`` over every group of rows, the groups in parallel."""
    n_samples = X.shape[0]
    n_groups = group_changed.shape[0]
    per_group = tiles_per_group(n_groups, n_samples)
    for task in prange(n_groups):
        g = np.int64(task)
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        group_changed[g] = _yinyang_rows(
            X,
            tiles,
            fill_tiles,
            g * per_group,
            sample_weight,
            centers,
            grouped,
            grouped_norms,
            state,
            center_group,
            order,
            offsets,
            group_drift,
            labels,
            key,
            group_lower,
            g_start,
            g_stop,
            group_partials[g],
        )


@kernel
def yinyang_block(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers,
    center_sq_norms,
    state,
    center_group,
    order,
    offsets,
    group_drift,
    labels,
    key,
    group_lower,
    group_partials,
    group_changed,
):
    """Yinyang's labels and partials for a block of rows: Lloyd's, skipping what the group bounds decide.

    Arguments as ``bounds.hamerly_block`` (returns nothing), plus:

    center_group : (n_clusters,) int64 IN, each centre's group
    order : (n_clusters,) int64 IN, the centres grouped: by group, then index
    offsets : (n_center_groups + 1,) int64 IN, group ``g`` is ``order[offsets[g]:offsets[g + 1]]``
    group_drift : (n_center_groups,) float64 INOUT, the groups' drifts ``G_g``
    group_lower : (n_center_groups, n_samples) float64 INOUT, the stored group bounds

    The caller records the centre shifts (``record_drifts``) once it has the
    new centres.
    """
    half_separations(centers, state[HALF_SEP])
    padded = padded_centers(centers, X.dtype)
    grouped = np.empty_like(padded)
    grouped_norms = np.empty_like(center_sq_norms)
    for p in range(order.shape[0]):
        for f in range(padded.shape[1]):
            grouped[p, f] = padded[order[p], f]
        grouped_norms[p] = center_sq_norms[order[p]]
    _yinyang_groups(
        X,
        tiles,
        fill_tiles,
        sample_weight,
        padded,
        grouped,
        grouped_norms,
        state,
        center_group,
        order,
        offsets,
        group_drift,
        labels,
        key,
        group_lower,
        group_partials,
        group_changed,
    )
    state[SCALARS, FIRST] = 0.0


@kernel
def record_drifts(old_centers, new_centers, state, center_group, group_drift):
    """``bounds.record_drift``, plus each group's drift: its largest shift, summed rounding up."""
    shifts = record_drift(old_centers, new_centers, state)
    largest = np.zeros(group_drift.shape[0])
    for j in range(shifts.shape[0]):
        largest[center_group[j]] = max(largest[center_group[j]], shifts[j])
    for g in range(group_drift.shape[0]):
        group_drift[g] = (group_drift[g] + largest[g]) * ROUND_UP
