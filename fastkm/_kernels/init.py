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
    tile_center_scores,
    wide_dots,
)


@kernel
def _find_cumulative(mass, chunk_mass, target):
    """First index where the running sum of ``mass`` reaches ``target``.

    ``chunk_mass`` holds the sum of each CHUNK of ``mass`` so whole chunks are
    skipped. Like ``np.searchsorted(np.cumsum(mass), target)`` clipped to the
    last index.
    """
    n = mass.shape[0]
    running = 0.0
    for c in range(chunk_mass.shape[0]):
        if running + chunk_mass[c] >= target:
            for i in range(c * CHUNK, n):
                running += mass[i]
                if running >= target:
                    return i
            return n - 1
        running += chunk_mass[c]
    # The target lies beyond the total (rounding): the last index.
    return n - 1


@kernel_for_types
def _chunk_scores(X, tiles, fill, c, cand, cand_sq_norms, n_cand, scratch, dots, scores):
    """Scores ``||cand||^2 - 2 x.cand`` of CHUNK ``c``'s rows (kernels only).

    X : dense (n_samples, n_features), or a CSR tuple (see ``rows``)
    cand : the candidates as ``_prepared`` makes them for X's form
    scratch, dots : from ``_scratch`` and ``tiles.new_scores``
    scores : (>= n_cand, CHUNK) float64 OUT, ``scores[t, i]`` for candidate
        ``t`` and the chunk's ``i``-th row
    Returns the number of rows in the chunk. With ``fill`` (dense only), the
    chunk's tile is stored in ``tiles`` on the way.
    """
    if not isinstance(X, types.Array):

        def csr_scores(X, tiles, fill, c, cand, cand_sq_norms, n_cand, scratch, dots, scores):
            start = c * CHUNK
            n_rows = min(CHUNK, rows.n_rows(X) - start)
            row_dot = np.empty(n_cand)
            for i in range(n_rows):
                sparse.row_dots(X, start + i, cand, row_dot)
                for t in range(n_cand):
                    scores[t, i] = cand_sq_norms[t] - 2.0 * row_dot[t]
            return n_rows

        return csr_scores

    def tile_scores(X, tiles, fill, c, cand, cand_sq_norms, n_cand, scratch, dots, scores):
        start = c * CHUNK
        n_rows = min(CHUNK, X.shape[0] - start)
        tile = chunk_tile(X, tiles, fill, c, start, start + n_rows, scratch)[0]
        minus2 = -2.0
        # Wide rows: four candidates per sweep (the bits of one at a time).
        t = np.int64(0)
        while tile.shape[0] > FEATURE_BLOCK and t + 4 <= n_cand:
            wide_dots(tile, n_rows, cand, (t, t + 1, t + 2, t + 3), dots)
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
def _add_potential(scores, n_rows, x_sq_norms, closest, sample_weight, start, kept):
    """Weighted sum over the rows of min(closest, the squared distance a score gives).

    kept : (n_samples,) OUT, each row's min(closest, d); or shape (0,)
    """
    keep = kept.shape[0] > 0
    pot = 0.0
    for i in range(n_rows):
        d = max(scores[i] + x_sq_norms[start + i], 0.0)
        d = min(d, closest[start + i])
        if keep:
            kept[start + i] = d
        pot += d * sample_weight[start + i]
    return pot


@kernel
def _group_potentials(
    X, tiles, x_sq_norms, sample_weight, closest, cand, cand_sq_norms, c_start, c_stop, kept, out
):
    """For each candidate, the weighted sum of min(closest, d(x, cand)) over rows.

    Rows of CHUNKs ``c_start:c_stop``; out : (n_candidates,) OUT; kept :
    (n_candidates, n_samples) OUT, the terms min(closest, d), unless its
    shape is (0, 0).
    """
    n_cand = out.shape[0]
    scratch = _scratch(X, tiles)
    dots = new_scores(closest.dtype)
    scores = np.empty((n_cand, CHUNK), dtype=np.float64)
    # A run-time False: a literal would compile _chunk_scores a second time.
    never = c_start < 0
    for t in range(n_cand):
        out[t] = 0.0
    no_row = np.empty(0)
    for chunk in range(c_start, c_stop):
        start = chunk * CHUNK
        n_rows = _chunk_scores(X, tiles, never, chunk, cand, cand_sq_norms, n_cand, scratch, dots, scores)
        for t in range(n_cand):
            kept_t = kept[t] if kept.shape[0] > 0 else no_row
            out[t] += _add_potential(scores[t], n_rows, x_sq_norms, closest, sample_weight, start, kept_t)


