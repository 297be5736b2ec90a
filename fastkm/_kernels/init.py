"""Greedy k-means++ seeding, the loop over centres in compiled code (a slice of centres a call).

The random numbers are drawn by the caller (from the same RandomState calls
scikit-learn makes) and passed in, so the seeding follows scikit-learn's random
stream. The squared distances follow scikit-learn's formula with the same
norms, each dot product a sequential FMA chain: the bits of a BLAS GEMM whose
kernel accumulates that way (OpenBLAS does on this machine for up to 384
features, except on the smallest problems, where it uses other kernels). The
candidates' potentials are sums in another order than scikit-learn's GEMV, so
two candidates whose potentials differ by rounding alone may be ranked the
other way round. The loop stops at such a near-tie for the caller to rank them
with scikit-learn's own arithmetic (see ``_solvers.kmeans_plusplus``).

Dense float32 data is seeded step by step from Python instead
(``_solvers.seeding._kmeans_plusplus_float32``): ``float32_candidate_distances``
gives a step's distances rounded to float32 as scikit-learn's are, and
scikit-learn's own numpy calls do the float32 sums, draws and ranking.
"""

import numpy as np
from numba import prange, types

from . import rows, sparse
from ._jit import CHUNK, FEATURE_BLOCK, fma, kernel, kernel_for_types, parallel_kernel
from .tiles import (
    chunk_tile,
    new_scores,
    new_tile,
    padded_centers,
    prefetch_offset,
    tile_center_scores,
    wide_dots,
)


@kernel
def _term(score, x_sq_norm, closest):
    """A row's term for a centre: min(closest, its squared distance), the distance from a score.

    The one expression behind a candidate's potential, a draw's masses and
    ``closest`` lowered to a chosen centre: all three agree bit for bit.
    """
    return min(max(score + x_sq_norm, 0.0), closest)


@kernel
def _chunk_masses(X, tiles, x_sq_norms, sample_weight, closest, c, pending, fold, kept, buffers, out):
    """The masses ``sample_weight * closest`` of CHUNK ``c``'s rows into ``out``; returns their number.

    With ``fold``, ``closest`` is first lowered (here, not in place) to the
    rows' distances to the pending centre, as the next pass will lower it:
    its terms ``kept[pending[2]]`` if kept, else computed from its
    (prepared row, squared norm) ``pending[:2]``; see ``kmeans_plusplus``.
    buffers : ``_draw_buffers``
    """
    start = c * CHUNK
    n_rows = min(CHUNK, rows.n_rows(X) - start)
    # The chunk's rows as views: indexed from 0, the loops vectorise (an
    # index ``start + i`` may be negative to numba, and gathers).
    stop = start + n_rows
    weight, near = sample_weight[start:stop], closest[start:stop]
    if fold and kept.shape[0] > 0:
        terms = kept[pending[2], start:stop]
        for i in range(n_rows):
            out[i] = terms[i] * weight[i]
    elif fold:
        scratch, dots, scores = buffers
        # A run-time False (fill): a literal would compile _chunk_scores again.
        never = c < 0
        _chunk_scores(X, tiles, never, c, never, pending[0], pending[1], 1, scratch, dots, scores)
        xx = x_sq_norms[start:stop]
        for i in range(n_rows):
            out[i] = _term(scores[0, i], xx[i], near[i]) * weight[i]
    else:
        for i in range(n_rows):
            out[i] = near[i] * weight[i]
    return n_rows


