"""Eight rows of X into eight columns of a tile, transposed in vector registers.

Filling a tile puts each row's values down a column: one value at a time,
about three cycles a value (1,000,000 x 16 float64: 4 us a tile, as long as
scoring it). ``transpose8`` loads eight rows' values of eight features as
eight vectors, transposes them with three rounds of shuffles (blocks of 1, 2
and 4 lanes swapped between pairs of vectors) and stores eight vectors, one
per feature, converted to the tile's dtype. The values are copied, never
computed: the tile holds the same numbers as before.
"""

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

_N = 8


def _shuffled(builder, vectors, block):
    """One round: between vectors ``p`` and ``p + block``, swap their lane blocks of ``block``."""
    vectors = list(vectors)
    for p in range(_N):
        if p & block:
            continue
        q = p + block
        first = [lane if lane & block == 0 else _N + lane - block for lane in range(_N)]
        second = [lane + block if lane & block == 0 else _N + lane for lane in range(_N)]
        mask = ir.VectorType(ir.IntType(32), _N)
        vectors[p], vectors[q] = (
            builder.shuffle_vector(vectors[p], vectors[q], ir.Constant(mask, first)),
            builder.shuffle_vector(vectors[p], vectors[q], ir.Constant(mask, second)),
        )
    return vectors


@intrinsic
def transpose8(typingctx, X, rows, f0, tile, col):
    """``tile[f0 + k, col + r] = X[rows[r], f0 + k]`` for ``r, k`` in 0..7, in the tile's dtype.

    X : (n, n_features) C-contiguous, ``f0 + 8 <= n_features``
    rows : a tuple of eight row indices
    tile : (>= f0 + 8, >= col + 8) C-contiguous
    """
    if not all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" for a in (X, tile)):
        return None
    if not (isinstance(X.dtype, types.Float) and isinstance(tile.dtype, types.Float)):
        return None
    if not (isinstance(rows, types.UniTuple) and rows.count == _N and isinstance(rows.dtype, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        X_v, rows_v, f0_v, tile_v, col_v = args
        i64 = ir.IntType(64)
        source = context.make_array(X)(context, builder, X_v)
        target = context.make_array(tile)(context, builder, tile_v)
        x_columns = builder.extract_value(source.shape, 1)
        tile_columns = builder.extract_value(target.shape, 1)
        x_type = ir.VectorType(context.get_value_type(X.dtype), _N)
        tile_type = ir.VectorType(context.get_value_type(tile.dtype), _N)
        f0_v = context.cast(builder, f0_v, signature.args[2], types.int64)
        col_v = context.cast(builder, col_v, signature.args[4], types.int64)
        vectors = []
        for r in range(_N):
            row = context.cast(builder, builder.extract_value(rows_v, r), rows.dtype, types.int64)
            pointer = builder.gep(source.data, [builder.add(builder.mul(row, x_columns), f0_v)])
            pointer = builder.bitcast(pointer, x_type.as_pointer())
            vectors.append(builder.load(pointer, align=X.dtype.bitwidth // 8))
        for block in (1, 2, 4):
            vectors = _shuffled(builder, vectors, block)
        for k, values in enumerate(vectors):
            if tile.dtype.bitwidth < X.dtype.bitwidth:
                values = builder.fptrunc(values, tile_type)
            elif tile.dtype.bitwidth > X.dtype.bitwidth:
                values = builder.fpext(values, tile_type)
            index = builder.add(builder.mul(builder.add(f0_v, i64(k)), tile_columns), col_v)
            pointer = builder.bitcast(builder.gep(target.data, [index]), tile_type.as_pointer())
            builder.store(values, pointer, align=tile.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.void(X, rows, f0, tile, col), codegen
