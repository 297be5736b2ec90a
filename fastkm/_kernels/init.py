"""Greedy k-means++ seeding, the whole loop in one compiled call.

The random numbers are drawn by the caller (from the same RandomState calls
scikit-learn makes) and passed in, so the seeding follows scikit-learn's random
stream. Distances are computed in float64 whatever the data type, as
scikit-learn upcasts float32 there too.
"""

import numpy as np
from numba import prange

from ._jit import CHUNK, kernel, parallel_kernel
from .lloyd import group_bounds
from .tiles import load_tile, new_tile, padded_centers, squared_norms, tile_center_scores


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
def _group_potentials(X, x_sq_norms, sample_weight, closest, cand, cand_sq_norms, row_start, row_stop, out):
    """For each candidate, the weighted sum of min(closest, d(x, cand)) over rows.

    Rows ``row_start:row_stop``; out : (n_candidates,) OUT
    """
    n_features = X.shape[1]
    tile = new_tile(n_features, np.float64)
    scores = np.empty(CHUNK, dtype=np.float64)
    for c in range(out.shape[0]):
        out[c] = 0.0
    for start in range(row_start, row_stop, CHUNK):
        stop = min(start + CHUNK, row_stop)
        n_rows = stop - start
        load_tile(X, start, stop, tile)
        for c in range(out.shape[0]):
            tile_center_scores(tile, n_rows, cand, cand_sq_norms, c, scores)
            pot = 0.0
            for i in range(n_rows):
                d = max(scores[i] + x_sq_norms[start + i], 0.0)
                d = min(d, closest[start + i])
                pot += d * sample_weight[start + i]
            out[c] += pot


@kernel
def _chunk_add_center(X, x_sq_norms, sample_weight, center, center_sq_norm, closest, mass, start, stop):
    """Lower ``closest`` for rows ``start:stop`` to their distance to ``center[0]``.

    Also sets their ``mass = sample_weight * closest``; returns the total mass.
    """
    tile = new_tile(X.shape[1], np.float64)
    scores = np.empty(CHUNK, dtype=np.float64)
    n_rows = stop - start
    load_tile(X, start, stop, tile)
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
def _seeding_pass(X, x_sq_norms, sample_weight, closest, mass, cand, cand_sq_norms, add_center, out):
    """The parallel pass of a k-means++ step, in one of two modes.

    One kernel for both keeps compilation short (numba compiles each parallel
    kernel at length).

    ``add_center=False``: per group of rows and candidate, the weighted sum of
    ``min(closest, d(x, cand))``; out : (n_groups, n_candidates) OUT.

    ``add_center=True``: lower ``closest`` to the distance to ``cand[0]`` and
    set ``mass = sample_weight * closest``; out : (n_chunks, 1) OUT, the mass
    of each CHUNK of rows.

    closest : (n_samples,) INOUT, squared distance to the nearest chosen centre
    mass : (n_samples,) OUT
    """
    n_samples = X.shape[0]
    n_tasks = out.shape[0]
    for t in prange(n_tasks):
        if add_center:
            start = t * CHUNK
            stop = min(start + CHUNK, n_samples)
            out[t, 0] = _chunk_add_center(
                X, x_sq_norms, sample_weight, cand, cand_sq_norms, closest, mass, start, stop
            )
        else:
            g_start, g_stop = group_bounds(t, n_tasks, n_samples)
            _group_potentials(
                X, x_sq_norms, sample_weight, closest, cand, cand_sq_norms, g_start, g_stop, out[t]
            )


@kernel
def kmeans_plusplus(X, x_sq_norms, sample_weight, first_index, uniforms, n_groups, centers, indices):
    """Greedy k-means++: each new centre is the best of several sampled candidates.

    X : (n_samples, n_features) IN
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

    # Run-time booleans: literal True/False would compile _seeding_pass twice.
    add_center = n_samples > 0
    sum_potentials = not add_center
    first = X[first_index : first_index + 1]
    _seeding_pass(
        X,
        x_sq_norms,
        sample_weight,
        closest,
        mass,
        padded_centers(first, np.float64),
        squared_norms(first, np.float64),
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
        padded_cand = padded_centers(cand_points, np.float64)
        cand_sq_norms = squared_norms(cand_points, np.float64)
        _seeding_pass(
            X,
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
