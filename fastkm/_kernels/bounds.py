"""Bound-based exact k-means: Hamerly's algorithm (2010).

Each row keeps an upper bound on the distance to its own centre and a lower
bound on the distance to every other; after the centres move, the bounds move
by the shifts (triangle inequality). A row whose upper bound stays below
``max(lower bound, half the distance from its centre to the nearest other)``
keeps its label without computing any distance. The others are gathered and
scored against every centre by the Lloyd tile routines, so their labels have
Lloyd's bits. The centre sums are Lloyd's (``lloyd.accumulate_chunk`` over all
rows, reduced by ``lloyd.finish_iteration``): equal labels, equal centres.

Exactness against rounding. Lloyd compares ``||c||^2 - 2 x.c``, whose rounding
error is bounded by ``E = gamma * (||x||^2 + max ||c||^2)``. A row skips only
when ``upper^2 + E < bound^2``, so that its true gap exceeds anything rounding
could undo, and bounds taken from scores are widened by ``E``: a skipped row
has the label Lloyd's kernel would give it.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, FEATURE_BLOCK, fma, kernel, parallel_kernel
from .lloyd import (
    accumulate_chunk,
    finish_iteration,
    finish_sums,
    group_bounds,
    new_accumulators,
    tiles_per_group,
)
from .tiles import (
    clear_padding,
    load_tile,
    new_scores,
    new_tile,
    padded_centers,
    tile_center_scores,
    wide_dots4,
)


@kernel
def half_separations(centers, out):
    """``out[j]`` = half the distance from centre ``j`` to the nearest other one.

    Exact differences in float64; ``inf`` with a single centre.
    """
    n_clusters, n_features = centers.shape
    for j in range(n_clusters):
        out[j] = np.inf
    for j in range(n_clusters):
        for m in range(j + 1, n_clusters):
            s = 0.0
            for f in range(n_features):
                diff = np.float64(centers[j, f]) - np.float64(centers[m, f])
                s += diff * diff
            out[j] = min(out[j], s)
            out[m] = min(out[m], s)
    for j in range(n_clusters):
        out[j] = 0.5 * np.sqrt(out[j])


@kernel
def center_shifts(old, new, out):
    """``out[j]`` = distance centre ``j`` moved; returns (largest, its index, second largest)."""
    n_clusters, n_features = old.shape
    largest, second, arg = 0.0, 0.0, 0
    for j in range(n_clusters):
        s = 0.0
        for f in range(n_features):
            diff = np.float64(new[j, f]) - np.float64(old[j, f])
            s += diff * diff
        d = np.sqrt(s)
        out[j] = d
        if d > largest:
            second = largest
            largest = d
            arg = j
        elif d > second:
            second = d
    return largest, arg, second


@kernel
def _push(best, second, label, s, j):
    """Fold score ``s`` of centre ``j`` into a row's (best, second best, label)."""
    better = s < best
    second = best if better else min(second, s)
    best = s if better else best
    label = np.int32(j) if better else label
    return best, second, label


