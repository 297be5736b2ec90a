"""Nearest centre of rows of X read as they lie, without a tile (LLVM vector IR).

A tile (``tiles``) holds rows feature-major so that a vector holds one
feature of many rows. Filling it is a transpose, paid on every pass that
reads X directly rather than a kept tiled copy (``predict``, ``score``, a
small fit's whole run, a fit whose copy would be over budget): for digits'
``predict`` it took about as long as the scoring. Here the centres are
transposed instead, once a pass (``transposed_centers``): a vector holds
one feature of ``W`` centres, each value of a row is broadcast, and a block
of ``R`` rows by ``G`` vectors of centres keeps ``R * G`` accumulators in
registers across all the features (4 by 4 on AVX-512, 2 by 4 on AVX2). The
reads of X then stream in row order, overlapped with the arithmetic.

The bits are the tile code's: each dot product is the first product rounded
alone, then one FMA a feature in feature order (the tile's zero padding
features only add ``0 * 0``, which leaves every score unchanged); each score
``fma(-2, dot, ||c||^2)``. Every lane keeps the first best of its centres
(``l``, ``l + W``, ...) with a strict ``<``; the lanes are then merged,
the lowest centre index winning among equal scores: the first centre in
index order with the lowest score, as ``tiles.tile_argmin`` picks. Padding
centres have an infinite norm and never win.
"""

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._jit import kernel, kernel_for_types
from .blocked import _flat, _vector_shape, _wide_2d, splat, vector_fma, vector_lanes

# Vectors of centres a block (``G``).
_CENTER_VECTORS = 4

# Where scoring rows as they lie beats filling a tile for one pass (one core,
# float64, rows in cache; the tile 1.1-1.8x the time from 16 features up to
# 64 centres, 0.9x at 256 centres, 0.6-0.9x below 16 features; float32's
# tiles hold twice the rows a vector and won almost everywhere).
MIN_FEATURES = 16
MAX_CENTERS = 64


def _scored_as_rows(X):
    """The X types ``centers_for_rows`` gives centres for and ``argmin_rows_of`` scores (one rule)."""
    return X.layout == "C" and X.dtype == types.float64