@kernel
def _chunk_add_center(
    X, tiles, fill, x_sq_norms, sample_weight, center, center_sq_norm, closest, mass, kept, kept_row, c
):
    """Lower ``closest`` for the rows of CHUNK ``c`` to their distance to the centre.

    center : the one centre, prepared (see ``_prepared``)
    kept, kept_row : if ``kept_row >= 0``, ``kept[kept_row]`` holds the
        rows' min(closest, d) as the centre's potential pass kept them
        (see ``_group_potentials``): taken, and X is not read
    Also sets their ``mass = sample_weight * closest``; returns the total mass.
    """
    start = c * CHUNK
    n_rows = min(CHUNK, rows.n_rows(X) - start)
    scores = np.empty((1, CHUNK), dtype=np.float64)
    if kept_row < 0:
        n_rows = _chunk_scores(
            X,
            tiles,
            fill,
            c,
            center,
            center_sq_norm,
            1,
            _scratch(X, tiles),
            new_scores(closest.dtype),
            scores,
        )
    total = 0.0
    for i in range(n_rows):
        if kept_row < 0:
            d = min(max(scores[0, i] + x_sq_norms[start + i], 0.0), closest[start + i])
        else:
            d = kept[kept_row, start + i]
        closest[start + i] = d
        m = d * sample_weight[start + i]
        mass[start + i] = m
        total += m
    return total


