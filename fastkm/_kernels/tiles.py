"""Tile routines shared by every distance-based kernel.

A tile is up to ``CHUNK`` rows of X stored transposed (feature-major) and padded
with zero features to a multiple of ``FEATURE_BLOCK``. In that layout the loops
over rows are unit-stride and vectorise; the zero padding leaves every dot
product and norm unchanged.
"""

import numpy as np

from ._jit import CHUNK, FEATURE_BLOCK, fma, kernel


@kernel
def padded_width(n_features):
    """Number of tile rows for ``n_features`` features (a multiple of the block)."""
    return max(FEATURE_BLOCK, -(-n_features // FEATURE_BLOCK) * FEATURE_BLOCK)


@kernel
def new_tile(n_features, dtype):
    """Allocate a zeroed tile for data with ``n_features`` features."""
    return np.zeros((padded_width(n_features), CHUNK), dtype=dtype)


@kernel
def load_tile(X, start, stop, tile):
    """Copy rows ``X[start:stop]`` into ``tile`` transposed.

    X : (n_samples, n_features) IN
    tile : (padded_width, CHUNK) INOUT; padding rows must stay zero.
    """
    n_features = X.shape[1]
    if n_features <= FEATURE_BLOCK:
        # Narrow rows: one unit-stride write stream per feature.
        for f in range(n_features):
            for i in range(stop - start):
                tile[f, i] = X[start + i, f]
    else:
        # Wide rows: read each row once, contiguously.
        for i in range(stop - start):
            for f in range(n_features):
                tile[f, i] = X[start + i, f]


@kernel
def padded_centers(centers, dtype):
    """Return ``centers`` in ``dtype`` with zero columns up to the tile width."""
    n_clusters, n_features = centers.shape
    out = np.zeros((n_clusters, padded_width(n_features)), dtype=dtype)
    for j in range(n_clusters):
        for f in range(n_features):
            out[j, f] = centers[j, f]
    return out


@kernel
def squared_norms(centers, dtype):
    """Return the squared Euclidean norm of every row of ``centers``."""
    n_clusters, n_features = centers.shape
    out = np.empty(n_clusters, dtype=dtype)
    for j in range(n_clusters):
        s = 0.0
        for f in range(n_features):
            s += centers[j, f] * centers[j, f]
        out[j] = s
    return out


@kernel
def tile_center_scores(tile, n_rows, centers, center_sq_norms, j, out):
    """Score every tile row against centre ``j``: ``||c_j||^2 - 2 x.c_j``.

    This is the squared distance less ``||x||^2``, which is constant per row, so
    its argmin over centres is the nearest centre (scikit-learn's formulation).
    The dot product is a sequential FMA chain over features and ``-2 x.c`` is
    added with one rounding: a BLAS GEMM's order, so ties break as there.

    tile : (padded_width, CHUNK) IN
    centers : (n_clusters, padded_width) IN, zero-padded
    center_sq_norms : (n_clusters,) IN
    out : (CHUNK,) OUT, first ``n_rows`` entries written
    """
    width = tile.shape[0]
    minus2 = tile.dtype.type(-2.0)
    c0 = centers[j, 0]
    c1 = centers[j, 1]
    c2 = centers[j, 2]
    c3 = centers[j, 3]
    for i in range(n_rows):
        out[i] = fma(c3, tile[3, i], fma(c2, tile[2, i], fma(c1, tile[1, i], c0 * tile[0, i])))
    for f in range(FEATURE_BLOCK, width, FEATURE_BLOCK):
        c0 = centers[j, f]
        c1 = centers[j, f + 1]
        c2 = centers[j, f + 2]
        c3 = centers[j, f + 3]
        for i in range(n_rows):
            out[i] = fma(
                c3,
                tile[f + 3, i],
                fma(c2, tile[f + 2, i], fma(c1, tile[f + 1, i], fma(c0, tile[f, i], out[i]))),
            )
    cn = center_sq_norms[j]
    for i in range(n_rows):
        out[i] = fma(minus2, out[i], cn)


@kernel
def tile_argmin(tile, n_rows, centers, center_sq_norms, scores, best, labels):
    """Nearest centre of every tile row (first one on ties, as scikit-learn).

    tile : (padded_width, CHUNK) IN
    centers : (n_clusters, padded_width) IN, zero-padded
    center_sq_norms : (n_clusters,) IN
    scores : (CHUNK,) scratch
    best : (CHUNK,) OUT, the winning score ``||c||^2 - 2 x.c``
    labels : (CHUNK,) int32 OUT
    """
    n_clusters = centers.shape[0]
    width = tile.shape[0]
    minus2 = tile.dtype.type(-2.0)
    for i in range(n_rows):
        best[i] = np.inf
        labels[i] = 0
    if width == FEATURE_BLOCK:
        # d <= 4: score and select in one pass, nothing goes through memory.
        for j in range(n_clusters):
            c0 = centers[j, 0]
            c1 = centers[j, 1]
            c2 = centers[j, 2]
            c3 = centers[j, 3]
            cn = center_sq_norms[j]
            jj = np.int32(j)
            for i in range(n_rows):
                dot = fma(c3, tile[3, i], fma(c2, tile[2, i], fma(c1, tile[1, i], c0 * tile[0, i])))
                s = fma(minus2, dot, cn)
                b = best[i]
                better = s < b
                best[i] = s if better else b
                labels[i] = jj if better else labels[i]
    else:
        for j in range(n_clusters):
            tile_center_scores(tile, n_rows, centers, center_sq_norms, j, scores)
            jj = np.int32(j)
            for i in range(n_rows):
                s = scores[i]
                b = best[i]
                better = s < b
                best[i] = s if better else b
                labels[i] = jj if better else labels[i]