@intrinsic
def argmin_row_major(typingctx, X, start, n_rows, centers_t, norms, best, labels):
    """Nearest centre of rows ``X[start:start + n_rows]``: ``tiles.tile_argmin``'s bits and ties.

    X : (n_samples, n_features) C-contiguous, float
    centers_t : (n_features, n_padded) IN, the centres transposed, ``n_padded``
        a whole number of vectors (``transposed_centers``)
    norms : (n_padded,) IN, the centres' squared norms, +inf past the centres
    best : (>= n_rows,) OUT, the winning score; labels : (>= n_rows,) int32 OUT
    """
    if not (_wide_2d(X) and _wide_2d(centers_t) and all(_flat(a) for a in (norms, best, labels))):
        return None
    if not (isinstance(X.dtype, types.Float) and X.dtype == centers_t.dtype == norms.dtype == best.dtype):
        return None
    if labels.dtype != types.int32:
        return None

    def codegen(context, builder, signature, args):
        b = builder
        X_t, _, _, centers_type, norms_type, best_type, labels_type = signature.args
        x_v, start_v, n_rows_v, centers_v, norms_v, best_v, labels_v = args
        start_v = context.cast(b, start_v, signature.args[1], types.int64)
        n_rows_v = context.cast(b, n_rows_v, signature.args[2], types.int64)
        lanes, n_rows_block = _vector_shape(context, X_t.dtype)
        scalar = context.get_value_type(X_t.dtype)
        vector = ir.VectorType(scalar, lanes)
        i32, i64 = ir.IntType(32), ir.IntType(64)
        label_vector = ir.VectorType(i32, lanes)
        align = X_t.dtype.bitwidth // 8
        fma = vector_fma(b, vector)
        x = context.make_array(X_t)(context, b, x_v)
        x_data = x.data
        n_features = b.extract_value(x.shape, 1)
        c = context.make_array(centers_type)(context, b, centers_v)
        c_data = c.data
        n_padded = b.extract_value(c.shape, 1)
        n_center_vectors = b.udiv(n_padded, i64(lanes))
        norms_data = context.make_array(norms_type)(context, b, norms_v).data
        best_data = context.make_array(best_type)(context, b, best_v).data
        labels_data = context.make_array(labels_type)(context, b, labels_v).data
        inf = ir.Constant(vector, [float("inf")] * lanes)
        minus2 = ir.Constant(vector, [-2.0] * lanes)
        lane_index = ir.Constant(label_vector, list(range(lanes)))

        def x_value(row, f):
            return splat(b, b.load(b.gep(x_data, [b.add(b.mul(row, n_features), f)])), lanes)

        def vector_at(data, index):
            return b.load(b.bitcast(b.gep(data, [index]), vector.as_pointer()), align=align)

        def center_vector(f, v):
            return vector_at(c_data, b.add(b.mul(f, n_padded), b.mul(v, i64(lanes))))

        def rows_block(i0, n_block, n_group):
            # Rows i0 .. i0 + n_block - 1 from start (n_block a constant),
            # against centres n_group vectors at a time.
            rows = [b.add(start_v, b.add(i0, i64(r))) for r in range(n_block)]
            kept_best = [cgutils.alloca_once_value(b, inf) for _ in rows]
            kept_label = [cgutils.alloca_once_value(b, ir.Constant(label_vector, [0] * lanes)) for _ in rows]

            def centers_block(v0, n_vectors):
                vs = [b.add(v0, i64(g)) for g in range(n_vectors)]
                acc = [[cgutils.alloca_once(b, vector) for _ in vs] for _ in rows]
                zero = i64(0)
                cs = [center_vector(zero, v) for v in vs]
                for r, row in enumerate(rows):
                    xr = x_value(row, zero)
                    for g, cv in enumerate(cs):
                        b.store(b.fmul(xr, cv), acc[r][g])
                with cgutils.for_range_slice(b, i64(1), n_features, i64(1), inc=True) as (f, _):
                    cs = [center_vector(f, v) for v in vs]
                    for r, row in enumerate(rows):
                        xr = x_value(row, f)
                        for g, cv in enumerate(cs):
                            b.store(b.call(fma, [xr, cv, b.load(acc[r][g])]), acc[r][g])
                for g, v in enumerate(vs):
                    norm = vector_at(norms_data, b.mul(v, i64(lanes)))
                    first = b.trunc(b.mul(v, i64(lanes)), i32)
                    label = b.add(splat(b, first, lanes), lane_index)
                    for r in range(n_block):
                        s = b.call(fma, [minus2, b.load(acc[r][g]), norm])
                        top = b.load(kept_best[r])
                        better = b.fcmp_ordered("<", s, top)
                        b.store(b.select(better, s, top), kept_best[r])
                        b.store(b.select(better, label, b.load(kept_label[r])), kept_label[r])

            # Centres in index order: blocks of G vectors, then a pair, then one.
            n_full = b.udiv(n_center_vectors, i64(n_group))
            with cgutils.for_range(b, n_full) as loop:
                centers_block(b.mul(loop.index, i64(n_group)), n_group)
            v = b.mul(n_full, i64(n_group))
            left = b.sub(n_center_vectors, v)
            if n_group > 2:
                with b.if_then(b.icmp_signed(">=", left, i64(2))):
                    centers_block(v, 2)
            with b.if_then(b.icmp_signed("==", b.and_(left, i64(1)), i64(1))):
                centers_block(b.sub(n_center_vectors, i64(1)), 1)
            for r in range(n_block):
                top, label = merge_lanes(b.load(kept_best[r]), b.load(kept_label[r]))
                q = b.add(i0, i64(r))
                b.store(top, b.gep(best_data, [q]))
                b.store(label, b.gep(labels_data, [q]))

        def merge_lanes(scores, labels_r):
            # Halve the lanes log2(W) times: the lower score, or the lower label of equal ones.
            width = lanes // 2
            while width >= 1:
                mask = ir.Constant(ir.VectorType(i32, lanes), [(q + width) % lanes for q in range(lanes)])
                s = b.shuffle_vector(scores, scores, mask)
                j = b.shuffle_vector(labels_r, labels_r, mask)
                lower = b.fcmp_ordered("<", s, scores)
                tied_earlier = b.and_(b.fcmp_ordered("==", s, scores), b.icmp_signed("<", j, labels_r))
                take = b.or_(lower, tied_earlier)
                scores = b.select(take, s, scores)
                labels_r = b.select(take, j, labels_r)
                width //= 2
            return b.extract_element(scores, i32(0)), b.extract_element(labels_r, i32(0))

        def whole_blocks(n_block, n_group):
            n_whole = b.udiv(n_rows_v, i64(n_block))
            with cgutils.for_range(b, n_whole) as loop:
                rows_block(b.mul(loop.index, i64(n_block)), n_block, n_group)
            return b.mul(n_whole, i64(n_block))

        # Fewer than G vectors of centres (digits' 10 centres: two): twice the
        # rows a block, to keep as many independent accumulators.
        few = b.icmp_signed("<", n_center_vectors, i64(_CENTER_VECTORS))
        done = cgutils.alloca_once(b, i64)
        with b.if_else(few) as (then, otherwise):
            with then:
                b.store(whole_blocks(2 * n_rows_block, 2), done)
            with otherwise:
                b.store(whole_blocks(n_rows_block, _CENTER_VECTORS), done)
        with cgutils.for_range_slice(b, b.load(done), n_rows_v, i64(1)) as (i, _):
            rows_block(i, 1, _CENTER_VECTORS)
        return context.get_dummy_value()

    sig = types.void(X, start, n_rows, centers_t, norms, best, labels)
    return sig, codegen