@kernel
def _top2(tile, n_rows, centers, center_sq_norms, dots, best, second, labels):
    """Best and second-best score of every tile row, and the best centre.

    Scores are ``||c||^2 - 2 x.c`` with the dot products of ``wide_dots4``
    (four centres per sweep), which has the bits of ``tile_center_scores`` at
    every width: Lloyd's scores, compared in index order with a strict ``<``
    (the first of equal scores wins).

    dots : (4, >= CHUNK) scratch
    """
    n_clusters = centers.shape[0]
    minus2 = tile.dtype.type(-2.0)
    for i in range(n_rows):
        best[i] = np.inf
        second[i] = np.inf
        labels[i] = 0
    j = np.int64(0)
    while j + 4 <= n_clusters:
        wide_dots4(tile, n_rows, centers, j, dots)
        n0, n1, n2, n3 = (
            center_sq_norms[j],
            center_sq_norms[j + 1],
            center_sq_norms[j + 2],
            center_sq_norms[j + 3],
        )
        for i in range(n_rows):
            b, sec, lab = _push(best[i], second[i], labels[i], fma(minus2, dots[0, i], n0), j)
            b, sec, lab = _push(b, sec, lab, fma(minus2, dots[1, i], n1), j + 1)
            b, sec, lab = _push(b, sec, lab, fma(minus2, dots[2, i], n2), j + 2)
            b, sec, lab = _push(b, sec, lab, fma(minus2, dots[3, i], n3), j + 3)
            best[i], second[i], labels[i] = b, sec, lab
        j += 4
    for jr in range(j, n_clusters):
        tile_center_scores(tile, n_rows, centers, center_sq_norms, jr, dots[0])
        for i in range(n_rows):
            best[i], second[i], labels[i] = _push(best[i], second[i], labels[i], dots[0, i], jr)


@kernel
def _own_distance(tile, i, centers, label, n_features):
    """Distance from tile row ``i`` to centre ``label``, from exact differences."""
    s = 0.0
    for f in range(n_features):
        diff = np.float64(tile[f, i]) - np.float64(centers[label, f])
        s += diff * diff
    return np.sqrt(s)


@kernel
def _hamerly_rows(
    X,
    tiles,
    fill_tiles,
    first_tile,
    sample_weight,
    x_sq_norms,
    centers,
    center_sq_norms,
    state,
    labels,
    upper,
    lower,
    row_start,
    row_stop,
    out,
):
    """One Hamerly step for rows ``row_start:row_stop``: bounds, labels, sums.

    state : (4, n_clusters) float64 IN: half separations, shifts, then
        [largest shift, its index, second largest shift, gamma] in row 3
        (gamma < 0: no bounds yet, score every row)
    labels, upper, lower : (n_samples,) INOUT
    out : (n_clusters, n_features + 1) OUT, weighted sums as ``lloyd._assign_rows``
    Returns the number of labels that changed.
    """
    n_features = X.shape[1]
    n_clusters = centers.shape[0]
    half_sep, shifts = state[0], state[1]
    largest, arg_largest, second_largest, gamma = state[2, 0], np.int64(state[2, 1]), state[2, 2], state[2, 3]
    first_pass = gamma < 0.0
    c_max = state[3, 0]
    pretiled = tiles.shape[0] > 0
    tile = new_tile(n_features if not pretiled else 0, X.dtype)
    gathered = new_tile(n_features, X.dtype)
    width = gathered.shape[0]
    scores = new_scores(X.dtype)
    best = np.empty(CHUNK, dtype=X.dtype)
    second = np.empty(CHUNK, dtype=X.dtype)
    new_labels = np.empty(CHUNK, dtype=np.int32)
    rows = np.empty(CHUNK, dtype=np.int64)
    chunk_labels = np.empty(CHUNK, dtype=np.int32)
    acc, copies = new_accumulators(n_clusters, n_features, centers.shape[1] == FEATURE_BLOCK, out.dtype)
    changed = 0
    for m, start in enumerate(range(row_start, row_stop, CHUNK)):
        stop = min(start + CHUNK, row_stop)
        n_rows = stop - start
        if pretiled:
            tile = tiles[first_tile + m]
        if fill_tiles or not pretiled:
            if pretiled:
                clear_padding(tile, n_features)
            load_tile(X, start, stop, tile)
        n_gathered = 0
        for i in range(n_rows):
            r = start + i
            label = labels[r]
            chunk_labels[i] = label
            if first_pass:
                rows[n_gathered] = i
                n_gathered += 1
                continue
            u = upper[r] + shifts[label]
            low = lower[r] - (second_largest if label == arg_largest else largest)
            bound = max(low, half_sep[label])
            margin = gamma * (x_sq_norms[r] + c_max)
            if u * u + margin < bound * bound:
                upper[r] = u
                lower[r] = low
                continue
            u = _own_distance(tile, i, centers, label, n_features)
            upper[r] = u
            lower[r] = low
            if u * u + margin < bound * bound:
                continue
            rows[n_gathered] = i
            n_gathered += 1
        if n_gathered > 0:
            # Score the undecided rows against every centre, gathered into one tile.
            for q in range(n_gathered):
                i = rows[q]
                for f in range(width):
                    gathered[f, q] = tile[f, i]
            _top2(gathered, n_gathered, centers, center_sq_norms, scores, best, second, new_labels)
            for q in range(n_gathered):
                i = rows[q]
                r = start + i
                xx = x_sq_norms[r]
                margin = abs(gamma) * (xx + c_max)
                upper[r] = np.sqrt(max(np.float64(best[q]) + xx + margin, 0.0))
                lower[r] = np.sqrt(max(np.float64(second[q]) + xx - margin, 0.0))
                changed += labels[r] != new_labels[q]
                labels[r] = new_labels[q]
                chunk_labels[i] = new_labels[q]
        accumulate_chunk(X, tile, start, n_rows, chunk_labels, sample_weight, acc, copies)
    finish_sums(copies, acc, out)
    return changed


