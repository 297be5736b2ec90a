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
depend on where the arrays lie in memory either. Distances are taken from
the differences, not from the expansion ``|x|^2 + |y|^2 - 2 x.y``, and
summed in float64.

Memory: ``out`` (n x k), and per task a few buffers of a block's length.
"""

import numpy as np
from numba import prange

from ._jit import FEATURE_BLOCK, ordered_kernel, ordered_parallel_kernel

# Rows per block: long enough rows of a tile to pay for a row's calls, few
# enough for a tile's buffers to stay in L2, and at least this many blocks
# for the threads to share. A function of n alone: the bits never depend on
# the thread count.
MAX_BLOCK = 2048
MIN_BLOCK = 128
MIN_BLOCKS = 16


def block_rows(n_samples):
    """The rows per block for ``n_samples`` rows (a multiple of 64)."""
    rows = -(-n_samples // MIN_BLOCKS)
    return min(MAX_BLOCK, max(MIN_BLOCK, -(-rows // 64) * 64))


@ordered_kernel
def _pair(round_, slot, n_slots):
    """The two blocks of ``slot`` in ``round_`` of the circle method over ``n_slots`` (even) blocks."""
    last = n_slots - 1
    if slot == 0:
        return last, round_
    return (round_ + slot) % last, (round_ - slot + last) % last


@ordered_kernel
def _distances(XT, i, j_start, j_stop, weight, out):
    """``out[t]``: the distance from row ``i`` to row ``j_start + t``, times ``weight``.

    One array written per loop: LLVM vectorises it behind a few run-time
    overlap checks (with more, it keeps the loop scalar).
    """
    width = XT.shape[0]
    m = j_stop - j_start
    p0, p1, p2, p3 = XT[0, i], XT[1, i], XT[2, i], XT[3, i]
    if width == FEATURE_BLOCK:
        # d <= 4: the squared distance in registers.
        for t in range(m):
            j = j_start + t
            a, b, c, e = p0 - XT[0, j], p1 - XT[1, j], p2 - XT[2, j], p3 - XT[3, j]
            out[t] = np.sqrt(a * a + b * b + c * c + e * e) * weight
        return
    for t in range(m):
        j = j_start + t
        a, b, c, e = p0 - XT[0, j], p1 - XT[1, j], p2 - XT[2, j], p3 - XT[3, j]
        out[t] = a * a + b * b + c * c + e * e
    for f in range(FEATURE_BLOCK, width, FEATURE_BLOCK):
        p0, p1, p2, p3 = XT[f, i], XT[f + 1, i], XT[f + 2, i], XT[f + 3, i]
        for t in range(m):
            j = j_start + t
            a, b, c, e = p0 - XT[f, j], p1 - XT[f + 1, j], p2 - XT[f + 2, j], p3 - XT[f + 3, j]
            out[t] += a * a + b * b + c * c + e * e
    for t in range(m):
        out[t] = np.sqrt(out[t]) * weight


@ordered_kernel
def _sum(values, start, stop):
    """``values[start:stop].sum()`` in a fixed order: eight running sums, then a tree."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    t = start
    while t + 8 <= stop:
        a0 += values[t]
        a1 += values[t + 1]
        a2 += values[t + 2]
        a3 += values[t + 3]
        a4 += values[t + 4]
        a5 += values[t + 5]
        a6 += values[t + 6]
        a7 += values[t + 7]
        t += 8
    while t < stop:
        a0 += values[t]
        t += 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@ordered_kernel
def _add_both(col, offset, first, second, m):
    """``col[offset + t] += first[t] + second[t]``."""
    for t in range(m):
        col[offset + t] += first[t] + second[t]


@ordered_kernel
def _tile(XT, labels, a_start, a_stop, b_start, b_stop, diagonal, out, col, buf0, buf1):
    """Add the distances between the rows of block a and block b to both rows' sums.

    ``diagonal``: a and b are one block, whose pairs ``i < j`` are taken. The
    rows of a are taken two at a time within each run of one cluster (a
    last odd row paired with itself, its copy's distances weighted 0); the
    distances go to a's row sums run by run of b's clusters, and to b's rows
    through ``col``, added to their sums at the end of each of a's runs.
    """
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
        for i0 in range(run_start, run_stop, 2):
            has_pair = i0 + 1 < run_stop
            i1 = i0 + 1 if has_pair else i0
            # On the diagonal the pairs start at i0 + 1: row i1's first is
            # itself (distance 0), and its pair with i0 is i0's.
            j_start = i0 + 1 if diagonal else b_start
            if j_start >= b_stop:
                continue
            m = b_stop - j_start
            _distances(XT, i0, j_start, b_stop, 1.0, buf0)
            _distances(XT, i1, j_start, b_stop, 1.0 if has_pair else 0.0, buf1)
            _add_both(col, j_start - b_start, buf0, buf1, m)
            for r in range(n_runs):
                j, j_run = max(runs[r], j_start), runs[r + 1]
                if j < j_run:
                    c = labels[j]
                    out[i0, c] += _sum(buf0, j - j_start, j_run - j_start)
                    if has_pair:
                        out[i1, c] += _sum(buf1, j - j_start, j_run - j_start)
        for t in range(b_stop - b_start):
            out[b_start + t, cluster] += col[t]
        run_start = run_stop


@ordered_kernel
def _run_tile(XT, labels, block, a, b, diagonal, out):
    n = labels.shape[0]
    col = np.empty(block)
    buf0 = np.empty(block)
    buf1 = np.empty(block)
    a_start, b_start = a * block, b * block
    a_stop, b_stop = min(a_start + block, n), min(b_start + block, n)
    _tile(XT, labels, a_start, a_stop, b_start, b_stop, diagonal, out, col, buf0, buf1)


@ordered_parallel_kernel
def cluster_distance_sums(XT, labels, block, out):
    """``out[i, c]``: the summed distances from row ``i`` to the rows of cluster ``c``.

    XT : (padded_width, n_samples) float64 IN, the rows sorted by cluster,
        feature-major, zero-padded to a multiple of ``FEATURE_BLOCK`` rows
    labels : (n_samples,) int64 IN, non-decreasing
    block : rows per block, ``block_rows(n_samples)``
    out : (n_samples, n_clusters) float64 OUT, zeroed by the caller

    The same bits for any number of threads (see the module's docstring).
    """
    n = labels.shape[0]
    n_blocks = -(-n // block)
    n_slots = n_blocks + n_blocks % 2
    for round_ in range(n_slots - 1):
        for slot in prange(n_slots // 2):
            a, b = _pair(round_, slot, n_slots)
            if a < n_blocks and b < n_blocks:
                _run_tile(XT, labels, block, min(a, b), max(a, b), False, out)
    for a in prange(n_blocks):
        _run_tile(XT, labels, block, a, a, True, out)
