"""Elkan's algorithm (2003): a lower bound per row and centre, with drift keys.

On top of Hamerly's per-row key (``bounds``), Elkan keeps for every row a lower
bound on its distance to each centre, stored as ``l + D_j`` (the bound plus
centre ``j``'s own drift when it was set): the bound now is at least the stored
value less ``D_j`` now, so the bounds are never rewritten when centres move.

A row whose key falls behind gets its exact distance ``u`` to its own centre
``a``. A centre ``j`` stays out of the running when its lower bound, or
``||c_a - c_j|| - u``, exceeds ``sqrt(u^2 + 2 E)``: its score is then certainly
above the own centre's, rounding included (``E`` as in ``bounds``). The rest
are scored one by one with Lloyd's FMA chain (``tiles.tile_center_scores``'s
bits), in index order with a strict ``<``, so the label is Lloyd's. Memory is
O(n k): the bounds are ``(n_samples, n_clusters)`` float64.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, fma, kernel, parallel_kernel
from .bounds import (
    CENTER_DRIFT,
    DRIFT,
    FIRST,
    HALF_SEP,
    MARGIN,
    OWN_DRIFT,
    SCALARS,
    row_key,
    rows_behind,
    tighten_rows,
)
from .lloyd import accumulate_changes, group_bounds, store_partials, tiles_per_group
from .tiles import chunk_tile, new_tile, padded_centers, tile_center_scores

_EPS = float(np.finfo(np.float64).eps)


@kernel
def center_distances(centers, out, half_sep):
    """``out[j, m]`` = distance between centres ``j`` and ``m`` (exact differences).

    ``half_sep[j]`` = half the distance to the nearest other centre (inf alone).
    """
    n_clusters, n_features = centers.shape
    for j in range(n_clusters):
        out[j, j] = 0.0
        for m in range(j + 1, n_clusters):
            s = 0.0
            for f in range(n_features):
                diff = np.float64(centers[j, f]) - np.float64(centers[m, f])
                s += diff * diff
            out[j, m] = np.sqrt(s)
            out[m, j] = out[j, m]
    for j in range(n_clusters):
        nearest = np.inf
        for m in range(n_clusters):
            if m != j:
                nearest = min(nearest, out[j, m])
        half_sep[j] = 0.5 * nearest


@kernel
def row_score(X, r, centers, center_sq_norms, j):
    """Row ``r``'s score against centre ``j``: the bits of ``tiles.tile_center_scores``.

    The same sequential FMA chain over features; the tile's zero padding adds
    nothing to it.
    """
    dot = centers[j, 0] * X[r, 0]
    for f in range(1, X.shape[1]):
        dot = fma(centers[j, f], X[r, f], dot)
    return fma(X.dtype.type(-2.0), dot, center_sq_norms[j])


@kernel
def _first_scores(tile, n_rows, start, centers, center_sq_norms, state, row_bounds, new_labels, scores, xx):
    """First pass: score the chunk's rows against every centre; set every bound and key.

    row_bounds : ``(key, lower_key, lower)``, the rows' bounds (``_elkan_rows``)
    """
    key, lower_key, lower = row_bounds
    n_clusters = centers.shape[0]
    width = tile.shape[0]
    margin = state[SCALARS, MARGIN]
    own_drift, center_drift = state[OWN_DRIFT], state[CENTER_DRIFT]
    best, second = scores[1], scores[2]
    for i in range(n_rows):
        xx[i] = 0.0
        best[i] = np.inf
        second[i] = np.inf
        new_labels[i] = 0
    for f in range(width):
        for i in range(n_rows):
            xx[i] += np.float64(tile[f, i]) * np.float64(tile[f, i])
    for j in range(n_clusters):
        tile_center_scores(tile, n_rows, centers, center_sq_norms, j, scores[0])
        for i in range(n_rows):
            s = scores[0, i]
            lower[start + i, j] = np.sqrt(max(np.float64(s) + xx[i] - margin, 0.0)) + own_drift[j]
            better = s < best[i]
            second[i] = best[i] if better else min(second[i], s)
            best[i] = s if better else best[i]
            new_labels[i] = np.int32(j) if better else new_labels[i]
    for i in range(n_rows):
        u = np.sqrt(max(np.float64(best[i]) + xx[i] + margin, 0.0))
        b = np.sqrt(max(np.float64(second[i]) + xx[i] - margin, 0.0))
        key[start + i] = row_key(u, b, center_drift[new_labels[i]], margin)
        lower_key[start + i] = b + state[SCALARS, DRIFT]


@kernel
def _revisit(X, r, centers, center_sq_norms, center_dist, state, labels, row_bounds, candidates, bound):
    """A row Hamerly's tests left undecided: prune by the per-centre bounds, score the rest.

    Returns the row's label.

    row_bounds : ``(key, lower_key, lower)``, the rows' bounds (``_elkan_rows``)
    """
    key, lower_key, lower = row_bounds
    n_clusters, n_features = centers.shape[0], X.shape[1]
    margin, drift = state[SCALARS, MARGIN], state[SCALARS, DRIFT]
    own_drift, center_drift = state[OWN_DRIFT], state[CENTER_DRIFT]
    a = labels[r]
    uu = 0.0
    xx = 0.0
    for f in range(n_features):
        x = np.float64(X[r, f])
        diff = x - np.float64(centers[a, f])
        uu += diff * diff
        xx += x * x
    # Allowances for the rounding of sums of n_features squares.
    ulps = (4.0 + n_features) * _EPS
    u = np.sqrt(uu) * (1.0 + ulps)
    threshold = np.sqrt(uu + 2.0 * margin)
    # Every centre's lower bound now (one vectorised loop), then the
    # candidates: the own centre and every centre the bounds cannot rule
    # out, in index order.
    for j in range(n_clusters):
        stored = lower[r, j]
        drifted = stored - own_drift[j] - 4.0 * _EPS * (stored + own_drift[j])
        bound[j] = max(drifted, center_dist[a, j] * (1.0 - ulps) - u)
    n_candidates = 0
    for j in range(n_clusters):
        candidates[n_candidates] = j
        n_candidates += (bound[j] <= threshold) | (j == a)
    best = X.dtype.type(np.inf)
    label = a
    if n_candidates > 1:
        for q in range(n_candidates):
            j = candidates[q]
            s = row_score(X, r, centers, center_sq_norms, j)
            l_j = np.sqrt(max(np.float64(s) + xx - margin, 0.0))
            lower[r, j] = l_j + own_drift[j]
            bound[j] = l_j
            if s < best:
                best, label = s, np.int32(j)
        u = np.sqrt(max(np.float64(best) + xx + margin, 0.0))
    bound[label] = np.inf
    b = np.inf
    for j in range(n_clusters):
        b = min(b, bound[j])
    key[r] = row_key(u, b, center_drift[label], margin)
    lower_key[r] = b + drift
    return label


@kernel
def _elkan_rows(
    X,
    tiles,
    fill_tiles,
    first_tile,
    sample_weight,
    centers,
    center_sq_norms,
    center_dist,
    state,
    labels,
    key,
    lower_key,
    lower,
    row_start,
    row_stop,
    out,
):
    """One Elkan step for rows ``row_start:row_stop``: bounds, labels, sums.

    Arguments as ``bounds._hamerly_rows``, plus ``center_dist`` from
    ``center_distances`` and ``lower`` (n_samples, n_clusters) float64 INOUT,
    the stored lower bounds per centre (``lower_key`` holds Hamerly's bound
    plus the drift ``G``: at most their minimum, or the half separation).
    """
    n_clusters = centers.shape[0]
    first_pass = state[SCALARS, FIRST] > 0.0
    scratch = new_tile(X.shape[1] if tiles.shape[0] == 0 else 0, X.dtype)
    scores = np.empty((3, CHUNK), dtype=X.dtype)
    xx = np.empty(CHUNK)
    old_labels = np.empty(CHUNK, dtype=np.int32)
    new_labels = np.empty(CHUNK, dtype=np.int32)
    rows = np.empty(CHUNK, dtype=np.int64)
    candidates = np.empty(n_clusters, dtype=np.int64)
    bound = np.empty(n_clusters)
    work = np.empty((5, CHUNK))
    acc = np.zeros(out.shape, dtype=np.float64)
    row_bounds = (key, lower_key, lower)
    changed = 0
    for m, start in enumerate(range(row_start, row_stop, CHUNK)):
        stop = min(start + CHUNK, row_stop)
        n_rows = stop - start
        if first_pass:
            tile = chunk_tile(X, tiles, fill_tiles, first_tile + m, start, stop, scratch)[0]
            _first_scores(
                tile, n_rows, start, centers, center_sq_norms, state, row_bounds, new_labels, scores, xx
            )
            n_left = n_rows
            for i in range(n_rows):
                rows[i] = i
        else:
            n_left = rows_behind(key, labels, start, n_rows, state[CENTER_DRIFT], rows)
            # Hamerly's second test first (exact own distance), for the chunk at once.
            n_left = tighten_rows(X, start, rows, n_left, centers, labels, key, lower_key, state, work)
            for q in range(n_left):
                r = start + rows[q]
                new_labels[q] = _revisit(
                    X, r, centers, center_sq_norms, center_dist, state, labels, row_bounds, candidates, bound
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
def _elkan_groups(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers,
    center_sq_norms,
    center_dist,
    state,
    labels,
    key,
    lower_key,
    lower,
    group_partials,
    group_changed,
):
    """``_elkan_rows`` over every group of rows, the groups in parallel."""
    n_samples = X.shape[0]
    n_groups = group_changed.shape[0]
    per_group = tiles_per_group(n_groups, n_samples)
    for task in prange(n_groups):
        g = np.int64(task)
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        group_changed[g] = _elkan_rows(
            X,
            tiles,
            fill_tiles,
            g * per_group,
            sample_weight,
            centers,
            center_sq_norms,
            center_dist,
            state,
            labels,
            key,
            lower_key,
            lower,
            g_start,
            g_stop,
            group_partials[g],
        )


@kernel
def elkan_block(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers,
    center_sq_norms,
    state,
    center_dist,
    labels,
    key,
    lower_key,
    lower,
    group_partials,
    group_changed,
):
    """Elkan's labels and partials for a block of rows: Lloyd's, scoring only the centres the bounds leave.

    Arguments as ``bounds.hamerly_block`` (returns nothing), plus
    ``center_dist`` (n_clusters, n_clusters) float64 scratch and ``lower``
    (n_samples, n_clusters) float64 INOUT.
    """
    center_distances(centers, center_dist, state[HALF_SEP])
    padded = padded_centers(centers, X.dtype)
    _elkan_groups(
        X,
        tiles,
        fill_tiles,
        sample_weight,
        padded,
        center_sq_norms,
        center_dist,
        state,
        labels,
        key,
        lower_key,
        lower,
        group_partials,
        group_changed,
    )
    state[SCALARS, FIRST] = 0.0