@parallel_kernel
def _hamerly_groups(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    x_sq_norms,
    centers,
    center_sq_norms,
    state,
    labels,
    upper,
    lower,
    group_partials,
    group_changed,
):
    """``_hamerly_rows`` over every group of rows, the groups in parallel."""
    n_samples = X.shape[0]
    n_groups = group_changed.shape[0]
    per_group = tiles_per_group(n_groups, n_samples)
    for task in prange(n_groups):
        g = np.int64(task)
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        group_changed[g] = _hamerly_rows(
            X,
            tiles,
            fill_tiles,
            g * per_group,
            sample_weight,
            x_sq_norms,
            centers,
            center_sq_norms,
            state,
            labels,
            upper,
            lower,
            g_start,
            g_stop,
            group_partials[g],
        )


@kernel
def hamerly_iteration(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    x_sq_norms,
    centers,
    center_sq_norms,
    state,
    labels,
    upper,
    lower,
    group_partials,
    group_changed,
    new_centers,
    weights,
):
    """One Hamerly iteration: Lloyd's result, skipping rows the bounds decide.

    Arguments as ``lloyd.lloyd_iteration``, plus:

    x_sq_norms : (n_samples,) float64 IN, squared row norms
    state : (4, n_clusters) float64 INOUT, see ``_hamerly_rows``; set
        ``state[2, 3] = -gamma`` before the first iteration. Updated here for
        the next one (separations, shifts).
    upper, lower : (n_samples,) float64 INOUT, the bounds

    Returns ``(n_changed, n_empty, center_shift)``; with an empty cluster
    ``new_centers`` holds the sums and the caller must call ``move_bounds``
    once it has the final centres. Otherwise the state is already updated.
    """
    half_separations(centers, state[0])
    c_max = 0.0
    for j in range(center_sq_norms.shape[0]):
        c_max = max(c_max, np.float64(center_sq_norms[j]))
    state[3, 0] = c_max
    _hamerly_groups(
        X,
        tiles,
        fill_tiles,
        sample_weight,
        x_sq_norms,
        padded_centers(centers, X.dtype),
        center_sq_norms,
        state,
        labels,
        upper,
        lower,
        group_partials,
        group_changed,
    )
    state[2, 3] = abs(state[2, 3])
    result = finish_iteration(group_partials, group_changed, centers, new_centers, weights)
    if result[1] == 0:
        move_bounds(centers, new_centers, state)
    return result


@kernel
def move_bounds(old_centers, new_centers, state):
    """Record how far each centre moved, for the next iteration's bounds."""
    largest, arg, second = center_shifts(old_centers, new_centers, state[1])
    state[2, 0] = largest
    state[2, 1] = arg
    state[2, 2] = second
