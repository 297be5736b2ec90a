"""Initial centres over blocks of rows: k-means|| (the default) and k-means++.

k-means|| (Bahmani et al., 2012) draws, in each of ``init_rounds`` passes
over the data, every row with probability ``oversampling_factor * k * w *
d^2 / phi`` (``d`` its distance to the candidates so far, ``phi`` the
weighted sum of them all), weights each candidate by the rows nearest it,
and clusters the candidates with fastkm's own k-means++ and Lloyd's
iterations. k-means++ here is the exact one: one pass over the data per
centre, each drawn with probability ``w * d^2 / phi``. Every draw comes from
the fit's seed and the block's index, so neither depends on the workers.
"""

import dask
import numpy as np

from . import _blocks
from ._data import tree


def _row(blocks, target, values=None):
    """The row at which the running weighted sum over all blocks passes ``target``."""
    totals = (
        [dask.delayed(_blocks.weight_total)(x, w) for x, w in zip(blocks.rows, blocks.weights, strict=True)]
        if values is None
        else [dask.delayed(_blocks.weighted_cost)(d, w) for d, w in zip(values, blocks.weights, strict=True)]
    )
    totals = np.array(dask.compute(*totals), dtype=np.float64)
    running = np.cumsum(totals)
    b = min(int(np.searchsorted(running, target * running[-1], side="right")), len(totals) - 1)
    inside = target * running[-1] - (running[b - 1] if b else 0.0)
    value = None if values is None else values[b]
    return dask.delayed(_blocks.row_by_weight)(blocks.rows[b], blocks.weights[b], value, inside).compute()


def _nearest(blocks, centers):
    """Each block's squared distances to the nearest of ``centers``, persisted."""
    pairs = blocks.map(_blocks.nearest_sq_distances, centers, nout=2)
    return list(dask.persist(*[d for d, _ in pairs]))


def kmeans_parallel(blocks, n_clusters, oversampling_factor, init_rounds, seed):
    """k-means|| initial centres (n_clusters, n_features), in X's dtype."""
    rng = np.random.default_rng(seed)
    candidates = _row(blocks, rng.random())
    for r in range(init_rounds):
        distances = _nearest(blocks, candidates)
        costs = [
            dask.delayed(_blocks.weighted_cost)(d, w) for d, w in zip(distances, blocks.weights, strict=True)
        ]
        phi = tree(_blocks.add, costs).compute()
        if phi <= 0:
            break
        scale = oversampling_factor * n_clusters / phi
        drawn = [
            dask.delayed(_blocks.sample_candidates)(x, w, d, scale, (seed, r, b))
            for b, (x, w, d) in enumerate(zip(blocks.rows, blocks.weights, distances, strict=True))
        ]
        candidates = np.concatenate([candidates, *dask.compute(*drawn)])
    while len(candidates) < n_clusters:
        # Too few distinct candidates (tiny or duplicated data): rows drawn by weight.
        candidates = np.concatenate([candidates, _row(blocks, rng.random())])
    shares = blocks.map(_blocks.candidate_weights, candidates, weights=True)
    weights = tree(_blocks.add, shares).compute()
    from .._kmeans import KMeans

    local = KMeans(n_clusters, init="k-means++", n_init=1, random_state=int(rng.integers(2**31)))
    return local.fit(candidates, sample_weight=weights).cluster_centers_.astype(blocks.dtype)


def kmeans_plusplus(blocks, n_clusters, seed):
    """Exact k-means++ initial centres: one pass over the data per centre."""
    rng = np.random.default_rng(seed)
    centers = _row(blocks, rng.random())
    for _ in range(1, n_clusters):
        distances = _nearest(blocks, centers)
        centers = np.concatenate([centers, _row(blocks, rng.random(), distances)])
    return centers