@kernel
def _draw(
    X, tiles, x_sq_norms, sample_weight, closest, chunk_mass, target, pending, fold, kept, buffers, masses
):
    """First row where the running sum of the rows' masses reaches ``target``.

    The masses are ``sample_weight * closest`` (``_chunk_masses``; with
    ``fold``, the closest distances lowered to the pending centre's), and
    ``chunk_mass`` holds each CHUNK's sum, so whole chunks are skipped. Like
    ``np.searchsorted(np.cumsum(masses), target)`` clipped to the last row.
    masses : (CHUNK,) scratch
    """
    n = rows.n_rows(X)
    n_chunks = chunk_mass.shape[0]
    running = 0.0
    for c in range(n_chunks):
        if running + chunk_mass[c] >= target:
            # Row by row from here (past this chunk only if rounding says so).
            for c_row in range(c, n_chunks):
                n_rows = _chunk_masses(
                    X, tiles, x_sq_norms, sample_weight, closest, c_row, pending, fold, kept, buffers, masses
                )
                for i in range(n_rows):
                    running += masses[i]
                    if running >= target:
                        return c_row * CHUNK + i
            return n - 1
        running += chunk_mass[c]
    # The target lies beyond the total (rounding): the last index.
    return n - 1


@kernel
def _draw_buffers(X, tiles, closest):
    """``_chunk_scores``'s buffers for one candidate, made once a kernel call."""
    return _scratch(X, tiles), new_scores(closest.dtype), np.empty((1, CHUNK))


@kernel_for_types
def _chunk_scores(X, tiles, fill, c, more, cand, cand_sq_norms, n_cand, scratch, dots, scores):
    """Scores ``||cand||^2 - 2 x.cand`` of CHUNK ``c``'s rows (kernels only).

    X : dense (n_samples, n_features), or a CSR tuple (see ``rows``)
    more : bool, CHUNK ``c + 1`` is scored next (its kept tile is prefetched:
        ``tiles.prefetch_offset``); a run-time value, as ``fill``
    cand : the candidates as ``_prepared`` makes them for X's form
    scratch, dots : from ``_scratch`` and ``tiles.new_scores``
    scores : (>= n_cand, CHUNK) float64 OUT, ``scores[t, i]`` for candidate
        ``t`` and the chunk's ``i``-th row
    Returns the number of rows in the chunk. With ``fill`` (dense only), the
    chunk's tile is stored in ``tiles`` on the way.
    """
    if not isinstance(X, types.Array):

        def csr_scores(X, tiles, fill, c, more, cand, cand_sq_norms, n_cand, scratch, dots, scores):
            start = c * CHUNK
            n_rows = min(CHUNK, rows.n_rows(X) - start)
            row_dot = np.empty(n_cand)
            for i in range(n_rows):
                sparse.row_dots(X, start + i, cand, row_dot)
                for t in range(n_cand):
                    scores[t, i] = cand_sq_norms[t] - 2.0 * row_dot[t]
            return n_rows

        return csr_scores

    def tile_scores(X, tiles, fill, c, more, cand, cand_sq_norms, n_cand, scratch, dots, scores):
        start = c * CHUNK
        n_rows = min(CHUNK, X.shape[0] - start)
        tile = chunk_tile(X, tiles, fill, c, start, start + n_rows, scratch)[0]
        minus2 = -2.0
        # Wide rows: four candidates per sweep (the bits of one at a time);
        # the first sweep fetches the next kept tile.
        ahead = prefetch_offset(tiles, n_cand, fill, more)
        t = np.int64(0)
        while tile.shape[0] > FEATURE_BLOCK and t + 4 <= n_cand:
            wide_dots(tile, n_rows, cand, (t, t + 1, t + 2, t + 3), dots, ahead)
            ahead = np.int64(0)
            for q in range(4):
                norm = cand_sq_norms[t + q]
                for i in range(n_rows):
                    scores[t + q, i] = fma(minus2, dots[q, i], norm)
            t += 4
        for tr in range(t, n_cand):
            tile_center_scores(tile, n_rows, cand, cand_sq_norms, tr, scores[tr])
        return n_rows

    return tile_scores


@kernel_for_types
def _prepared(X, points):
    """Candidate rows (float64, one per row) in the form ``_chunk_scores`` reads for X."""
    if isinstance(X, types.Array):
        return lambda X, points: padded_centers(points, points.dtype)
    return lambda X, points: sparse.transposed(points, points.dtype)