@kernel
def transposed_centers(centers, center_sq_norms, dtype):
    """``argmin_row_major``'s centres: ``(n_features, n_padded)`` in ``dtype``, and padded norms.

    ``n_padded`` is ``n_clusters`` rounded up to whole vectors; the padding
    centres are zero with an infinite norm, so they never win.
    """
    n_clusters, n_features = centers.shape
    template = np.empty((1, 1), dtype=dtype)
    lanes = vector_lanes(template)
    n_padded = -(-n_clusters // lanes) * lanes
    out = np.zeros((n_features, n_padded), dtype=dtype)
    norms = np.full(n_padded, np.inf, dtype=dtype)
    for j in range(n_clusters):
        norms[j] = center_sq_norms[j]
        for f in range(n_features):
            out[f, j] = centers[j, f]
    return out, norms


@kernel_for_types
def centers_for_rows(X, tiles, centers, center_sq_norms):
    """``transposed_centers`` if this pass scores X's rows as they lie, else empty arrays.

    Rows are scored as they lie when X is read directly (no kept ``tiles``),
    C-contiguous float64, with ``MIN_FEATURES`` features or more and up to
    ``MAX_CENTERS`` centres; otherwise a tile is filled (``tiles.chunk_tile``).
    """
    if _scored_as_rows(X):

        def choose(X, tiles, centers, center_sq_norms):
            n_clusters, n_features = centers.shape
            if tiles.shape[0] == 0 and n_features >= MIN_FEATURES and n_clusters <= MAX_CENTERS:
                return transposed_centers(centers, center_sq_norms, X.dtype)
            return np.empty((0, 0), dtype=X.dtype), np.empty(0, dtype=X.dtype)

        return choose

    def tiles_always(X, tiles, centers, center_sq_norms):
        return np.empty((0, 0), dtype=X.dtype), np.empty(0, dtype=X.dtype)

    return tiles_always


@kernel_for_types
def argmin_rows_of(X, start, n_rows, centers_t, norms, best, labels):
    """``argmin_row_major`` for X that ``centers_for_rows`` may give centres for.

    For other X (``_scored_as_rows``) this writes nothing: those callers fill
    tiles instead.
    """
    if _scored_as_rows(X):

        def score(X, start, n_rows, centers_t, norms, best, labels):
            argmin_row_major(X, start, n_rows, centers_t, norms, best, labels)

        return score

    def never(X, start, n_rows, centers_t, norms, best, labels):
        # centers_for_rows gives no centres for this X: tiles score it.
        pass

    return never
