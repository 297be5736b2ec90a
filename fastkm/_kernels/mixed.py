"""Lloyd's assignment for float64 data, scored in float32 and checked.

A float32 score takes half the vector width of a float64 one, so the scoring,
which is nearly all of an iteration's time at mid d, runs about twice as fast.
Each row is scored in float32 against every centre (best and second best);
where the gap between the two is wider than the float32 scores' rounding
could close, the float32 winner is provably the float64 kernel's winner too,
and the row takes it. The other rows (near-ties) are scored again in float64
row by row with the float64 kernel's arithmetic (``_rescored_label``): every
label is the one the float64 Lloyd kernel gives, bit for bit, and the centre
sums still add the float64 rows.

The rounding bound. With ``u`` float32's unit roundoff, rounding x and c to
float32, the FMA chain over ``d`` features and the final ``||c||^2 - 2 x.c``
err by at most about ``(d + 6) u (||c||^2 + 2 ||x|| ||c||)``; the float64
scores by the same with float64's ``u``. A row's label stands when its
float32 gap exceeds twice the sum of both, for the largest ``||c||`` of the
iteration; ``mixed_error_scale`` adds a quarter more, and an absolute term
for float32 underflow. Rows large enough that a float32 score could overflow
(an infinite score is not caught by the gap) are always rescored.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, fma, kernel, parallel_kernel
from .bounds import half_separations, row_key
from .lloyd import accumulate_changes, group_bounds, store_partials, tiles_per_group
from .tiles import chunk_tile, new_scores, new_tile, padded_centers, prefetch_offset, tile_top2

_U32 = float(np.finfo(np.float32).eps) / 2
_U64 = float(np.finfo(np.float64).eps) / 2
_TINY32 = float(np.finfo(np.float32).tiny)
_SQRT_MAX32 = float(np.sqrt(np.finfo(np.float32).max))


@kernel
def mixed_error_scale(center_sq_norms, n_features):
    """``(a, b, x_limit)``: a row's float32 gap must exceed ``a + b ||x||``, and its
    ``||x||`` stay below ``x_limit`` (module docstring).

    Below ``x_limit`` no float32 score or partial sum can overflow; it is
    negative (every row rescored in float64) once the centres alone are too
    large for float32.
    """
    c_max = 0.0
    for j in range(center_sq_norms.shape[0]):
        c_max = max(c_max, np.sqrt(np.float64(center_sq_norms[j])))
    per_unit = 2.5 * (n_features + 8.0) * (_U32 + _U64)
    # Underflow: each float32 value may be off by the smallest normal.
    tiny = 4.0 * (n_features + 8.0) * _TINY32 * (1.0 + c_max)
    a = per_unit * c_max * c_max + tiny
    b = 2.0 * per_unit * c_max + 4.0 * (n_features + 8.0) * _TINY32
    # |score| <= ||c||^2 + 2 ||x|| ||c|| <= (||x|| + ||c||)^2: kept below a
    # quarter of float32's largest value.
    return a, b, 0.5 * _SQRT_MAX32 - c_max


@kernel
def _rescored_label(X, r, centers, center_sq_norms):
    """Row ``r``'s nearest centre scored in X's dtype: ``tiles.tile_argmin``'s label, bit for bit.

    The dot product is the same sequential FMA chain over the features (the
    tile's zero padding adds exact zeros), the score ``||c||^2 - 2 x.c`` the
    same single rounding, and ties go to the first centre. A plain loop:
    near-ties are rare, and scoring them through a tile compiled a second,
    float64 tile kernel into every first fit (about 1 s).
    """
    minus2 = X.dtype.type(-2.0)
    best = np.inf
    label = np.int32(0)
    for j in range(centers.shape[0]):
        dot = centers[j, 0] * X[r, 0]
        for f in range(1, X.shape[1]):
            dot = fma(centers[j, f], X[r, f], dot)
        score = fma(minus2, dot, center_sq_norms[j])
        if score < best:
            best = score
            label = np.int32(j)
    return label


@kernel
def _bounds_from_scores(scores, n_rows, error_scale, bounds, start):
    """Hamerly's bounds (``bounds.row_key``) from a chunk's float32 best and second-best scores.

    A score ``||c||^2 - 2 x.c`` plus ``||x||^2`` is a squared distance; the
    float32 scores err by less than ``a + b ||x||`` (``mixed_error_scale``,
    which bounds the sum of two such errors), and the bounds are widened by
    that and by the bounds' own margin. The bounds refer to the centres
    just scored, with no drift yet. A row not ``clear`` (rescored in
    float64) gets no bounds: its key lets the next iteration test it.
    """
    best32, second32, norms, clear, chunk_labels = scores
    key, lower_key, half_sep, margin = bounds
    a, b, _ = error_scale
    for i in range(n_rows):
        r = start + i
        if not clear[i]:
            key[r] = -np.inf
            lower_key[r] = 0.0
            continue
        xx = norms[i] * norms[i]
        widen = a + b * norms[i] + margin
        u = np.sqrt(max(np.float64(best32[i]) + xx + widen, 0.0))
        lower = np.sqrt(max(np.float64(second32[i]) + xx - widen, 0.0))
        bq = max(lower, half_sep[chunk_labels[i]])
        lower_key[r] = bq
        key[r] = row_key(u, bq, 0.0, margin)


@kernel
def _clear(best32, second32, norm, error_scale):
    """Whether a row's float32 winner is provably the float64 one (module docstring).

    ``norm`` is the row's ``||x||`` or any bound above it (the test only
    gets stricter).
    """
    a, b, x_limit = error_scale
    gap = np.float64(second32) - np.float64(best32)
    return gap > a + b * norm and norm < x_limit


@kernel
def _chunk_norms(X, start, n_rows, norms):
    """Each row's ``||x||`` (float64) into ``norms``; returns the largest."""
    top = 0.0
    for i in range(n_rows):
        s = 0.0
        for f in range(X.shape[1]):
            s += np.float64(X[start + i, f]) * np.float64(X[start + i, f])
        norms[i] = np.sqrt(s)
        top = max(top, norms[i])
    return top


