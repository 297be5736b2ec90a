"""Bound-based exact k-means: Hamerly's algorithm (2010), with drift keys.

Hamerly keeps, per row, an upper bound ``u`` on the distance to its own centre
and a lower bound ``b`` on the distance to every other one (at least half the
distance from its centre to the nearest other centre, too). A row with
``u < b`` keeps its label without computing any distance.

Drift keys. Let ``G`` be the running sum of the largest centre shift of every
iteration (the *drift*) and ``D_j`` the running sum of centre ``j``'s own
shifts. A row of centre ``a`` whose bounds were ``(u, b)`` when ``D_a + G``
was ``T0`` stays decided while ``b - u > (D_a + G) - T0``: its upper bound
has grown by at most the change in ``D_a`` and its lower bound has shrunk by
at most the change in ``G``. So one number per row, ``key = (b - u) + T0``,
is compared with its centre's current ``T_a = D_a + G``: rows the bounds
decide cost a load, a lookup in a k-long table and a compare. A row whose key
falls behind goes to a second test: its exact distance to its own centre
against the stored lower bound ``b + G0 - G`` (and the current half
separation); only rows still undecided are scored against every centre, by
``tiles.tile_top2``, so their labels have Lloyd's bits.

Centre sums are corrected only for the rows whose label changed, in row order,
exactly as Lloyd's kernel does (``lloyd.accumulate_changes``): the same
labels, iteration after iteration, give the same centres, bit for bit.

Exactness against rounding. Lloyd compares ``||c||^2 - 2 x.c``, whose rounding
error is below ``E = gamma * (max ||x||^2 + max ||c||^2)`` (fixed for a run:
every centre after the first iteration is a mean of rows; ``max ||x||^2`` is
over the rows, or a bound on it the caller gives: over all the rows for a block
of them, whose centres are means of all the rows). A row is decided
only when ``b^2 - u^2 > E``, so that its true gap exceeds anything rounding
could undo; bounds taken from scores are widened by ``E``. ``E`` is twice
what the score comparisons need (see ``_solvers.steps._bounds_state``): the other
half covers the rounding of the exact distances the tests compute. Keys carry the
margin ``2 E / b`` and stop deciding once ``b`` may have lost half its value:
while ``b_now - u_now > 2 E / b`` and ``b_now > b / 2``,
``b_now^2 - u_now^2 > (2 E / b) (b / 2) = E``. A few ulps more cover the keys'
own rounding, and the drifts are summed rounding up.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, kernel, parallel_kernel
from .lloyd import accumulate_changes, group_bounds, store_partials, tiles_per_group
from .tiles import chunk_tile, gather_tile, new_scores, new_tile, padded_centers, tile_top2

# Globals are compile-time constants in kernels.
_EPS = float(np.finfo(np.float64).eps)
# A running sum of drifts is multiplied by this after each addition: a few
# ulps up, so that it never falls short of the true sum.
ROUND_UP = 1.0 + 4.0 * _EPS

# Rows of the state array (see new_state).
HALF_SEP = 0
SCALARS = 1
CENTER_DRIFT = 2
OWN_DRIFT = 3
# Columns of the scalars row.
DRIFT = 0
MARGIN = 1
FIRST = 2


def new_state(n_clusters, margin):
    """The bounds' state for a run, one row each (module docstring for the drifts):

    - ``HALF_SEP``: each centre's half separation, set every iteration;
    - ``SCALARS``: the drift ``G``, the rounding margin ``E`` and the first-pass flag;
    - ``CENTER_DRIFT``: each centre's ``T_j = D_j + G``;
    - ``OWN_DRIFT``: each centre's own drift ``D_j`` (Elkan's lower bounds).
    """
    state = np.zeros((4, max(n_clusters, 3)))
    state[SCALARS, MARGIN] = margin
    state[SCALARS, FIRST] = 1.0
    return state


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
    """``out[j]``: how far centre ``j`` moved from ``old`` to ``new``; returns the largest.

    Exact differences in float64, widened for the rounding of the sum of
    squares and of the square root: a shift must not fall short of the true one.
    """
    n_clusters, n_features = old.shape
    widen = 1.0 + (16.0 + n_features) * _EPS
    largest = 0.0
    for j in range(n_clusters):
        s = 0.0
        for f in range(n_features):
            diff = np.float64(new[j, f]) - np.float64(old[j, f])
            s += diff * diff
        out[j] = np.sqrt(s) * widen
        largest = max(largest, out[j])
    return largest


@kernel
def row_key(u, b, center_drift, margin):
    """A row's key from its bounds ``u < b`` and its centre's current drift (module docstring)."""
    if not b > 0.0:
        return -np.inf
    if b == np.inf:
        return np.inf  # a single centre: nothing can take the row
    # 2 E / b keeps b^2 - u^2 > E while b has lost less than half; 8 ulps of
    # the sum cover this arithmetic.
    slack = b - u - 2.0 * margin / b - 8.0 * _EPS * (b + u + 2.0 * center_drift)
    return min(slack, 0.5 * b) + center_drift


@kernel
def rows_behind(key, labels, start, n_rows, center_drift, rows):
    """Write the chunk's rows whose key no longer exceeds their centre's drift to ``rows``; count them."""
    n_behind = 0
    for i in range(n_rows):
        rows[n_behind] = i
        n_behind += not key[start + i] > center_drift[labels[start + i]]
    return n_behind


@kernel
def rows_to_test(first_pass, key, labels, start, n_rows, center_drift, rows):
    """The chunk's rows the keys do not decide, into ``rows``; their count.

    Every row on the first pass (no bounds yet), else the rows behind.
    """
    if first_pass:
        for i in range(n_rows):
            rows[i] = i
        return n_rows
    return rows_behind(key, labels, start, n_rows, center_drift, rows)


@kernel
def tighten_rows(X, start, rows, n_behind, centers, labels, key, lower_key, state, scratch):
    """Second test of the rows behind: exact distance to their own centre.

    Rows it decides get fresh keys; the others stay in ``rows`` (in order),
    and their count is returned. Each distance reads the row of X and its
    centre, both contiguous; the rest (square roots, keys) runs as one
    vectorised loop over the rows.

    state : see ``new_state``
    scratch : (>= 5, >= CHUNK) float64
    """
    n_features = X.shape[1]
    half_sep, center_drift = state[HALF_SEP], state[CENTER_DRIFT]
    drift, margin = state[SCALARS, DRIFT], state[SCALARS, MARGIN]
    b, u_sq, new_key, decided, t = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
    for q in range(n_behind):
        r = start + rows[q]
        label = labels[r]
        b[q] = max(lower_key[r] - drift, half_sep[label])
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
    # Branch-free: whether a row is decided is unpredictable. An undecided
    # row's key is rewritten by the rescoring that follows.
    n_left = 0
    for q in range(n_behind):
        i = rows[q]
        r = start + i
        lower_key[r] = b[q] + drift
        key[r] = new_key[q]
        rows[n_left] = i
        n_left += decided[q] == 0.0
    return n_left


@kernel
def _rescored_bounds(gathered, n_left, best, second, new_labels, state, scratch):
    """Keys and lower keys of rows scored against every centre, into ``scratch[0:2]``.

    Bounds from scores are widened by the rounding margin (module docstring).
    """
    width = gathered.shape[0]
    half_sep, center_drift = state[HALF_SEP], state[CENTER_DRIFT]
    drift, margin = state[SCALARS, DRIFT], state[SCALARS, MARGIN]
    new_key, new_lower_key, b, xx, t = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
    for q in range(n_left):
        b[q] = half_sep[new_labels[q]]
        t[q] = center_drift[new_labels[q]]
        xx[q] = 0.0
    for f in range(width):
        for q in range(n_left):
            xx[q] += np.float64(gathered[f, q]) * np.float64(gathered[f, q])
    for q in range(n_left):
        u = np.sqrt(max(np.float64(best[q]) + xx[q] + margin, 0.0))
        lower = np.sqrt(max(np.float64(second[q]) + xx[q] - margin, 0.0))
        bq = max(lower, b[q])
        new_lower_key[q] = bq + drift
        new_key[q] = row_key(u, bq, t[q], margin)


@kernel
def _hamerly_rows(
    X,
    tiles,
    fill_tiles,
    first_tile,
    sample_weight,
    centers,
    center_sq_norms,
    state,
    labels,
    key,
    lower_key,
    row_start,
    row_stop,
    out,
):
    """One Hamerly step for rows ``row_start:row_stop``: bounds, labels, sums.

    state : see ``new_state``; on the first pass every row is scored
    labels, key, lower_key : (n_samples,) INOUT
    out : (n_clusters, n_features + 2) float64 OUT, corrections to the centre
        sums as ``lloyd._assign_rows``
    Returns the number of labels that changed.
    """
    n_features = X.shape[1]
    center_drift = state[CENTER_DRIFT]
    first_pass = state[SCALARS, FIRST] > 0.0
    # Without kept tiles the rows to score are gathered from X itself: only
    # they are read (a run carried on from brute force keeps no copy of X).
    kept = tiles.shape[0] > 0
    scratch = new_tile(0, X.dtype)
    gathered = new_tile(n_features, X.dtype)
    width = gathered.shape[0]
    scores = new_scores(X.dtype)
    best = np.empty(CHUNK, dtype=X.dtype)
    second = np.empty(CHUNK, dtype=X.dtype)
    old_labels = np.empty(CHUNK, dtype=np.int32)
    new_labels = np.empty(CHUNK, dtype=np.int32)
    rows = np.empty(CHUNK, dtype=np.int64)
    work = np.empty((5, CHUNK))
    acc = np.zeros(out.shape, dtype=np.float64)
    changed = 0
    for m, start in enumerate(range(row_start, row_stop, CHUNK)):
        stop = min(start + CHUNK, row_stop)
        n_rows = stop - start
        n_left = rows_to_test(first_pass, key, labels, start, n_rows, center_drift, rows)
        if n_left == 0 and not fill_tiles:
            continue
        if kept:
            tile = chunk_tile(X, tiles, fill_tiles, first_tile + m, start, stop, scratch)[0]
        if not first_pass:
            n_left = tighten_rows(X, start, rows, n_left, centers, labels, key, lower_key, state, work)
        if n_left == 0:
            continue
        # Score the undecided rows against every centre, gathered into one tile.
        if kept:
            for f in range(width):
                for q in range(n_left):
                    gathered[f, q] = tile[f, rows[q]]
        else:
            gather_tile(X, start, rows, n_left, gathered)
        tile_top2(gathered, n_left, n_features, centers, center_sq_norms, scores, best, second, new_labels, 0)
        _rescored_bounds(gathered, n_left, best, second, new_labels, state, work)
        for q in range(n_left):
            r = start + rows[q]
            key[r] = work[0, q]
            lower_key[r] = work[1, q]
            old_labels[q] = labels[r]
            changed += old_labels[q] != new_labels[q]
            labels[r] = new_labels[q]
        accumulate_changes(X, start, rows, n_left, old_labels, new_labels, sample_weight, acc)
    store_partials(acc, out)
    return changed


@parallel_kernel
def _hamerly_groups(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers,
    center_sq_norms,
    state,
    labels,
    key,
    lower_key,
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
            centers,
            center_sq_norms,
            state,
            labels,
            key,
            lower_key,
            g_start,
            g_stop,
            group_partials[g],
        )


@kernel
def hamerly_block(
    X,
    tiles,
    fill_tiles,
    sample_weight,
    centers,
    center_sq_norms,
    state,
    labels,
    key,
    lower_key,
    group_partials,
    group_changed,
):
    """Hamerly's labels and partials for a block of rows: Lloyd's, skipping rows the bounds decide.

    Arguments as ``lloyd.assign_labels`` (the per-block entry; see
    ``_solvers.steps``), plus the two below; returns nothing (the labels
    changed are in ``group_changed``).

    state : from ``new_state``, INOUT; the caller records the iteration's
        centre shifts in it (``record_drift``) once it has the new centres
    key, lower_key : (n_samples,) float64 INOUT, the rows' bounds (see the
        module docstring); anything before the first iteration
    """
    half_separations(centers, state[HALF_SEP])
    _hamerly_groups(
        X,
        tiles,
        fill_tiles,
        sample_weight,
        padded_centers(centers, X.dtype),
        center_sq_norms,
        state,
        labels,
        key,
        lower_key,
        group_partials,
        group_changed,
    )
    state[SCALARS, FIRST] = 0.0


@kernel
def record_drift(old_centers, new_centers, state):
    """Add the iteration's centre shifts to the drifts.

    The drift grows by the largest shift; each centre's own drift by its
    shift, its ``T`` by both. Sums are rounded up (``ROUND_UP``): a drift must
    never fall short of the true sum of shifts. Returns the shifts.
    """
    scalars, center_drift, own_drift = state[SCALARS], state[CENTER_DRIFT], state[OWN_DRIFT]
    shifts = np.empty(old_centers.shape[0])
    largest = center_shifts(old_centers, new_centers, shifts)
    scalars[DRIFT] = (scalars[DRIFT] + largest) * ROUND_UP
    for j in range(shifts.shape[0]):
        center_drift[j] = (center_drift[j] + (shifts[j] + largest)) * ROUND_UP
        own_drift[j] = (own_drift[j] + shifts[j]) * ROUND_UP
    return shifts