@kernel_for_types
def _scratch(X, tiles):
    """A scratch tile for ``_chunk_scores``: X's width when X is dense and not kept in tiles."""
    if isinstance(X, types.Array):
        return lambda X, tiles: new_tile(X.shape[1] if tiles.shape[0] == 0 else 0, tiles.dtype)
    return lambda X, tiles: new_tile(0, tiles.dtype)


@kernel
def _add_potential(scores, x_sq_norms, closest, sample_weight, kept):
    """Weighted sum over a chunk's rows of min(closest, the squared distance a score gives).

    x_sq_norms, closest, sample_weight : the chunk's rows (views)
    kept : the chunk's rows OUT, each one's min(closest, d); or shape (0,)
    """
    keep = kept.shape[0] > 0
    pot = 0.0
    for i in range(closest.shape[0]):
        d = _term(scores[i], x_sq_norms[i], closest[i])
        if keep:
            kept[i] = d
        pot += d * sample_weight[i]
    return pot


@kernel
def _group_potentials(
    X, tiles, fill, x_sq_norms, sample_weight, closest, cand, cand_sq_norms, fold, kept, pending_t,
    c_start, c_stop, chunk_pots, out,
):  # fmt: skip
    """One group's share of a seeding pass: the rows of CHUNKs ``c_start:c_stop``.

    With ``fold``, each chunk's ``closest`` is first lowered to the last
    chosen centre's distances (stored): its terms ``kept[pending_t]`` if
    ``kept`` is not empty, else ``cand[0]`` is that centre. Then for each
    (further) candidate ``t``, the weighted sum of ``min(closest, d(x,
    cand_t))`` over the chunk's rows goes to ``chunk_pots[t', chunk]`` and is
    added to ``out[t']`` in chunk order (``t'`` counts the candidates after
    any folded centre), and the terms to ``kept[t']`` if kept. With ``fill``,
    X's tiles are stored on the way.
    """
    n_cand = cand_sq_norms.shape[0]
    keep = kept.shape[0] > 0
    first = 1 if fold and not keep else 0
    scratch = _scratch(X, tiles)
    dots = new_scores(closest.dtype)
    scores = np.empty((n_cand, CHUNK), dtype=np.float64)
    for t in range(n_cand - first):
        out[t] = 0.0
    no_row = np.empty(0)
    for chunk in range(c_start, c_stop):
        start = chunk * CHUNK
        more = chunk + 1 < c_stop
        candidates = cand, cand_sq_norms, n_cand
        n_rows = _chunk_scores(X, tiles, fill, chunk, more, *candidates, scratch, dots, scores)
        # The chunk's rows as views (see _chunk_masses).
        stop = start + n_rows
        xx, near, weight = x_sq_norms[start:stop], closest[start:stop], sample_weight[start:stop]
        if fold and keep:
            # Read before this pass's terms overwrite them (rows of this chunk only).
            pending_terms = kept[pending_t, start:stop]
            for i in range(n_rows):
                near[i] = pending_terms[i]
        elif fold:
            for i in range(n_rows):
                near[i] = _term(scores[0, i], xx[i], near[i])
        for t in range(first, n_cand):
            kept_t = kept[t - first, start:stop] if keep else no_row
            pot = _add_potential(scores[t], xx, near, weight, kept_t)
            chunk_pots[t - first, chunk] = pot
            out[t - first] += pot


