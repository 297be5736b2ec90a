"""Each row's summed distances to every cluster's rows, for the silhouette: no n x n matrix.

The rows come sorted by cluster (``labels`` non-decreasing) and stored
feature-major, ``XT`` of shape (padded width, n), zero-padded to a multiple of
``FEATURE_BLOCK`` features. ``out[i, c]`` is the sum of the Euclidean
distances from row ``i`` to the rows of cluster ``c`` (itself at distance 0).

Each distance is computed once, for a pair of rows, and added to both rows'
sums: the rows are cut into blocks (``block_rows``) and every pair of blocks
is a tile. The tiles are scheduled in rounds (the circle method of a round-robin
tournament) in which every block appears at most once, so a round's tiles run
in parallel without sharing a row; then one round of the blocks with
themselves. Every sum is made in one order, fixed by the blocks, whatever the
number of threads; and the kernels are compiled with ``_jit.ORDERED`` (no
reassociation), their sums spelled out (``_sum``), so that the bits do not
depend on where the arrays lie in memory either. Squared distances are
taken from the differences; on exact data (integers whose squared
distances float32 holds: the caller decides) from the expansion
``|x|^2 + |y|^2 - 2 x.y`` where that is exact too (given ``norms``), with
their square roots looked up where they are few (given ``roots``). The
squares are summed in XT's dtype (float64, or float32 on exact data) and
the distances in float64.

Memory: ``out`` (n x k), and per task a few buffers of a block's length.
"""

import numpy as np
from numba import prange

from ._jit import FEATURE_BLOCK, ordered_kernel, ordered_parallel_kernel

# Rows per block: long enough rows of a tile to pay for a row's calls, few
# enough for a tile's buffers to stay in L2, and at least this many blocks
# for the threads to share. A function of the shape alone: the bits never
# depend on the thread count.
MAX_BLOCK = 2048
MIN_BLOCK = 128
MIN_BLOCKS = 16

# Work (pairs times (padded features + PAIR_COST)) below which the sums are
# made on the calling thread, in blocks of SERIAL_BLOCK rows: about 6 ms here
# (digits: 1,797 x 64). Waking a sleeping thread costs more than it saves
# at that size in a virtual machine: a call made a millisecond after the
# process woke from a pause took 11 ms on two threads against 5 on one.
# PAIR_COST: a pair's fixed cost (its square root and sums) in features.
SERIAL_PAIR_WORK = 2**28
PAIR_COST = 48
SERIAL_BLOCK = 512


def serial_sized(n_samples, width):
    """Whether ``cluster_distance_sums`` runs on one thread for ``n_samples`` rows of ``width`` features."""
    return n_samples * (n_samples - 1) // 2 * (width + PAIR_COST) < SERIAL_PAIR_WORK