@kernel
def _mixed_rows(
    X,
    tiles,
    fill_tiles,
    first_tile,
    sample_weight,
    centers32,
    norms32,
    centers,
    center_sq_norms,
    tile_norms,
    error_scale,
    labels,
    bounds,
    row_start,
    row_stop,
    out,
):
    """Label rows ``row_start:row_stop``; correct the centre sums for those relabelled.

    As ``lloyd._assign_rows``, with ``tiles`` a float32 copy of X (filled on
    the first call), or none (shape (0, 0, 0): each chunk of X is loaded
    into a float32 scratch tile), and the centres given twice: padded
    float32 copies and their norms for the first scoring, the float64 ones
    for the rows rescored. ``tile_norms`` holds each kept tile's largest
    ``||x||`` (float64), written when the tiles are filled (shape (0,)
    without tiles): a kept tile's rows are tested against it, which spares
    an iteration a read of every row's norm. ``error_scale`` comes from
    ``mixed_error_scale``; ``bounds`` see ``mixed_block``.
    """
    n_features = X.shape[1]
    kept = tiles.shape[0] > 0
    with_bounds = bounds[0].shape[0] > 0
    scratch = new_tile(0 if kept else n_features, np.float32)
    scores32 = new_scores(np.float32)
    best32 = np.empty(CHUNK, dtype=np.float32)
    second32 = np.empty(CHUNK, dtype=np.float32)
    norms = np.empty(CHUNK)
    clear = np.empty(CHUNK, dtype=np.bool_)
    recheck = np.empty(CHUNK, dtype=np.int64)
    old_labels = np.empty(CHUNK, dtype=np.int32)
    chunk_labels = np.empty(CHUNK, dtype=np.int32)
    every_row = np.arange(CHUNK)
    acc = np.zeros(out.shape, dtype=np.float64)
    changed = 0
    for m, start in enumerate(range(row_start, row_stop, CHUNK)):
        stop = min(start + CHUNK, row_stop)
        n_rows = stop - start
        tile = chunk_tile(X, tiles, fill_tiles, first_tile + m, start, stop, scratch)[0]
        # Rows read from X have their own norms; a kept tile's share its largest
        # (the bounds need each row's own).
        own_norms = fill_tiles or not kept or with_bounds
        if own_norms:
            top = _chunk_norms(X, start, n_rows, norms)
            if kept:
                tile_norms[first_tile + m] = top
        else:
            top = tile_norms[first_tile + m]
        ahead = prefetch_offset(tiles, centers.shape[0], fill_tiles, stop < row_stop)
        top2 = scores32, best32, second32, chunk_labels
        tile_top2(tile, n_rows, n_features, centers32, norms32, *top2, ahead)
        n_unclear = 0
        for i in range(n_rows):
            n_unclear += not _clear(best32[i], second32[i], norms[i] if own_norms else top, error_scale)
        if n_unclear > 0 or with_bounds:
            n_recheck = 0
            for i in range(n_rows):
                clear[i] = _clear(best32[i], second32[i], norms[i] if own_norms else top, error_scale)
                recheck[n_recheck] = i
                n_recheck += not clear[i]
            if with_bounds:
                scores = best32, second32, norms, clear, chunk_labels
                _bounds_from_scores(scores, n_rows, error_scale, bounds, start)
            for q in range(n_recheck):
                chunk_labels[recheck[q]] = _rescored_label(X, start + recheck[q], centers, center_sq_norms)
        # Labels and sums change only where a label did (late iterations: few chunks).
        # A view indexed from 0: the count vectorises (``start + i`` gathers).
        row_labels = labels[start:stop]
        n_changed = 0
        for i in range(n_rows):
            n_changed += row_labels[i] != chunk_labels[i]
        if n_changed > 0:
            for i in range(n_rows):
                old_labels[i] = row_labels[i]
                row_labels[i] = chunk_labels[i]
            accumulate_changes(X, start, every_row, n_rows, old_labels, chunk_labels, sample_weight, acc)
            changed += n_changed
    store_partials(acc, out)
    return changed


