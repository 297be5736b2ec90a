"""Register-blocked scoring of a wide tile's rows against the centres.

numba's loops over a tile kept four running dot products in memory (every
block of four features loaded and stored them again), and ran at 256 bits
on AVX-512 machines (LLVM's preference there): about 34 billion
multiply-adds a second a core at d=128, where SGEMM runs 77. These routines
are written as LLVM vector IR instead (numba has no vector types): a block
of ``R`` vectors of rows (``R * W`` rows, ``W`` lanes a vector) and four
centres keep ``4 * R`` accumulators in registers across all the features,
each tile value loaded once per block and each centre value broadcast once,
and the scores' running minimum stays in registers across all the centres.
Sixteen accumulators of 512 bits on AVX-512, eight of 256 bits on AVX2.

Every dot product is still the sequential FMA chain over the tile's padded
features of ``tiles.tile_center_scores`` (the first product rounded alone,
then one FMA a feature), every score ``fma(-2, dot, ||c||^2)``, and the
centres are compared in index order with a strict ``<``: the bits, labels
and ties of the tile code, only computed a vector of rows at a time.

A tile's last vector of rows may be partial: its lanes past ``n_rows`` read
columns of the tile not filled for these rows (allocated: any value) and
are never stored. ``tiles._blocks_fit`` says whether the tile has the
columns (every tile made by ``tiles`` has, for up to CHUNK rows).
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._jit import emit_prefetch


def _vector_shape(context, dtype):
    """Lanes a vector (``W``) and vectors of rows a block (``R``) for ``dtype`` on the target.

    Read from the features numba compiles for (``NUMBA_CPU_FEATURES``
    included), which also key its cache.
    """
    features = context.codegen()._tm_features
    wide = "+avx512f" in features and "-evex512" not in features
    # 256 bits where FMAs are (AVX2 machines): an AVX-only CPU would call libm's fma.
    vector_bytes = 64 if wide else 32 if "+avx2" in features and "+fma" in features else 16
    # 32 vector registers with AVX-512: 16 accumulators, the row vectors and a broadcast.
    rows = 4 if wide else 2
    return vector_bytes // (dtype.bitwidth // 8), rows


def splat(builder, value, lanes):
    """``value`` in every one of ``lanes`` lanes."""
    undef = ir.Constant(ir.VectorType(value.type, lanes), ir.Undefined)
    one = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
    first = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return builder.shuffle_vector(one, undef, first)


def vector_fma(builder, vector):
    """LLVM's fused multiply-add on ``vector`` (an ``ir.VectorType`` of floats), declared in the module."""
    name = f"llvm.fma.v{vector.count}{vector.element.intrinsic_name}"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3), name)


def _wide_2d(array):
    return isinstance(array, types.Array) and array.ndim == 2 and array.layout == "C"


def _flat(array):
    return isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"