def block_rows(n_samples, width):
    """The rows per block for ``n_samples`` rows of ``width`` (padded) features, a multiple of 64.

    One thread takes larger blocks (``serial_sized``): fewer, longer calls.
    """
    if serial_sized(n_samples, width):
        return min(SERIAL_BLOCK, -(-n_samples // 64) * 64)
    rows = -(-n_samples // MIN_BLOCKS)
    return min(MAX_BLOCK, max(MIN_BLOCK, -(-rows // 64) * 64))


@ordered_kernel
def _pair(round_, slot, n_slots):
    """The two blocks of ``slot`` in ``round_`` of the circle method over ``n_slots`` (even) blocks."""
    last = n_slots - 1
    if slot == 0:
        return last, round_
    return (round_ + slot) % last, (round_ - slot + last) % last


# Rows of a block taken together: their distances to the other block share its loads.
ROWS = 4


@ordered_kernel
def _distances(XT, norms, roots, rows, weights, j_start, j_stop, squares, out):
    """``out[r, t]``: the distance from row ``rows[r]`` to row ``j_start + t``, times ``weights[r]``.

    ``ROWS`` rows at once, each of the other block's values loaded once for
    all of them. The squared distances are summed in ``squares`` (XT's
    dtype) feature by feature, one fused multiply-add each, in the same
    order vectorised or not (no reassociation): from the differences
    (``norms`` empty), or from the expansion (``_expanded_squares``); their
    square roots are taken in float64, or looked up in ``roots`` (float64,
    ``roots[v] = sqrt(v)``) unless it is empty.
    """
    m = j_stop - j_start
    if norms.shape[0] > 0:
        _expanded_squares(XT, norms, rows, j_start, j_stop, squares)
    else:
        _difference_squares(XT, rows, j_start, j_stop, squares)
    s0, s1, s2, s3 = squares[0], squares[1], squares[2], squares[3]
    w0, w1, w2, w3 = weights[0], weights[1], weights[2], weights[3]
    o0, o1, o2, o3 = out[0], out[1], out[2], out[3]
    if roots.shape[0] > 0:
        # Exact data: every squared distance an integer from 0 to len(roots) - 1,
        # its root looked up (np.sqrt's, the same bits) faster than taken.
        # Unsigned indices: no check for negative ones, so LLVM gathers.
        for t in range(m):
            o0[t] = roots[np.uint32(s0[t])] * w0
            o1[t] = roots[np.uint32(s1[t])] * w1
            o2[t] = roots[np.uint32(s2[t])] * w2
            o3[t] = roots[np.uint32(s3[t])] * w3
        return
    for t in range(m):
        o0[t] = np.sqrt(np.float64(s0[t])) * w0
        o1[t] = np.sqrt(np.float64(s1[t])) * w1
        o2[t] = np.sqrt(np.float64(s2[t])) * w2
        o3[t] = np.sqrt(np.float64(s3[t])) * w3


@ordered_kernel
def _difference_squares(XT, rows, j_start, j_stop, squares):
    """``squares[r, t]``: the squared distance from row ``rows[r]`` to row ``j_start + t``, by differences.

    The loops read and write one-dimensional views (a feature's row of XT,
    a row of ``squares``).
    """
    width = XT.shape[0]
    m = j_stop - j_start
    i0, i1, i2, i3 = rows[0], rows[1], rows[2], rows[3]
    s0, s1, s2, s3 = squares[0], squares[1], squares[2], squares[3]
    for t in range(m):
        s0[t] = 0.0
        s1[t] = 0.0
        s2[t] = 0.0
        s3[t] = 0.0
    for f in range(0, width, FEATURE_BLOCK):
        x0, x1, x2, x3 = XT[f], XT[f + 1], XT[f + 2], XT[f + 3]
        # Views from j_start, indexed by the loop's own counter: numba then
        # knows the index is not negative and drops its wraparound check,
        # which made LLVM gather the values one by one.
        v0, v1, v2, v3 = x0[j_start:j_stop], x1[j_start:j_stop], x2[j_start:j_stop], x3[j_start:j_stop]
        p0, p1, p2, p3 = x0[i0], x1[i0], x2[i0], x3[i0]
        q0, q1, q2, q3 = x0[i1], x1[i1], x2[i1], x3[i1]
        r0, r1, r2, r3 = x0[i2], x1[i2], x2[i2], x3[i2]
        u0, u1, u2, u3 = x0[i3], x1[i3], x2[i3], x3[i3]
        for t in range(m):
            y0, y1, y2, y3 = v0[t], v1[t], v2[t], v3[t]
            # acc += a * a, a chain of fused multiply-adds: the subtractions
            # and the FMAs go to different pipes.
            a, b, c, e = p0 - y0, p1 - y1, p2 - y2, p3 - y3
            acc = s0[t]
            acc += a * a
            acc += b * b
            acc += c * c
            acc += e * e
            s0[t] = acc
            a, b, c, e = q0 - y0, q1 - y1, q2 - y2, q3 - y3
            acc = s1[t]
            acc += a * a
            acc += b * b
            acc += c * c
            acc += e * e
            s1[t] = acc
            a, b, c, e = r0 - y0, r1 - y1, r2 - y2, r3 - y3
            acc = s2[t]
            acc += a * a
            acc += b * b
            acc += c * c
            acc += e * e
            s2[t] = acc
            a, b, c, e = u0 - y0, u1 - y1, u2 - y2, u3 - y3
            acc = s3[t]
            acc += a * a
            acc += b * b
            acc += c * c
            acc += e * e
            s3[t] = acc


@ordered_kernel
def _expanded_squares(XT, norms, rows, j_start, j_stop, squares):
    """``squares[r, t]``: the squared distance from row ``rows[r]`` to row ``j_start + t``, by expansion.

    For exact data only (integers, shifted to their column minima, whose
    ``norms[i] + norms[j]`` float32 holds: see ``metrics._silhouette``):
    ``norms[i] + norms[j] - 2 x_i . x_j``, started at the norms and brought
    down one product at a time, each partial sum an integer between the
    result and the start. A multiply-add a feature, where the differences
    take a subtraction and a multiply-add.
    """
    width = XT.shape[0]
    m = j_stop - j_start
    i0, i1, i2, i3 = rows[0], rows[1], rows[2], rows[3]
    s0, s1, s2, s3 = squares[0], squares[1], squares[2], squares[3]
    nj, n0, n1, n2, n3 = norms[j_start:j_stop], norms[i0], norms[i1], norms[i2], norms[i3]
    for t in range(m):
        s0[t] = n0 + nj[t]
        s1[t] = n1 + nj[t]
        s2[t] = n2 + nj[t]
        s3[t] = n3 + nj[t]
    for f in range(0, width, FEATURE_BLOCK):
        x0, x1, x2, x3 = XT[f], XT[f + 1], XT[f + 2], XT[f + 3]
        v0, v1, v2, v3 = x0[j_start:j_stop], x1[j_start:j_stop], x2[j_start:j_stop], x3[j_start:j_stop]
        # -2 x: exact, and in XT's dtype (a literal 2 would make it float64).
        p0, p1, p2, p3 = -(x0[i0] + x0[i0]), -(x1[i0] + x1[i0]), -(x2[i0] + x2[i0]), -(x3[i0] + x3[i0])
        q0, q1, q2, q3 = -(x0[i1] + x0[i1]), -(x1[i1] + x1[i1]), -(x2[i1] + x2[i1]), -(x3[i1] + x3[i1])
        r0, r1, r2, r3 = -(x0[i2] + x0[i2]), -(x1[i2] + x1[i2]), -(x2[i2] + x2[i2]), -(x3[i2] + x3[i2])
        u0, u1, u2, u3 = -(x0[i3] + x0[i3]), -(x1[i3] + x1[i3]), -(x2[i3] + x2[i3]), -(x3[i3] + x3[i3])
        for t in range(m):
            y0, y1, y2, y3 = v0[t], v1[t], v2[t], v3[t]
            acc = s0[t]
            acc += p0 * y0
            acc += p1 * y1
            acc += p2 * y2
            acc += p3 * y3
            s0[t] = acc
            acc = s1[t]
            acc += q0 * y0
            acc += q1 * y1
            acc += q2 * y2
            acc += q3 * y3
            s1[t] = acc
            acc = s2[t]
            acc += r0 * y0
            acc += r1 * y1
            acc += r2 * y2
            acc += r3 * y3
            s2[t] = acc
            acc = s3[t]
            acc += u0 * y0
            acc += u1 * y1
            acc += u2 * y2
            acc += u3 * y3
            s3[t] = acc


@ordered_kernel
def _sum(values, start, stop):
    """``values[start:stop].sum()`` in a fixed order: eight running sums, then a tree."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    end = start + (stop - start) // 8 * 8
    # The eight sums' values as eight strided views, indexed by the loop's
    # counter: no check for negative indices (which made this loop slow).
    v0, v1, v2, v3 = (
        values[start:end:8],
        values[start + 1 : end : 8],
        values[start + 2 : end : 8],
        values[start + 3 : end : 8],
    )
    v4, v5, v6, v7 = (
        values[start + 4 : end : 8],
        values[start + 5 : end : 8],
        values[start + 6 : end : 8],
        values[start + 7 : end : 8],
    )
    for e in range(v0.shape[0]):
        a0 += v0[e]
        a1 += v1[e]
        a2 += v2[e]
        a3 += v3[e]
        a4 += v4[e]
        a5 += v5[e]
        a6 += v6[e]
        a7 += v7[e]
    rest = values[end:stop]
    for t in range(rest.shape[0]):
        a0 += rest[t]
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@ordered_kernel
def _add_rows(col, offset, values, m):
    """``col[offset + t] += values[0, t] + ... + values[ROWS - 1, t]``."""
    target, v0, v1, v2, v3 = col[offset : offset + m], values[0], values[1], values[2], values[3]
    for t in range(m):  # views indexed by the counter: see _distances
        target[t] += (v0[t] + v1[t]) + (v2[t] + v3[t])


@ordered_kernel
def _tile(XT, norms, roots, labels, block, a, b, diagonal, out):
    """Add the distances between the rows of block a and block b to both rows' sums.

    ``diagonal``: a and b are one block, whose pairs ``i < j`` are taken. The
    rows of a are taken ``ROWS`` at a time within each run of one cluster (a
    run's last rows padded with its first, weighted 0); the distances go to
    a's row sums run by run of b's clusters, and to b's rows through
    ``col``, added to their sums at the end of each of a's runs. The
    buffers are the tile's own: tiles run in parallel.
    """
    n = labels.shape[0]
    col = np.empty(block)
    squares = np.empty((ROWS, block), dtype=XT.dtype)
    buf = np.empty((ROWS, block))
    rows = np.empty(ROWS, dtype=np.int64)
    weights = np.empty(ROWS)
    a_start, b_start = a * block, b * block
    a_stop, b_stop = min(a_start + block, n), min(b_start + block, n)
    # b's runs of one cluster: runs[r] to runs[r + 1].
    runs = np.empty(b_stop - b_start + 1, dtype=np.int64)
    runs[0] = b_start
    n_runs = 0
    for j in range(b_start + 1, b_stop):
        if labels[j] != labels[j - 1]:
            n_runs += 1
            runs[n_runs] = j
    n_runs += 1
    runs[n_runs] = b_stop
    run_start = a_start
    while run_start < a_stop:
        cluster = labels[run_start]
        run_stop = run_start + 1
        while run_stop < a_stop and labels[run_stop] == cluster:
            run_stop += 1
        for t in range(b_stop - b_start):
            col[t] = 0.0
        for i0 in range(run_start, run_stop, ROWS):
            for r in range(ROWS):
                taken = i0 + r < run_stop
                rows[r] = i0 + r if taken else i0
                weights[r] = 1.0 if taken else 0.0
            # On the diagonal the pairs start at i0 + 1; row i0 + r's first r
            # are itself and rows before it, whose own sweep took them.
            j_start = i0 + 1 if diagonal else b_start
            if j_start >= b_stop:
                continue
            m = b_stop - j_start
            _distances(XT, norms, roots, rows, weights, j_start, b_stop, squares, buf)
            if diagonal:
                for r in range(1, ROWS):
                    for t in range(min(r, m)):
                        buf[r, t] = 0.0
            _add_rows(col, j_start - b_start, buf, m)
            for q in range(n_runs):
                j, j_run = max(runs[q], j_start), runs[q + 1]
                if j < j_run:
                    c = labels[j]
                    for r in range(ROWS):
                        if weights[r] != 0.0:
                            out[rows[r], c] += _sum(buf[r], j - j_start, j_run - j_start)
        for t in range(b_stop - b_start):
            out[b_start + t, cluster] += col[t]
        run_start = run_stop


def n_rounds(n_samples, block):
    """The rounds of ``cluster_distance_sums`` for ``n_samples`` rows in blocks of ``block``."""
    n_blocks = -(-n_samples // block)
    return n_blocks + n_blocks % 2


@ordered_parallel_kernel
def cluster_distance_sums(XT, norms, roots, labels, block, out, first_round, stop_round):
    """Rounds ``first_round`` to ``stop_round - 1`` of the distances summed from each row to each cluster.

    ``out[i, c]`` is the sum of the distances from row ``i`` to the rows of cluster ``c``.

    XT : (padded_width, n_samples) float64 or float32 IN, the rows sorted by
        cluster, feature-major, zero-padded to a multiple of ``FEATURE_BLOCK`` rows
    norms : (n_samples,) or (0,) of XT's dtype IN, the rows' squared norms
        (squared distances by expansion: exact data only), or empty (by differences)
    roots : (max squared distance + 1,) or (0,) float64 IN, ``sqrt(arange(...))``
        (exact data only), or empty (``np.sqrt``)
    labels : (n_samples,) int64 IN, non-decreasing
    block : rows per block, ``block_rows(n_samples, padded_width)``
    out : (n_samples, n_clusters) float64 INOUT, zeroed by the caller before round 0
    first_round, stop_round : of ``n_rounds(n_samples, block)``: the circle
        method's rounds, then the blocks with themselves. The caller runs
        them in order, in one call or several (Ctrl-C is answered between calls).

    The same bits for any number of threads, and however the rounds are
    split between calls (see the module's docstring).
    """
    n = labels.shape[0]
    n_blocks = -(-n // block)
    n_slots = n_blocks + n_blocks % 2
    for round_ in range(first_round, stop_round):
        if round_ < n_slots - 1:
            for slot in prange(n_slots // 2):
                a, b = _pair(round_, slot, n_slots)
                if a < n_blocks and b < n_blocks:
                    _tile(XT, norms, roots, labels, block, min(a, b), max(a, b), False, out)
        else:
            for a in prange(n_blocks):
                _tile(XT, norms, roots, labels, block, a, a, True, out)


# Several labellings of the same rows (a k sweep): each distance is taken
# once and added to its column's sums under every labelling. No symmetry
# here: a tile adds only to its columns, contiguously, so that a labelling
# costs a few vector adds a distance rather than a scattered one a side.


def labellings_block_rows(n_samples):
    """Columns per block for ``labellings_distance_sums``: a multiple of 64, about 32 blocks when n allows."""
    columns = -(-n_samples // 32)
    return min(MAX_BLOCK, max(64, -(-columns // 64) * 64))


@ordered_kernel
def _add_to_clusters(sums_t, labels, offsets, rows, buf, j_start, m):
    """``sums_t[offsets[q] + labels[q, rows[r]], j_start + t] += buf[r, t]``, all q, r and t < m."""
    for q in range(labels.shape[0]):
        labelling, offset = labels[q], offsets[q]
        for r in range(ROWS):
            target, values = sums_t[offset + labelling[rows[r]], j_start : j_start + m], buf[r]
            for t in range(m):  # views indexed by the counter: see _distances
                target[t] += values[t]


@ordered_parallel_kernel
def labellings_distance_sums(XT, norms, roots, labels, offsets, block, sums_t, first_block, stop_block):
    """``sums_t[offsets[q] + c, j]``: the summed distances from row ``j`` to cluster ``c`` of labelling ``q``.

    XT : (padded_width, n_samples) float64 or float32 IN, feature-major, zero-padded to
        a multiple of ``FEATURE_BLOCK`` rows
    norms, roots : as ``cluster_distance_sums``
    labels : (n_labellings, n_samples) int64 IN, labelling q's clusters 0 .. k_q - 1
    offsets : (n_labellings,) int64 IN, where labelling q's clusters start in sums_t
    block : columns per block, ``labellings_block_rows(n_samples)``
    sums_t : (sum of k_q, n_samples) float64 OUT, zeroed by the caller
    first_block, stop_block : the blocks of columns to run (of
        ``-(-n_samples // block)``), in one call or several

    Every column's sums are made by one task, over the rows in order, so
    the bits are the same for any number of threads and any split of the
    blocks between calls.
    """
    n = XT.shape[1]
    for b in prange(first_block, stop_block):
        squares = np.empty((ROWS, block), dtype=XT.dtype)
        buf = np.empty((ROWS, block))
        rows = np.empty(ROWS, dtype=np.int64)
        weights = np.empty(ROWS)
        j_start = b * block
        j_stop = min(j_start + block, n)
        for i0 in range(0, n, ROWS):
            for r in range(ROWS):
                taken = i0 + r < n
                rows[r] = i0 + r if taken else i0
                weights[r] = 1.0 if taken else 0.0
            _distances(XT, norms, roots, rows, weights, j_start, j_stop, squares, buf)
            _add_to_clusters(sums_t, labels, offsets, rows, buf, j_start, j_stop - j_start)
