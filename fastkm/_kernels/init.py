"""Greedy k-means++ seeding, the whole loop in one compiled call.

The random numbers are drawn by the caller (from the same RandomState calls
scikit-learn makes) and passed in, so the seeding follows scikit-learn's random
stream. Distances and potentials are computed in float64 whatever the data
type (scikit-learn keeps float32 data's in float32), so on float32 data a
near-tie between candidates can go the other way.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, FEATURE_BLOCK, fma, kernel, parallel_kernel
from .tiles import (
    chunk_tile,
    new_scores,
    new_tile,
    padded_centers,
    squared_norms,
    tile_center_scores,
    wide_dots4,
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


@kernel
def _chunk_tile(X, tiles, fill, c, scratch):
    """Rows of CHUNK number ``c`` as a float64 tile (see ``tiles.chunk_tile``)."""
    start = c * CHUNK
    return chunk_tile(X, tiles, fill, c, start, min(start + CHUNK, X.shape[0]), scratch)[0]


@kernel
def _add_potential(scores, n_rows, x_sq_norms, closest, sample_weight, start):
    """Weighted sum over the rows of min(closest, the squared distance a score gives)."""
    pot = 0.0
    for i in range(n_rows):
        d = max(scores[i] + x_sq_norms[start + i], 0.0)
        d = min(d, closest[start + i])
        pot += d * sample_weight[start + i]
    return pot


@kernel
def _group_potentials(
    X, tiles, x_sq_norms, sample_weight, closest, cand, cand_sq_norms, c_start, c_stop, out
):
    """For each candidate, the weighted sum of min(closest, d(x, cand)) over rows.

    Rows of CHUNKs ``c_start:c_stop``; out : (n_candidates,) OUT. Wide rows
    are scored against four candidates per sweep (the bits of one at a time).
    """
    n_cand = out.shape[0]
    scratch = new_tile(X.shape[1] if tiles.shape[0] == 0 else 0, closest.dtype)
    dots = new_scores(closest.dtype)
    scores = np.empty(CHUNK, dtype=np.float64)
    minus2 = -2.0
    # A run-time False: a literal would compile _chunk_tile a second time.
    never = c_start < 0
    for c in range(n_cand):
        out[c] = 0.0
    for chunk in range(c_start, c_stop):
        start = chunk * CHUNK
        n_rows = min(CHUNK, X.shape[0] - start)
        tile = _chunk_tile(X, tiles, never, chunk, scratch)
        c = np.int64(0)
        while tile.shape[0] > FEATURE_BLOCK and c + 4 <= n_cand:
            wide_dots4(tile, n_rows, cand, c, dots)
            for q in range(4):
                norm = cand_sq_norms[c + q]
                for i in range(n_rows):
                    scores[i] = fma(minus2, dots[q, i], norm)
                out[c + q] += _add_potential(scores, n_rows, x_sq_norms, closest, sample_weight, start)
            c += 4
        for cr in range(c, n_cand):
            tile_center_scores(tile, n_rows, cand, cand_sq_norms, cr, scores)
            out[cr] += _add_potential(scores, n_rows, x_sq_norms, closest, sample_weight, start)


@kernel
def _chunk_add_center(X, tiles, fill, x_sq_norms, sample_weight, center, center_sq_norm, closest, mass, c):
    """Lower ``closest`` for the rows of CHUNK ``c`` to their distance to ``center[0]``.

    Also sets their ``mass = sample_weight * closest``; returns the total mass.
    """
    scratch = new_tile(X.shape[1] if tiles.shape[0] == 0 else 0, closest.dtype)
    scores = np.empty(CHUNK, dtype=np.float64)
    start = c * CHUNK
    n_rows = min(CHUNK, X.shape[0] - start)
    tile = _chunk_tile(X, tiles, fill, c, scratch)
    tile_center_scores(tile, n_rows, center, center_sq_norm, np.int64(0), scores)
    total = 0.0
    for i in range(n_rows):
        d = max(scores[i] + x_sq_norms[start + i], 0.0)
        d = min(d, closest[start + i])
        closest[start + i] = d
        m = d * sample_weight[start + i]
        mass[start + i] = m
        total += m
    return total


@parallel_kernel
def _seeding_pass(
    X, tiles, fill, x_sq_norms, sample_weight, closest, mass, cand, cand_sq_norms, add_center, out
):
    """The parallel pass of a k-means++ step, in one of two modes.

    One kernel for both keeps compilation short (numba compiles each parallel
    kernel at length).

    ``add_center=False``: per group of CHUNKs and candidate, the weighted sum
    of ``min(closest, d(x, cand))``; out : (n_groups, n_candidates) OUT.

    ``add_center=True``: lower ``closest`` to the distance to ``cand[0]`` and
    set ``mass = sample_weight * closest``; out : (n_chunks, 1) OUT, the mass
    of each CHUNK of rows. With ``fill``, X's tiles are stored on the way.

    tiles : (n_chunks, width, >= CHUNK) float64 INOUT, X's tiles kept across
        passes, or shape (0, 0, 0) to load them in every pass
    closest : (n_samples,) INOUT, squared distance to the nearest chosen centre
    mass : (n_samples,) OUT
    """
    n_chunks = -(-X.shape[0] // CHUNK)
    n_tasks = out.shape[0]
    for task in prange(n_tasks):
        # The prange index is typed uint64 in one of numba's passes and int64
        # in another; a fixed type compiles each helper once, not twice.
        t = np.int64(task)
        if add_center:
            out[t, 0] = _chunk_add_center(
                X, tiles, fill, x_sq_norms, sample_weight, cand, cand_sq_norms, closest, mass, t
            )
        else:
            # Groups of whole CHUNKs, near-equal in number.
            c_start = t * n_chunks // n_tasks
            c_stop = (t + 1) * n_chunks // n_tasks
            _group_potentials(
                X, tiles, x_sq_norms, sample_weight, closest, cand, cand_sq_norms, c_start, c_stop, out[t]
            )


@kernel
def kmeans_plusplus(X, tiles, x_sq_norms, sample_weight, first_index, uniforms, n_groups, centers, indices):
    """Greedy k-means++: each new centre is the best of several sampled candidates.

    X : (n_samples, n_features) IN
    tiles : (n_chunks, width, >= CHUNK) float64 scratch for X in tiles (see
        ``tiles.tile_stack``), filled by the first pass and read by the
        others; or shape (0, 0, 0) to transpose X in every pass
    x_sq_norms : (n_samples,) float64 IN
    sample_weight : (n_samples,) float64 IN
    first_index : int, the first centre (drawn by the caller)
    uniforms : (n_clusters - 1, n_local_trials) float64 IN, U[0, 1) draws
    n_groups : int, number of row groups for the parallel potential sums
    centers : (n_clusters, n_features) OUT
    indices : (n_clusters,) int64 OUT, row of X chosen for each centre
    """
    n_samples, n_features = X.shape
    n_clusters = centers.shape[0]
    n_trials = uniforms.shape[1]
    n_chunks = -(-n_samples // CHUNK)
    closest = np.full(n_samples, np.inf)
    mass = np.empty(n_samples)
    chunk_mass_out = np.empty((n_chunks, 1))
    chunk_mass = chunk_mass_out[:, 0]
    group_pots = np.empty((n_groups, n_trials))
    candidates = np.empty(n_trials, dtype=np.int64)

    # float64 given as a dtype value (closest.dtype), not the np.float64 class:
    # the helpers are then compiled once for Lloyd's float64 calls and these.
    # Run-time booleans: literal True/False would compile _seeding_pass twice.
    add_center = n_samples > 0
    sum_potentials = not add_center
    first = X[first_index : first_index + 1]
    _seeding_pass(
        X,
        tiles,
        add_center,
        x_sq_norms,
        sample_weight,
        closest,
        mass,
        padded_centers(first, closest.dtype),
        squared_norms(first, closest.dtype),
        add_center,
        chunk_mass_out,
    )
    for f in range(n_features):
        centers[0, f] = X[first_index, f]
    indices[0] = first_index
    potential = 0.0
    for c in range(n_chunks):
        potential += chunk_mass[c]

    for k in range(1, n_clusters):
        for t in range(n_trials):
            candidates[t] = _find_cumulative(mass, chunk_mass, uniforms[k - 1, t] * potential)
        cand_points = np.empty((n_trials, n_features), dtype=X.dtype)
        for t in range(n_trials):
            for f in range(n_features):
                cand_points[t, f] = X[candidates[t], f]
        padded_cand = padded_centers(cand_points, closest.dtype)
        cand_sq_norms = squared_norms(cand_points, closest.dtype)
        _seeding_pass(
            X,
            tiles,
            sum_potentials,
            x_sq_norms,
            sample_weight,
            closest,
            mass,
            padded_cand,
            cand_sq_norms,
            sum_potentials,
            group_pots,
        )
        best = 0
        best_pot = np.inf
        for t in range(n_trials):
            pot = 0.0
            for g in range(n_groups):
                pot += group_pots[g, t]
            if pot < best_pot:
                best_pot = pot
                best = t
        _seeding_pass(
            X,
            tiles,
            sum_potentials,
            x_sq_norms,
            sample_weight,
            closest,
            mass,
            padded_cand[best : best + 1],
            cand_sq_norms[best : best + 1],
            add_center,
            chunk_mass_out,
        )
        potential = best_pot
        for f in range(n_features):
            centers[k, f] = cand_points[best, f]
        indices[k] = candidates[best]