class _Emitter:
    """Emits one routine's IR: a tile of rows (feature-major) against rows of centres."""

    def __init__(self, context, builder, tile_type, tile, centers_type, centers):
        self.context = context
        self.builder = builder
        self.scalar = context.get_value_type(centers_type.dtype)
        self.tile_scalar = context.get_value_type(tile_type.dtype)
        self.lanes, self.n_vectors = _vector_shape(context, centers_type.dtype)
        self.vector = ir.VectorType(self.scalar, self.lanes)
        self.tile_vector = ir.VectorType(self.tile_scalar, self.lanes)
        self.tile_align = tile_type.dtype.bitwidth // 8
        self.align = centers_type.dtype.bitwidth // 8
        self.i64 = ir.IntType(64)
        tile = context.make_array(tile_type)(context, builder, tile)
        centers = context.make_array(centers_type)(context, builder, centers)
        self.tile_data = tile.data
        self.width = builder.extract_value(tile.shape, 0)
        self.tile_columns = builder.extract_value(tile.shape, 1)
        self.centers_data = centers.data
        self.center_columns = builder.extract_value(centers.shape, 1)
        self.n_centers = builder.extract_value(centers.shape, 0)
        self.fma = vector_fma(builder, self.vector)

    @property
    def block_rows(self):
        return self.lanes * self.n_vectors

    def splat(self, value):
        return splat(self.builder, value, self.lanes)

    def constant(self, value):
        return ir.Constant(self.vector, [value] * self.lanes)

    def _tile_vector(self, f, i0, r):
        b = self.builder
        index = b.add(b.mul(f, self.tile_columns), b.add(i0, self.i64(r * self.lanes)))
        pointer = b.bitcast(b.gep(self.tile_data, [index]), self.tile_vector.as_pointer())
        values = b.load(pointer, align=self.tile_align)
        return values if self.tile_scalar == self.scalar else b.fpext(values, self.vector)

    def _center(self, j, f):
        b = self.builder
        return b.load(b.gep(self.centers_data, [b.add(b.mul(j, self.center_columns), f)]))

    def dots(self, i0, n_vectors, centers):
        """Dot products of ``n_vectors`` vectors of rows at ``i0`` with ``centers`` (IR indices).

        Returns ``[centre][vector]`` vector values: the first feature's
        products, then one FMA a feature, in feature order.
        """
        b = self.builder
        accumulators = [[cgutils.alloca_once(b, self.vector) for _ in range(n_vectors)] for _ in centers]
        zero = self.i64(0)
        rows = [self._tile_vector(zero, i0, r) for r in range(n_vectors)]
        for j, column in zip(centers, accumulators, strict=True):
            c = self.splat(self._center(j, zero))
            for x, acc in zip(rows, column, strict=True):
                b.store(b.fmul(c, x), acc)
        with cgutils.for_range_slice(b, self.i64(1), self.width, self.i64(1), inc=True) as (f, _):
            rows = [self._tile_vector(f, i0, r) for r in range(n_vectors)]
            for j, column in zip(centers, accumulators, strict=True):
                c = self.splat(self._center(j, f))
                for x, acc in zip(rows, column, strict=True):
                    b.store(b.call(self.fma, [c, x, b.load(acc)]), acc)
        return [[b.load(acc) for acc in column] for column in accumulators]

    def for_blocks(self, n_rows, emit):
        """``emit(i0, n_vectors, n_valid)`` for every block of rows.

        Whole blocks of ``n_vectors`` vectors first (``n_valid`` None), then
        the rows left one vector at a time (``n_valid`` the rows stored of
        it, up to ``lanes``): a gathered tile of a few rows costs a vector,
        not a block.
        """
        b = self.builder
        step = self.i64(self.block_rows)
        lanes = self.i64(self.lanes)
        n_full = b.udiv(n_rows, step)
        with cgutils.for_range(b, n_full) as loop:
            emit(b.mul(loop.index, step), self.n_vectors, None)
        start = b.mul(n_full, step)
        left = b.sub(n_rows, start)
        n_single = b.udiv(b.add(left, self.i64(self.lanes - 1)), lanes)
        with cgutils.for_range(b, n_single) as loop:
            i0 = b.add(start, b.mul(loop.index, lanes))
            rows = b.sub(n_rows, i0)
            emit(i0, 1, b.select(b.icmp_signed("<", rows, lanes), rows, lanes))

    def store(self, values, array_type, array, offset, i0, n_valid):
        """Store a block's vectors at ``array[offset + i0 ...]``; only ``n_valid`` rows of a tail."""
        b = self.builder
        data = self.context.make_array(array_type)(self.context, b, array).data
        vector_type = values[0].type
        align = array_type.dtype.bitwidth // 8
        if n_valid is None:
            for r, value in enumerate(values):
                index = b.add(offset, b.add(i0, self.i64(r * self.lanes)))
                b.store(value, b.bitcast(b.gep(data, [index]), vector_type.as_pointer()), align=align)
            return
        spill = cgutils.alloca_once(b, ir.ArrayType(vector_type.element, self.block_rows))
        for r, value in enumerate(values):
            slot = b.gep(spill, [self.i64(0), self.i64(r * self.lanes)])
            b.store(value, b.bitcast(slot, vector_type.as_pointer()), align=align)
        with cgutils.for_range(b, n_valid) as loop:
            q = loop.index
            value = b.load(b.gep(spill, [self.i64(0), q]))
            b.store(value, b.gep(data, [b.add(offset, b.add(i0, q))]))

    def scores(self, dots, norm):
        """``fma(-2, dot, norm)`` for every vector of a centre's dot products."""
        minus2 = self.constant(-2.0)
        return [self.builder.call(self.fma, [minus2, dot, self.splat(norm)]) for dot in dots]

    def center_blocks(self, emit_group):
        """``emit_group(js)`` for the centres in index order: fours, then a pair, then one."""
        b = self.builder
        four = self.i64(4)
        n_fours = b.udiv(self.n_centers, four)
        with cgutils.for_range(b, n_fours) as loop:
            j = b.mul(loop.index, four)
            emit_group([j, b.add(j, self.i64(1)), b.add(j, self.i64(2)), b.add(j, self.i64(3))])
        j = b.mul(n_fours, four)
        left = b.sub(self.n_centers, j)
        with b.if_then(b.icmp_signed(">=", left, self.i64(2))):
            emit_group([j, b.add(j, self.i64(1))])
        last = b.sub(self.n_centers, self.i64(1))
        with b.if_then(b.icmp_signed("==", b.and_(left, self.i64(1)), self.i64(1))):
            emit_group([last])

    def prefetch_ahead(self, i0, n_vectors, ahead):
        """Prefetch into L2 the lines ``ahead`` elements past this block's tile vectors (none for 0).

        For a tile of a kept stack, ``ahead`` is one tile's size: each block
        of rows fetches its place in the next tile while it is scored, so the
        stack streams in while the FMAs run (see ``tiles.prefetch_offset``).
        """
        b = self.builder
        with b.if_then(b.icmp_signed("!=", ahead, self.i64(0))):
            with cgutils.for_range(b, self.width) as loop:
                row = b.add(b.mul(loop.index, self.tile_columns), ahead)
                for r in range(n_vectors):
                    index = b.add(row, b.add(i0, self.i64(r * self.lanes)))
                    emit_prefetch(b, b.gep(self.tile_data, [index]), locality=2)  # into L2