@parallel_kernel
def _seeding_pass(
    X,
    tiles,
    fill,
    x_sq_norms,
    sample_weight,
    closest,
    mass,
    cand,
    cand_sq_norms,
    add_center,
    kept,
    kept_row,
    out,
):
    """The parallel pass of a k-means++ step, in one of two modes.

    One kernel for both keeps compilation short (numba compiles each parallel
    kernel at length).

    ``add_center=False``: per group of CHUNKs and candidate, the weighted sum
    of ``min(closest, d(x, cand))``; out : (n_groups, n_candidates) OUT; and
    these terms in ``kept`` (n_candidates, n_samples) OUT, unless its shape
    is (0, 0).

    ``add_center=True``: lower ``closest`` to the distance to ``cand[0]`` and
    set ``mass = sample_weight * closest``; out : (n_chunks, 1) OUT, the mass
    of each CHUNK of rows. If ``kept_row >= 0``, the new ``closest`` is
    ``kept[kept_row]``, as that candidate's potential pass kept it (X is not
    read). With ``fill``, X's tiles are stored on the way.

    tiles : (n_chunks, width, >= CHUNK) float64 INOUT, X's tiles kept across
        passes, or shape (0, 0, 0) to load them in every pass
    closest : (n_samples,) INOUT, squared distance to the nearest chosen centre
    mass : (n_samples,) OUT
    """
    n_chunks = -(-rows.n_rows(X) // CHUNK)
    n_tasks = out.shape[0]
    for task in prange(n_tasks):
        # The prange index is typed uint64 in one of numba's passes and int64
        # in another; a fixed type compiles each helper once, not twice.
        t = np.int64(task)
        if add_center:
            out[t, 0] = _chunk_add_center(
                X,
                tiles,
                fill,
                x_sq_norms,
                sample_weight,
                cand,
                cand_sq_norms,
                closest,
                mass,
                kept,
                kept_row,
                t,
            )
        else:
            # Groups of whole CHUNKs, near-equal in number.
            c_start = t * n_chunks // n_tasks
            c_stop = (t + 1) * n_chunks // n_tasks
            _group_potentials(
                X,
                tiles,
                x_sq_norms,
                sample_weight,
                closest,
                cand,
                cand_sq_norms,
                c_start,
                c_stop,
                kept,
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
    mass,
    chunk_mass_out,
    potential,
    kept,
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

    X : (n_samples, n_features) IN
    tiles : (n_chunks, width, >= CHUNK) float64 scratch for X in tiles (see
        ``tiles.tile_stack``), filled by the first pass and read by the
        others; or shape (0, 0, 0) to transpose X in every pass
    x_sq_norms : (n_samples,) float64 IN, also the candidates' norms
    sample_weight : (n_samples,) float64 IN
    uniforms : (n_clusters - 1, n_local_trials) float64 IN, U[0, 1) draws
    n_groups : int, number of row groups for the parallel potential sums
    closest : (n_samples,) float64 INOUT, squared distance to the nearest centre
    mass : (n_samples,) float64 INOUT, ``sample_weight * closest``
    chunk_mass_out : (n_chunks, 1) float64 INOUT, the mass of each CHUNK
    potential : (1,) float64 INOUT, the total mass
    kept : (n_local_trials, n_samples) float64 INOUT, the last step's
        candidates' terms min(closest, d), kept by their potentials' pass so
        that the chosen one's become ``closest`` without reading X again; or
        shape (0, 0) (memory over budget) to compute them from X
    centers : (n_clusters, n_features) INOUT
    indices : (n_clusters,) int64 INOUT, the row of X chosen for each centre
    candidates : (n_local_trials,) int64 OUT, the last step's candidate rows
    forced : int, if >= 0 the candidate taken at step ``k_start`` (the caller's
        ruling on a tie), with the potential ``forced_pot``
    tie_rtol : float; a step stops before choosing when another candidate, a
        different point, has a potential within ``tie_rtol`` (relative) of the
        best's. Negative: never stop. Copies of one point are not ranked:
        either gives the same centre, only ``indices`` can differ (and
        stopping at every step would be costly on data made of copies).
    """
    n_samples, n_features = rows.n_rows(X), rows.n_cols(X)
    n_trials = uniforms.shape[1]
    n_chunks = chunk_mass_out.shape[0]
    chunk_mass = chunk_mass_out[:, 0]
    group_pots = np.empty((n_groups, n_trials))
    # float64 given as a dtype value (closest.dtype), not the np.float64 class:
    # the helpers are then compiled once for Lloyd's float64 calls and these.
    # Run-time booleans: literal True/False would compile _seeding_pass twice.
    add_center = n_samples > 0
    sum_potentials = not add_center
    # The candidates' norms are those of x_sq_norms, as scikit-learn's are
    # the same einsum over the same rows: tied distances stay tied.
    cand_sq_norms = np.empty(n_trials)
    points = np.empty((n_trials, n_features))

    if k_start == 0:
        first = indices[0]
        candidates[0] = first
        cand_sq_norms[0] = x_sq_norms[first]
        for i in range(n_samples):
            closest[i] = np.inf
        _seeding_pass(
            X,
            tiles,
            add_center,
            x_sq_norms,
            sample_weight,
            closest,
            mass,
            _prepared(X, _candidate_rows(X, candidates[:1], points[:1])),
            cand_sq_norms[:1],
            add_center,
            kept,
            -1,
            chunk_mass_out,
        )
        for f in range(n_features):
            centers[0, f] = points[0, f]
        total = 0.0
        for c in range(n_chunks):
            total += chunk_mass[c]
        potential[0] = total
        k_start = 1

    for k in range(k_start, k_stop):
        for t in range(n_trials):
            candidates[t] = _find_cumulative(mass, chunk_mass, uniforms[k - 1, t] * potential[0])
            cand_sq_norms[t] = x_sq_norms[candidates[t]]
        _candidate_rows(X, candidates, points)
        prepared = _prepared(X, points)
        if k == k_start and forced >= 0:
            best = forced
            best_pot = forced_pot
        else:
            _seeding_pass(
                X,
                tiles,
                sum_potentials,
                x_sq_norms,
                sample_weight,
                closest,
                mass,
                prepared,
                cand_sq_norms,
                sum_potentials,
                kept,
                -1,
                group_pots,
            )
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
                    if near and _rows_differ(points, t, best):
                        return k
        _seeding_pass(
            X,
            tiles,
            sum_potentials,
            x_sq_norms,
            sample_weight,
            closest,
            mass,
            _prepared(X, points[best : best + 1]),
            cand_sq_norms[best : best + 1],
            add_center,
            kept,
            best if kept.shape[0] > 0 else -1,
            chunk_mass_out,
        )
        potential[0] = best_pot
        for f in range(n_features):
            centers[k, f] = points[best, f]
        indices[k] = candidates[best]
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
        n_rows = _chunk_scores(X, tiles, fill, c, cand, cand_sq_norms, n_cand, scratch, dots, scores)
        start = c * CHUNK
        for t in range(n_cand):
            for i in range(n_rows):
                d = max(np.float32(scores[t, i] + x_sq_norms[start + i]), np.float32(0.0))
                out[t, start + i] = min(closest[start + i], d)