@parallel_kernel
def _seeding_pass(
    X, tiles, fill, x_sq_norms, sample_weight, closest, cand, cand_sq_norms, fold, kept, pending_t,
    chunk_pots, out,
):  # fmt: skip
    """A k-means++ step's one pass over X, its groups of CHUNKs in parallel (``_group_potentials``).

    Lowers ``closest`` to the last chosen centre's distances (``fold``) and
    sums the candidates' potentials: per chunk in ``chunk_pots``
    (n_candidates, n_chunks) OUT, per group in ``out`` (n_groups,
    n_candidates) OUT. The chosen candidate's chunk sums are the masses the
    next step draws from, and the next pass lowers ``closest`` to it: one
    pass a step. Small X keeps the candidates' terms (``kept``, or shape
    (0, 0)), which that pass and the draws read instead of scoring the
    chosen one again.

    tiles : (n_chunks, width, >= CHUNK) float64 INOUT, X's tiles kept across
        passes (filled by the pass with ``fill``), or shape (0, 0, 0) to load
        them in every pass
    closest : (n_samples,) INOUT, squared distance to the nearest chosen centre
    """
    n_chunks = -(-rows.n_rows(X) // CHUNK)
    n_tasks = out.shape[0]
    for task in prange(n_tasks):
        # The prange index is typed uint64 in one of numba's passes and int64
        # in another; a fixed type compiles each helper once, not twice.
        t = np.int64(task)
        # Groups of whole CHUNKs, near-equal in number.
        c_start = t * n_chunks // n_tasks
        c_stop = (t + 1) * n_chunks // n_tasks
        _group_potentials(
            X,
            tiles,
            fill,
            x_sq_norms,
            sample_weight,
            closest,
            cand,
            cand_sq_norms,
            fold,
            kept,
            pending_t,
            c_start,
            c_stop,
            chunk_pots,
            out[t],
        )


@kernel
def _rows_differ(points, a, b):
    """Whether candidate rows ``a`` and ``b`` are different points."""
    for f in range(points.shape[1]):
        if points[a, f] != points[b, f]:
            return True
    return False


@kernel
def _candidate_rows(X, candidates, points):
    """Copy the candidate rows of X into ``points`` (float64, zeros included); return it."""
    for t in range(candidates.shape[0]):
        rows.copy_row(X, candidates[t], points[t])
    return points


@kernel
def kmeans_plusplus(
    X,
    tiles,
    x_sq_norms,
    sample_weight,
    uniforms,
    n_groups,
    closest,
    pending,
    kept,
    chunk_pots,
    chunk_mass_out,
    potential,
    centers,
    indices,
    candidates,
    k_start,
    k_stop,
    forced,
    forced_pot,
    tie_rtol,
):
    """Greedy k-means++: each new centre is the best of several sampled candidates.

    Runs the steps ``k_start .. k_stop - 1`` and returns the number of centres
    chosen: ``k_stop``, or fewer if it stopped at a near-tie. The caller then
    settles that tie and calls again from the step it stopped at; every array
    below carries the seeding's state from call to call. Step 0 places the
    first centre, ``indices[0]``, drawn by the caller.

    A step is one pass over X (``_seeding_pass``): it lowers ``closest`` to
    the distances to the centre the step before chose (the *pending* one),
    then sums the candidates' potentials, per chunk of rows too. The chosen
    one's chunk sums are the masses the next draws skip whole chunks by;
    within a chunk the draw lowers ``closest`` to the pending centre on the
    fly, as the pass will (``_draw``). Each value is the one a pass for the
    chosen centre alone would give (the same arithmetic on the same scores).

    X : (n_samples, n_features) IN
    tiles : (n_chunks, width, >= CHUNK) float64 scratch for X in tiles (see
        ``tiles.tile_stack``), filled by the first pass and read by the
        others; or shape (0, 0, 0) to transpose X in every pass
    x_sq_norms : (n_samples,) float64 IN, also the candidates' norms
    sample_weight : (n_samples,) float64 IN
    uniforms : (n_clusters - 1, n_local_trials) float64 IN, U[0, 1) draws
    n_groups : int, number of row groups for the parallel potential sums
    closest : (n_samples,) float64 INOUT, squared distance to the nearest
        chosen centre, the pending one aside
    pending : (2,) int64 INOUT, the pending centre (its index in ``indices``,
        or -1 for none) and the candidate it was (its row of ``kept``)
    kept : (n_local_trials, n_samples) float64 INOUT, the last pass's
        candidates' terms min(closest, d), read for the pending centre
        instead of scoring it again; or shape (0, 0) (large X: writing them
        costs more than scoring one more centre in the pass)
    chunk_pots : (n_local_trials, n_chunks) float64 INOUT, the last pass's
        candidates' potentials per CHUNK of rows
    chunk_mass_out : (n_chunks, 1) float64 INOUT, the mass of each CHUNK
        (``sample_weight * closest``, the pending centre included)
    potential : (1,) float64 INOUT, the total mass
    centers : (n_clusters, n_features) INOUT
    indices : (n_clusters,) int64 INOUT, the row of X chosen for each centre
    candidates : (n_local_trials,) int64 OUT, the last step's candidate rows
    forced : int, if >= 0 the candidate taken at step ``k_start`` (the caller's
        ruling on a tie), with the potential ``forced_pot``
    tie_rtol : float; a step stops before choosing when another candidate, a
        different point, has a potential within ``tie_rtol`` (relative) of the
        best's, with ``closest`` then holding every chosen centre. Negative:
        never stop. Copies of one point are not ranked: either gives the same
        centre, only ``indices`` can differ (and stopping at every step would
        be costly on data made of copies).
    """
    n_samples, n_features = rows.n_rows(X), rows.n_cols(X)
    n_trials = uniforms.shape[1]
    n_chunks = chunk_mass_out.shape[0]
    chunk_mass = chunk_mass_out[:, 0]
    keep = kept.shape[0] > 0
    group_pots = np.empty((n_groups, n_trials))
    # Run-time booleans: literal True/False would compile _seeding_pass twice.
    no_fill = n_samples < 0
    no_fold = no_fill
    # The candidates' norms are those of x_sq_norms, as scikit-learn's are
    # the same einsum over the same rows: tied distances stay tied. Row 0 of
    # these is the pending centre, the candidates follow.
    cand_sq_norms = np.empty(n_trials + 1)
    points = np.empty((n_trials + 1, n_features))
    pending_row = np.empty(1, dtype=np.int64)
    buffers = _draw_buffers(X, tiles, closest)
    masses = np.empty(CHUNK)
    no_centre = _prepared(X, points[:0])

    if k_start == 0:
        # The first centre's masses, as a candidate's: closest stays +inf
        # (every term is the distance) and the next pass folds it in.
        pending_row[0] = indices[0]
        cand_sq_norms[0] = x_sq_norms[indices[0]]
        for i in range(n_samples):
            closest[i] = np.inf
        _candidate_rows(X, pending_row, points[:1])
        first_pots = np.empty((n_groups, 1))
        _seeding_pass(
            X,
            tiles,
            not no_fill,
            x_sq_norms,
            sample_weight,
            closest,
            _prepared(X, points[:1]),
            cand_sq_norms[:1],
            no_fold,
            kept,
            0,
            chunk_pots,
            first_pots,
        )
        for f in range(n_features):
            centers[0, f] = points[0, f]
        total = 0.0
        for c in range(n_chunks):
            chunk_mass[c] = chunk_pots[0, c]
            total += chunk_mass[c]
        potential[0] = total
        pending[0] = 0
        pending[1] = 0
        k_start = 1

    for k in range(k_start, k_stop):
        fold = pending[0] >= 0
        if fold and not keep:
            # Scored in the draws and the pass (its terms are not kept).
            pending_row[0] = indices[pending[0]]
            cand_sq_norms[0] = x_sq_norms[pending_row[0]]
            _candidate_rows(X, pending_row, points[:1])
            pending_centre = (_prepared(X, points[:1]), cand_sq_norms[:1], pending[1])
        else:
            pending_centre = (no_centre, cand_sq_norms[:1], pending[1])
        for t in range(n_trials):
            target = uniforms[k - 1, t] * potential[0]
            candidates[t] = _draw(
                X, tiles, x_sq_norms, sample_weight, closest, chunk_mass, target, pending_centre, fold, kept,
                buffers, masses,
            )  # fmt: skip
            cand_sq_norms[1 + t] = x_sq_norms[candidates[t]]
        _candidate_rows(X, candidates, points[1:])
        if k == k_start and forced >= 0:
            # The pass that stopped at this tie folded the pending centre
            # and left these candidates' chunk sums (and terms).
            best = forced
            best_pot = forced_pot
        else:
            # The pending centre is scored in the pass unless its terms are kept.
            first = 0 if fold and not keep else 1
            _seeding_pass(
                X,
                tiles,
                no_fill,
                x_sq_norms,
                sample_weight,
                closest,
                _prepared(X, points[first:]),
                cand_sq_norms[first:],
                fold,
                kept,
                pending[1],
                chunk_pots,
                group_pots,
            )
            pending[0] = -1
            pots = np.zeros(n_trials)
            for t in range(n_trials):
                for g in range(n_groups):
                    pots[t] += group_pots[g, t]
            best = 0
            for t in range(1, n_trials):
                if pots[t] < pots[best]:
                    best = t
            best_pot = pots[best]
            # A potential of 0 is a sum of zeros, exact in any order.
            if tie_rtol >= 0 and best_pot > 0:
                for t in range(n_trials):
                    near = t != best and abs(pots[t] - best_pot) <= tie_rtol * best_pot
                    if near and _rows_differ(points, 1 + t, 1 + best):
                        return k
        for c in range(n_chunks):
            chunk_mass[c] = chunk_pots[best, c]
        potential[0] = best_pot
        for f in range(n_features):
            centers[k, f] = points[1 + best, f]
        indices[k] = candidates[best]
        pending[0] = k
        pending[1] = best
    return k_stop


@parallel_kernel
def float32_candidate_distances(X, tiles, fill, x_sq_norms, closest, points, cand_sq_norms, out):
    """One float32 k-means++ step's distances, as scikit-learn computes them on float32 X.

    ``out[t, i] = min(closest[i], float32(max(||p_t||^2 - 2 x_i.p_t + ||x_i||^2, 0)))``,
    the squared distance summed in float64 (X's rows taken in float64, the
    norms those of the float64 rows) and then rounded to float32, as
    scikit-learn's upcast distances are, and lowered to ``closest`` as its
    ``np.minimum`` does.

    X : (n_samples, n_features) float32, dense
    tiles : X's tiles in float32 (upcast as scored), or shape (0, 0, 0), as
        ``kmeans_plusplus`` takes them; filled when ``fill``
    x_sq_norms : (n_samples,) float64 IN, also the candidates' norms
    closest : (n_samples,) float32 IN
    points : (n_candidates, n_features) float64 IN, the candidate rows
    cand_sq_norms : (n_candidates,) float64 IN, their rows of ``x_sq_norms``
    out : (n_candidates, n_samples) float32 OUT
    """
    n_cand = points.shape[0]
    cand = _prepared(X, points)
    n_chunks = -(-rows.n_rows(X) // CHUNK)
    for task in prange(n_chunks):
        c = np.int64(task)
        scores = np.empty((n_cand, CHUNK), dtype=np.float64)
        scratch, dots = _scratch(X, tiles), new_scores(x_sq_norms.dtype)
        never = c < 0  # the next chunk may be another thread's
        n_rows = _chunk_scores(X, tiles, fill, c, never, cand, cand_sq_norms, n_cand, scratch, dots, scores)
        start = c * CHUNK
        # The chunk's rows as views (see _chunk_masses).
        xx, near = x_sq_norms[start : start + n_rows], closest[start : start + n_rows]
        for t in range(n_cand):
            row_out = out[t, start : start + n_rows]
            for i in range(n_rows):
                d = max(np.float32(scores[t, i] + xx[i]), np.float32(0.0))
                row_out[i] = min(near[i], d)