def _same_float_arrays(*arrays):
    dtype = arrays[0].dtype
    return isinstance(dtype, types.Float) and all(a.dtype == dtype for a in arrays)


@intrinsic
def vector_lanes(typingctx, tile):
    """Rows a vector of the register-blocked routines holds for ``tile``'s dtype (a constant)."""
    if not _wide_2d(tile) or not isinstance(tile.dtype, types.Float):
        return None

    def codegen(context, builder, signature, args):
        return ir.Constant(ir.IntType(64), _vector_shape(context, tile.dtype)[0])

    return types.int64(tile), codegen


def _emit_running_minimum(context, builder, signature, args, with_second):
    """The code of ``argmin_rows`` (``with_second`` False) and ``top2_rows``.

    Per block of rows, the best score (and the second best) and its label
    stay in registers while every centre's scores are folded in, in index
    order; then they are stored. ``args``: the tile, ``n_rows``, the centres,
    their squared norms, the outputs (best, [second,] labels), then ``ahead``
    (``_Emitter.prefetch_ahead``).
    """
    tile, _, centers, center_sq_norms = signature.args[:4]
    tile_v, n_rows_v, centers_v, norms_v = args[:4]
    ahead = args[-1]
    outputs = list(zip(signature.args[4:-1], args[4:-1], strict=True))
    e = _Emitter(context, builder, tile, tile_v, centers, centers_v)
    norms_data = context.make_array(center_sq_norms)(context, builder, norms_v).data
    label_vector = ir.VectorType(ir.IntType(32), e.lanes)
    inf = e.constant(float("inf"))
    starts = [inf, inf] if with_second else [inf]
    starts.append(ir.Constant(label_vector, [0] * e.lanes))

    def block(i0, n_vectors, n_valid):
        b = builder
        # [best, (second,) label][vector]
        kept = [[cgutils.alloca_once(b, start.type) for _ in range(n_vectors)] for start in starts]
        for start, column in zip(starts, kept, strict=True):
            for slot in column:
                b.store(start, slot)
        best_at, label_at = kept[0], kept[-1]
        e.prefetch_ahead(i0, n_vectors, ahead)

        def group(js):
            dots = e.dots(i0, n_vectors, js)
            for j, column in zip(js, dots, strict=True):
                label = e.splat(b.trunc(j, ir.IntType(32)))
                norm = b.load(b.gep(norms_data, [j]))
                for r, s in enumerate(e.scores(column, norm)):
                    top = b.load(best_at[r])
                    better = b.fcmp_ordered("<", s, top)
                    if with_second:
                        # ``tiles._push``; numba's min(second, s): s if s < second else second.
                        runner_up = b.load(kept[1][r])
                        lower = b.select(b.fcmp_ordered("<", s, runner_up), s, runner_up)
                        b.store(b.select(better, top, lower), kept[1][r])
                    b.store(b.select(better, s, top), best_at[r])
                    b.store(b.select(better, label, b.load(label_at[r])), label_at[r])

        e.center_blocks(group)
        for (array_type, array), column in zip(outputs, kept, strict=True):
            e.store([b.load(slot) for slot in column], array_type, array, e.i64(0), i0, n_valid)

    e.for_blocks(n_rows_v, block)
    return context.get_dummy_value()