@parallel_kernel
def _mixed_groups(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers32,
    norms32,
    centers,
    center_sq_norms,
    tile_norms,
    error_scale,
    labels,
    bounds,
    group_partials,
    group_changed,
):
    """``_mixed_rows`` over every group of rows, the groups in parallel."""
    n_samples = X.shape[0]
    n_groups = group_changed.shape[0]
    per_group = tiles_per_group(n_groups, n_samples)
    for task in prange(n_groups):
        g = np.int64(task)
        g_start, g_stop = group_bounds(g, n_groups, n_samples)
        group_changed[g] = _mixed_rows(
            X,
            tiles,
            fill_tiles,
            g * per_group,
            sample_weight,
            centers32,
            norms32,
            centers,
            center_sq_norms,
            tile_norms,
            error_scale,
            labels,
            bounds,
            g_start,
            g_stop,
            group_partials[g],
        )


@kernel
def mixed_block(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers,
    center_sq_norms,
    tile_norms,
    labels,
    bounds,
    group_partials,
    group_changed,
):
    """Lloyd's labels and partials for a block of rows, scored in float32 and checked.

    The same labels and partials as ``lloyd.assign_labels`` (the per-block
    entry; see ``_solvers.steps``), with its arguments, except the ones
    below; returns nothing (the labels changed are in ``group_changed``).

    X : (n_samples, n_features) float64 IN
    tiles : float32 tiles of X (see ``lloyd._assign_rows``), filled when
        ``fill_tiles``; or shape (0, 0, 0) to read X
    tile_norms : (n_tiles,) float64 INOUT, each tile's largest ``||x||``,
        written with the tiles (``fill_tiles``) and read after; shape (0,)
        without tiles
    bounds : ``(key, lower_key, half_sep, margin)``: with ``key`` and
        ``lower_key`` (n_samples,) float64 OUT, every row's Hamerly bounds
        against ``centers`` (``bounds.row_key``, no drift yet; the float32
        scores give them for free), ``half_sep`` (n_clusters,) OUT the
        centres' half separations, ``margin`` the bounds' rounding margin;
        ``key`` of shape (0,) for none
    """
    n_features = X.shape[1]
    if bounds[0].shape[0] > 0:
        half_separations(centers, bounds[2])
    padded32 = padded_centers(centers, np.float32)
    norms32 = np.empty(center_sq_norms.shape[0], dtype=np.float32)
    for j in range(norms32.shape[0]):
        norms32[j] = center_sq_norms[j]
    error_scale = mixed_error_scale(center_sq_norms, n_features)
    _mixed_groups(
        X,
        tiles,
        fill_tiles,
        sample_weight,
        padded32,
        norms32,
        centers,
        center_sq_norms,
        tile_norms,
        error_scale,
        labels,
        bounds,
        group_partials,
        group_changed,
    )
