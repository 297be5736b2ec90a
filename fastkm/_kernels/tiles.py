"""Tile routines shared by every distance-based kernel.

A tile is up to ``CHUNK`` rows of X stored transposed (feature-major) and padded
with zero features to a multiple of ``FEATURE_BLOCK``. In that layout the loops
over rows are unit-stride and vectorise; the zero padding leaves every dot
product and norm unchanged.
"""

import numpy as np

from ._jit import CHUNK, FEATURE_BLOCK, fma, kernel, kernel_for_types
from .blocked import argmin_rows, dots_rows, top2_rows, vector_lanes
from .transpose import transpose8


@kernel
def padded_width(n_features):
    """Number of tile rows for ``n_features`` features (a multiple of the block)."""
    return max(FEATURE_BLOCK, -(-n_features // FEATURE_BLOCK) * FEATURE_BLOCK)


# Spare columns at the end of each tile row. With exactly CHUNK columns, the rows
# of a tile lie a power of two apart and all map to the same few L1 cache sets,
# so filling a wide tile thrashed the cache (digits: 5x slower tile loads).
# Sixteen keeps every row a whole number of 64-byte lines (of either dtype) from
# a tile's start, which ``_aligned_empty`` puts on a line: the register-blocked
# routines' 512-bit loads never straddle two lines.
_TILE_ROW_PAD = 16

# Bytes of a cache line (and of an AVX-512 vector).
_LINE = 64


@kernel
def _aligned_empty(n_rows, n_columns, dtype):
    """An uninitialised C-ordered ``(n_rows, n_columns)`` array starting on a cache line.

    numba's allocations start on 32 bytes only: half the 512-bit loads of a
    float32 tile then spanned two lines (d=64: 10% slower scoring).
    """
    size = n_rows * n_columns
    buffer = np.empty(size + _LINE, dtype=dtype)  # a line to spare at any item size
    per_line = _LINE // buffer.itemsize
    skip = (-(buffer.ctypes.data // buffer.itemsize)) % per_line
    return buffer[skip : skip + size].reshape((n_rows, n_columns))


@kernel
def new_tile(n_features, dtype):
    """Allocate a tile for data with ``n_features`` features, padding rows zeroed.

    Only the first ``CHUNK`` columns are used; see ``_TILE_ROW_PAD``.
    """
    tile = _aligned_empty(padded_width(n_features), CHUNK + _TILE_ROW_PAD, dtype)
    clear_padding(tile, n_features)
    return tile


@kernel
def clear_padding(tile, n_features):
    """Zero the tile rows past ``n_features``; load_tile writes the others."""
    for f in range(n_features, tile.shape[0]):
        for i in range(tile.shape[1]):
            tile[f, i] = 0


def tile_bytes(n_features, dtype):
    """The bytes one tile of ``tile_stack`` takes, without making one."""
    return padded_width.__wrapped__(n_features) * (CHUNK + _TILE_ROW_PAD) * np.dtype(dtype).itemsize


def tile_stack(n_tiles, n_features, dtype):
    """Uninitialised storage for ``n_tiles`` tiles (see ``lloyd._assign_rows``)."""
    # The kernels' rule run as Python: nothing to compile for a call from Python.
    shape = (n_tiles, padded_width.__wrapped__(n_features), CHUNK + _TILE_ROW_PAD)
    itemsize = np.dtype(dtype).itemsize
    buffer = np.empty(n_tiles * shape[1] * shape[2] + _LINE, dtype=dtype)
    skip = (-(buffer.ctypes.data // itemsize)) % (_LINE // itemsize)
    return buffer[skip : skip + n_tiles * shape[1] * shape[2]].reshape(shape)


@kernel
def load_tile(X, start, stop, tile):
    """Copy rows ``X[start:stop]`` into ``tile`` transposed.

    X : (n_samples, n_features) IN
    tile : (padded_width, CHUNK) INOUT; padding rows must stay zero.
    Returns 0 if every value copied is finite, NaN otherwise (the sum of
    ``x * 0``), a free finiteness check for kernels that read X only once.
    """
    n_features = X.shape[1]
    zero = tile.dtype.type(0.0)
    probe = zero
    if n_features <= FEATURE_BLOCK:
        # Narrow rows: one unit-stride write stream per feature.
        for f in range(n_features):
            for i in range(stop - start):
                x = X[start + i, f]
                tile[f, i] = x
                probe += x * zero
    elif n_features < 8:
        # Five to seven features (a cache line at most): blocks of 16 rows, so that both the
        # reads (16 lines) and the writes (16 consecutive values) stay local;
        # LLVM gathers the values of a feature across the 16 rows.
        n_rows = stop - start
        full = n_rows - n_rows % 16
        for i0 in range(0, full, 16):
            for f in range(n_features):
                for i in range(i0, i0 + 16):
                    x = X[start + i, f]
                    tile[f, i] = x
                    probe += x * zero
        for i in range(full, n_rows):
            for f in range(n_features):
                x = X[start + i, f]
                tile[f, i] = x
                probe += x * zero
    else:
        # Eight features or more: the probe in one pass over the rows' values
        # as they lie (``finite_probe``), then the copy eight rows at a
        # time (``_rows_to_columns``). Gathering across rows with the probe in
        # the same loop ran 1.5-2.9x slower (float64, d = 16-128, one core).
        probe = finite_probe(X, start, stop, zero)
        n_rows = stop - start
        full = n_rows - n_rows % 8
        for i0 in range(0, full, 8):
            r = start + i0
            _rows_to_columns(X, (r, r + 1, r + 2, r + 3, r + 4, r + 5, r + 6, r + 7), tile, i0)
        for i in range(full, n_rows):
            for f in range(n_features):
                tile[f, i] = X[start + i, f]
    return probe


@kernel
def finite_probe(X, start, stop, zero):
    """``zero`` if rows ``X[start:stop]`` are all finite, NaN otherwise (the sum of ``x * zero``).

    One pass over the rows' values as they lie: a view of C-contiguous X, as
    every caller passes (numba copies the rows of any other layout).
    """
    probe = zero
    flat = X[start:stop].ravel()
    for q in range(flat.shape[0]):
        probe += flat[q] * zero
    return probe


@kernel_for_types
def _rows_to_columns(X, rows, tile, col):
    """Rows ``rows`` of X (eight indices) into ``tile``'s columns ``col .. col + 7``.

    Eight features at a time transposed in vector registers
    (``transpose.transpose8``; 1,000,000 x 16 float64: 3.95 us a tile
    before), the features past a multiple of eight one by one; rows of
    another layout than C (a view numba cannot load as vectors) eight
    values of a feature at a time.
    """
    if X.layout == "C" and tile.layout == "C":

        def by_vectors(X, rows, tile, col):
            n_features = X.shape[1]
            whole = n_features - n_features % 8
            for f0 in range(0, whole, 8):
                transpose8(X, rows, f0, tile, col)
            for f in range(whole, n_features):
                for q in range(8):
                    tile[f, col + q] = X[rows[q], f]

        return by_vectors

    def by_rows(X, rows, tile, col):
        r0, r1, r2, r3 = X[rows[0]], X[rows[1]], X[rows[2]], X[rows[3]]
        r4, r5, r6, r7 = X[rows[4]], X[rows[5]], X[rows[6]], X[rows[7]]
        for f in range(r0.shape[0]):
            t = tile[f, col : col + 8]
            t[0], t[1], t[2], t[3] = r0[f], r1[f], r2[f], r3[f]
            t[4], t[5], t[6], t[7] = r4[f], r5[f], r6[f], r7[f]

    return by_rows


@kernel
def gather_tile(X, start, rows, n_rows, tile):
    """Rows ``start + rows[q]`` of X into ``tile``'s first ``n_rows`` columns, transposed.

    For the few rows a bound algorithm's tests leave undecided. Rows of
    eight features or more are copied eight at a time (``_rows_to_columns``);
    fewer, one row at a time. Padding rows of ``tile`` stay as they are
    (zero, from ``new_tile``).
    """
    n_features = X.shape[1]
    full = n_rows - n_rows % 8 if n_features >= 8 else 0
    for q0 in range(0, full, 8):
        r = rows[q0 : q0 + 8]
        s = start
        eight = (s + r[0], s + r[1], s + r[2], s + r[3], s + r[4], s + r[5], s + r[6], s + r[7])
        _rows_to_columns(X, eight, tile, q0)
    for q in range(full, n_rows):
        r = start + rows[q]
        for f in range(n_features):
            tile[f, q] = X[r, f]


@kernel
def chunk_tile(X, tiles, fill_tiles, index, start, stop, scratch):
    """The tile of rows ``X[start:stop]``, and ``load_tile``'s finiteness probe.

    tiles : a copy of X kept in tiles across calls, this chunk's at ``index``
        (see ``lloyd._assign_rows``); or shape (0, 0, 0) to load X into
        ``scratch`` every time
    fill_tiles : bool, load X into ``tiles[index]`` (first use) rather than read it
    Returns ``(tile, probe)``; the probe is 0 unless X was read and held a
    NaN or infinity.
    """
    if tiles.shape[0] == 0:
        return scratch, load_tile(X, start, stop, scratch)
    tile = tiles[index]
    if fill_tiles:
        clear_padding(tile, X.shape[1])
        return tile, load_tile(X, start, stop, tile)
    return tile, tile.dtype.type(0.0)


# Kept stacks from this many bytes prefetch their next tile as they are scored;
# smaller ones stay in the cores' L2 (2 MB each here) from one pass to the next,
# where the prefetches would be instructions for nothing (digits: 0.6 MB).
PREFETCH_STACK_BYTES = 1 << 22

# Up to this many centres: beyond, scoring a tile takes long enough for the
# hardware's own prefetching to keep up (100,000 x 128 float32, k=100: 2%
# slower with the prefetches; 1,000,000 x 16, k=64: 1.16x faster).
PREFETCH_MAX_CLUSTERS = 64


@kernel
def prefetch_offset(tiles, n_clusters, fill_tiles, more):
    """``ahead`` for scoring a kept tile when the stack's next tile is scored next (``more``).

    A kept stack's tiles lie one after another: the offset is one tile's
    elements. 0 (nothing to fetch) without kept tiles, for a stack under
    ``PREFETCH_STACK_BYTES`` or more than ``PREFETCH_MAX_CLUSTERS``
    centres, while the tiles are being filled, or for a pass's last tile. A
    1,000,000 x 16 float32 stack is 69 MB, read once an iteration; with the
    next tile on its way, the reads overlap the scoring (d=16, k=32: an
    iteration 1.25-1.4x faster on two threads).
    """
    small = tiles.size * tiles.itemsize < PREFETCH_STACK_BYTES
    if small or n_clusters > PREFETCH_MAX_CLUSTERS or fill_tiles or not more:
        return np.int64(0)
    return np.int64(tiles.shape[1] * tiles.shape[2])


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
    added with one rounding: a BLAS GEMM's order, so ties break as there. In
    the centres' dtype: a float32 tile against float64 centres (float32
    k-means++) is upcast value by value, which gives the bits of a float64
    tile of the same rows.

    tile : (padded_width, CHUNK) IN
    centers : (n_clusters, padded_width) IN, zero-padded
    center_sq_norms : (n_clusters,) IN
    out : (CHUNK,) OUT, first ``n_rows`` entries written
    """
    width = tile.shape[0]
    up = centers.dtype.type
    minus2 = up(-2.0)
    c0 = centers[j, 0]
    c1 = centers[j, 1]
    c2 = centers[j, 2]
    c3 = centers[j, 3]
    for i in range(n_rows):
        out[i] = fma(
            c3, up(tile[3, i]), fma(c2, up(tile[2, i]), fma(c1, up(tile[1, i]), c0 * up(tile[0, i])))
        )
    for f in range(FEATURE_BLOCK, width, FEATURE_BLOCK):
        c0 = centers[j, f]
        c1 = centers[j, f + 1]
        c2 = centers[j, f + 2]
        c3 = centers[j, f + 3]
        for i in range(n_rows):
            t0, t1, t2, t3 = up(tile[f, i]), up(tile[f + 1, i]), up(tile[f + 2, i]), up(tile[f + 3, i])
            out[i] = fma(c3, t3, fma(c2, t2, fma(c1, t1, fma(c0, t0, out[i]))))
    cn = center_sq_norms[j]
    for i in range(n_rows):
        out[i] = fma(minus2, out[i], cn)


@kernel
def _running_min2(best, label, s0, s1, j0, j1):
    """Update a row's running (best score, label) with centres ``j0`` then ``j1``.

    Compared in index order with a strict ``<``: the first of equal scores wins.
    """
    better = s0 < best
    best = s0 if better else best
    label = np.int32(j0) if better else label
    better = s1 < best
    best = s1 if better else best
    label = np.int32(j1) if better else label
    return best, label


@kernel
def _running_min4(best, label, s0, s1, s2, s3, j):
    """Update a row's running (best score, label) with centres ``j .. j+3``."""
    best, label = _running_min2(best, label, s0, s1, j, j + 1)
    return _running_min2(best, label, s2, s3, j + 2, j + 3)


@kernel
def _blocks_fit(tile, n_rows):
    """Whether ``tile`` has the columns of ``n_rows`` rounded up to whole vectors of ``blocked``.

    Every tile ``new_tile`` and ``tile_stack`` make does, for up to CHUNK rows.
    """
    lanes = vector_lanes(tile)
    return -(-n_rows // lanes) * lanes <= tile.shape[1]


@kernel
def wide_dots(tile, n_rows, centers, js, out, ahead):
    """Dot products of every tile row with the centres ``js`` (a tuple; wide tiles).

    Each dot product is the sequential FMA chain over features of
    ``tile_center_scores``, in the centres' dtype (a float32 tile upcast as
    there), so it has exactly the same bits; register-blocked (``blocked``).

    out : (>= len(js), >= n_rows) OUT, row ``q`` for centre ``js[q]``
    ahead : ``prefetch_offset``, as ``tile_argmin``'s
    """
    if _blocks_fit(tile, n_rows):
        dots_rows(tile, n_rows, centers, js, out, ahead)
    else:  # a tile without spare columns (not made here)
        chain_dots(tile, n_rows, centers, js, out)


@kernel
def chain_dots(tile, n_rows, centers, js, out):
    """``wide_dots`` one centre at a time, a feature a sweep: the chains' reference order."""
    up = centers.dtype.type
    for q in range(len(js)):
        j = js[q]
        for i in range(n_rows):
            out[q, i] = centers[j, 0] * up(tile[0, i])
        for f in range(1, tile.shape[0]):
            c = centers[j, f]
            for i in range(n_rows):
                out[q, i] = fma(c, up(tile[f, i]), out[q, i])


@kernel
def new_scores(dtype):
    """Scratch for ``tile_argmin`` and ``tile_top2``: one row of scores per centre of a block."""
    return _aligned_empty(4, CHUNK + _TILE_ROW_PAD, dtype)


@kernel
def _narrow_block(centers, center_sq_norms, j):
    """Centres ``j .. j+3`` of a narrow tile's width and their squared norms, as scalars."""
    cs, norms = centers, center_sq_norms
    return (
        (cs[j, 0], cs[j, 1], cs[j, 2], cs[j, 3]),
        (cs[j + 1, 0], cs[j + 1, 1], cs[j + 1, 2], cs[j + 1, 3]),
        (cs[j + 2, 0], cs[j + 2, 1], cs[j + 2, 2], cs[j + 2, 3]),
        (cs[j + 3, 0], cs[j + 3, 1], cs[j + 3, 2], cs[j + 3, 3]),
        (norms[j], norms[j + 1], norms[j + 2], norms[j + 3]),
    )


@kernel
def _narrow_dot(c, t0, t1, t2, t3, four_features):
    """``x.c`` for a narrow row: the FMA chain of ``tile_center_scores``.

    With three features the fourth (zero) term is skipped: adding ``0 * 0``
    leaves the dot product's bits unchanged.
    """
    dot = fma(c[2], t2, fma(c[1], t1, c[0] * t0))
    if four_features:
        dot = fma(c[3], t3, dot)
    return dot


@kernel
def _narrow_scores4(block, tile, i, four_features):
    """Scores of narrow tile row ``i`` against the four centres of ``block``."""
    a, b, c, d, norms = block
    minus2 = tile.dtype.type(-2.0)
    t0, t1, t2, t3 = tile[0, i], tile[1, i], tile[2, i], tile[3, i]
    return (
        fma(minus2, _narrow_dot(a, t0, t1, t2, t3, four_features), norms[0]),
        fma(minus2, _narrow_dot(b, t0, t1, t2, t3, four_features), norms[1]),
        fma(minus2, _narrow_dot(c, t0, t1, t2, t3, four_features), norms[2]),
        fma(minus2, _narrow_dot(d, t0, t1, t2, t3, four_features), norms[3]),
    )


@kernel
def _narrow_argmin4(tile, n_rows, centers, center_sq_norms, j, four_features, best, labels):
    """Fold the centres ``j .. j+3`` into the running argmin of a narrow tile (d <= 4).

    Four centres per sweep share the loads of each row and of the running best;
    the scores are those of ``tile_center_scores``.
    """
    block = _narrow_block(centers, center_sq_norms, j)
    for i in range(n_rows):
        s0, s1, s2, s3 = _narrow_scores4(block, tile, i, four_features)
        best[i], labels[i] = _running_min4(best[i], labels[i], s0, s1, s2, s3, j)


@kernel
def _push(best, second, label, s, j):
    """Fold score ``s`` of centre ``j`` into a row's (best, second best, label).

    Strict ``<`` in index order, as the argmin: the first of equal scores wins.
    """
    better = s < best
    second = best if better else min(second, s)
    best = s if better else best
    label = np.int32(j) if better else label
    return best, second, label


@kernel
def _push4(best, second, label, s0, s1, s2, s3, j):
    """``_push`` the scores of centres ``j .. j+3`` in order."""
    best, second, label = _push(best, second, label, s0, j)
    best, second, label = _push(best, second, label, s1, j + 1)
    best, second, label = _push(best, second, label, s2, j + 2)
    return _push(best, second, label, s3, j + 3)


@kernel
def tile_top2(tile, n_rows, n_features, centers, center_sq_norms, scores, best, second, labels, ahead):
    """Best and second-best score of every tile row, and the best centre.

    The scores and the labels are those of ``tile_argmin`` (same bits, same
    tie-breaking); the second-best score is what bound-based algorithms need
    for a row's lower bound. Arguments as ``tile_argmin``, plus

    second : (CHUNK,) OUT, the second-lowest score (inf with one centre)
    """
    n_clusters = centers.shape[0]
    narrow = tile.shape[0] == FEATURE_BLOCK
    if not narrow and _blocks_fit(tile, n_rows):
        top2_rows(tile, n_rows, centers, center_sq_norms, best, second, labels, ahead)
        return
    for i in range(n_rows):
        best[i] = np.inf
        second[i] = np.inf
        labels[i] = 0
    j = np.int64(0)
    while narrow and j + 4 <= n_clusters:
        block = _narrow_block(centers, center_sq_norms, j)
        for i in range(n_rows):
            s0, s1, s2, s3 = _narrow_scores4(block, tile, i, n_features == 4)
            best[i], second[i], labels[i] = _push4(best[i], second[i], labels[i], s0, s1, s2, s3, j)
        j += 4
    # The narrow tile's last centres, or a wide tile without spare columns.
    for jr in range(j, n_clusters):
        tile_center_scores(tile, n_rows, centers, center_sq_norms, jr, scores[0])
        for i in range(n_rows):
            best[i], second[i], labels[i] = _push(best[i], second[i], labels[i], scores[0, i], jr)


@kernel
def tile_argmin(tile, n_rows, n_features, centers, center_sq_norms, scores, best, labels, ahead):
    """Nearest centre of every tile row (first one on ties, as scikit-learn).

    Centres are compared in index order with a strict ``<``, so the first of
    equal scores wins.

    tile : (padded_width, CHUNK) IN
    centers : (n_clusters, padded_width) IN, zero-padded
    center_sq_norms : (n_clusters,) IN
    scores : (4, >= CHUNK) scratch, from ``new_scores``
    best : (CHUNK,) OUT, the winning score ``||c||^2 - 2 x.c``
    labels : (CHUNK,) int32 OUT
    ahead : int, ``prefetch_offset``: the next tile of a kept stack, fetched
        into L2 as this one is scored (wide tiles), or 0
    """
    n_clusters = centers.shape[0]
    width = tile.shape[0]
    if width > FEATURE_BLOCK and _blocks_fit(tile, n_rows):
        # Wide rows: register-blocked, centres in index order (``blocked``).
        argmin_rows(tile, n_rows, centers, center_sq_norms, best, labels, ahead)
        return
    minus2 = tile.dtype.type(-2.0)
    for i in range(n_rows):
        best[i] = np.inf
        labels[i] = 0
    # Typed int64 from the start: a literal 0 would compile the helpers twice.
    j = np.int64(0)
    if width == FEATURE_BLOCK:
        # d <= 4: score and select in registers, nothing goes through memory.
        while j + 4 <= n_clusters:
            _narrow_argmin4(tile, n_rows, centers, center_sq_norms, j, n_features == 4, best, labels)
            j += 4
        for jr in range(j, n_clusters):
            j = jr
            c0, c1, c2, c3 = centers[j, 0], centers[j, 1], centers[j, 2], centers[j, 3]
            cn = center_sq_norms[j]
            jj = np.int32(j)
            for i in range(n_rows):
                dot = fma(c3, tile[3, i], fma(c2, tile[2, i], fma(c1, tile[1, i], c0 * tile[0, i])))
                s = fma(minus2, dot, cn)
                b = best[i]
                better = s < b
                best[i] = s if better else b
                labels[i] = jj if better else labels[i]
        return
    # Wide rows without spare columns (a tile not made here): one centre a sweep.
    for jr in range(n_clusters):
        tile_center_scores(tile, n_rows, centers, center_sq_norms, jr, scores[0])
        jj = np.int32(jr)
        for i in range(n_rows):
            better = scores[0, i] < best[i]
            best[i] = scores[0, i] if better else best[i]
            labels[i] = jj if better else labels[i]