@intrinsic
def argmin_rows(typingctx, tile, n_rows, centers, center_sq_norms, best, labels, ahead):
    """Nearest centre of the first ``n_rows`` tile rows: ``tiles.tile_argmin``'s wide path.

    best : (>= n_rows,) OUT, the winning score; labels : (>= n_rows,) int32 OUT.
    ahead : int64, elements from this tile to the next one to score, prefetched
    on the way (0: none). The tile needs ``n_rows`` rounded up to whole
    vectors of columns (``vector_lanes``).
    """
    if not (_wide_2d(tile) and _wide_2d(centers) and all(_flat(a) for a in (center_sq_norms, best, labels))):
        return None
    if not (_same_float_arrays(tile, centers, center_sq_norms, best) and labels.dtype == types.int32):
        return None

    def codegen(context, builder, signature, args):
        return _emit_running_minimum(context, builder, signature, args, with_second=False)

    return types.void(tile, types.int64, centers, center_sq_norms, best, labels, types.int64), codegen


@intrinsic
def top2_rows(typingctx, tile, n_rows, centers, center_sq_norms, best, second, labels, ahead):
    """Best and second-best score and the best centre of the first ``n_rows`` tile rows.

    ``tiles.tile_top2``'s wide path: each score folded in index order as its
    ``_push`` does. best, second : (>= n_rows,) OUT; labels : int32 OUT;
    ahead as ``argmin_rows``.
    """
    arrays = (center_sq_norms, best, second, labels)
    if not (_wide_2d(tile) and _wide_2d(centers) and all(_flat(a) for a in arrays)):
        return None
    if not (_same_float_arrays(tile, centers, center_sq_norms, best, second) and labels.dtype == types.int32):
        return None

    def codegen(context, builder, signature, args):
        return _emit_running_minimum(context, builder, signature, args, with_second=True)

    return types.void(tile, types.int64, centers, center_sq_norms, best, second, labels, types.int64), codegen


@intrinsic
def dots_rows(typingctx, tile, n_rows, centers, js, out, ahead):
    """Dot products of the first ``n_rows`` tile rows with the centres ``js`` (a tuple).

    ``tiles.tile_center_scores``'s chains, in the centres' dtype (a float32
    tile is upcast value by value). out : (len(js), >= n_rows) OUT, row ``q`` for ``js[q]``;
    ahead as ``argmin_rows``.
    """
    if not (_wide_2d(tile) and _wide_2d(centers) and _wide_2d(out)):
        return None
    if not (isinstance(js, types.UniTuple) and isinstance(js.dtype, types.Integer)):
        return None
    if not (isinstance(tile.dtype, types.Float) and _same_float_arrays(centers, out)):
        return None
    if tile.dtype.bitwidth > centers.dtype.bitwidth:
        return None

    def codegen(context, builder, signature, args):
        tile_v, n_rows_v, centers_v, js_v, out_v, ahead = args
        e = _Emitter(context, builder, tile, tile_v, centers, centers_v)
        items = [builder.extract_value(js_v, q) for q in range(js.count)]
        indices = [context.cast(builder, item, js.dtype, types.int64) for item in items]
        out_array = context.make_array(out)(context, builder, out_v)
        out_columns = builder.extract_value(out_array.shape, 1)

        def block(i0, n_vectors, n_valid):
            e.prefetch_ahead(i0, n_vectors, ahead)
            for q, column in enumerate(e.dots(i0, n_vectors, indices)):
                e.store(column, out, out_v, builder.mul(e.i64(q), out_columns), i0, n_valid)

        e.for_blocks(n_rows_v, block)
        return context.get_dummy_value()

    return types.void(tile, types.int64, centers, js, out, types.int64), codegen
