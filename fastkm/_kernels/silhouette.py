"""Each row's summed distances to every cluster's rows, for the silhouette: no n x n matrix.

The rows come sorted by cluster (``labels`` non-decreasing) and stored
feature-major, ``XT`` of shape (padded width, n), zero-padded to a multiple of
``FEATURE_BLOCK`` features. ``out[i, c]`` is the sum of the Euclidean
distances from row ``i`` to the rows of cluster ``c`` (itself at distance 0).

Each distance is computed once, for a pair of rows, and added to both rows'
sums: the rows are cut into blocks of ``BLOCK`` and every pair of blocks is a
tile. The tiles are scheduled in rounds (the circle method of a round-robin
tournament) in which every block appears at most once, so a round's tiles run
in parallel without sharing a row; then one round of the blocks with
themselves. Every sum is therefore made in one order, fixed by the blocks,
whatever the number of threads. Distances are taken from the differences,
not from the expansion ``|x|^2 + |y|^2 - 2 x.y``, and summed in float64.

Memory: ``out`` (n x k), and per task a few buffers of ``BLOCK`` values.
"""

import numpy as np
from numba import prange

from ._jit import FEATURE_BLOCK, kernel, parallel_kernel

# Rows per block: a tile's columns (their squared distances, their sums) stay in L1.
BLOCK = 256


@kernel
def _pair(round_, slot, n_slots):
    """The two blocks of ``slot`` in ``round_`` of the circle method over ``n_slots`` (even) blocks."""
    last = n_slots - 1
    if slot == 0:
        return last, round_
    return (round_ + slot) % last, (round_ - slot + last) % last


@kernel
def _squared_distances(XT, i0, i1, j_start, j_stop, buf0, buf1):
    """Squared distances from rows ``i0`` and ``i1`` to rows ``j_start:j_stop``, into the buffers."""
    width = XT.shape[0]
    m = j_stop - j_start
    p0, p1, p2, p3 = XT[0, i0], XT[1, i0], XT[2, i0], XT[3, i0]
    q0, q1, q2, q3 = XT[0, i1], XT[1, i1], XT[2, i1], XT[3, i1]
    for t in range(m):
        j = j_start + t
        y0, y1, y2, y3 = XT[0, j], XT[1, j], XT[2, j], XT[3, j]
        a, b, c, e = p0 - y0, p1 - y1, p2 - y2, p3 - y3
        buf0[t] = a * a + b * b + c * c + e * e
        a, b, c, e = q0 - y0, q1 - y1, q2 - y2, q3 - y3
        buf1[t] = a * a + b * b + c * c + e * e
    for f in range(FEATURE_BLOCK, width, FEATURE_BLOCK):
        p0, p1, p2, p3 = XT[f, i0], XT[f + 1, i0], XT[f + 2, i0], XT[f + 3, i0]
        q0, q1, q2, q3 = XT[f, i1], XT[f + 1, i1], XT[f + 2, i1], XT[f + 3, i1]
        for t in range(m):
            j = j_start + t
            y0, y1, y2, y3 = XT[f, j], XT[f + 1, j], XT[f + 2, j], XT[f + 3, j]
            a, b, c, e = p0 - y0, p1 - y1, p2 - y2, p3 - y3
            buf0[t] += a * a + b * b + c * c + e * e
            a, b, c, e = q0 - y0, q1 - y1, q2 - y2, q3 - y3
            buf1[t] += a * a + b * b + c * c + e * e


@kernel
def _tile(XT, labels, a_start, a_stop, b_start, b_stop, diagonal, out, col, buf0, buf1):
    """Add the distances between the rows of block a and block b to both rows' sums.

    ``diagonal``: a and b are one block, whose pairs ``i < j`` are taken. The
    rows of a are taken two at a time within each run of one cluster (a
    last odd row paired with itself, its copy's sums dropped); the
    distances to b's rows go to a's row sums run by run of b's clusters,
    and to b's rows through ``col``, flushed at the end of each of a's runs.
    """
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
            w1 = 1.0 if has_pair else 0.0
            j_start = i0 + 1 if diagonal else b_start
            if j_start >= b_stop:
                continue
            narrow = XT.shape[0] == FEATURE_BLOCK
            if not narrow:
                _squared_distances(XT, i0, i1, j_start, b_stop, buf0, buf1)
            p0, p1, p2, p3 = XT[0, i0], XT[1, i0], XT[2, i0], XT[3, i0]
            q0, q1, q2, q3 = XT[0, i1], XT[1, i1], XT[2, i1], XT[3, i1]
            offset = j_start - b_start
            j = j_start
            while j < b_stop:
                c = labels[j]
                j_run = j + 1
                while j_run < b_stop and labels[j_run] == c:
                    j_run += 1
                s0 = 0.0
                s1 = 0.0
                # On the diagonal, j_start is i0 + 1: row i1's first pair is
                # itself (distance 0), and its pair with i0 is i0's.
                if narrow:
                    # d <= 4: the distances in registers, no buffer.
                    for t in range(j - j_start, j_run - j_start):
                        jj = j_start + t
                        y0, y1, y2, y3 = XT[0, jj], XT[1, jj], XT[2, jj], XT[3, jj]
                        a, b, c2, e = p0 - y0, p1 - y1, p2 - y2, p3 - y3
                        e0 = np.sqrt(a * a + b * b + c2 * c2 + e * e)
                        a, b, c2, e = q0 - y0, q1 - y1, q2 - y2, q3 - y3
                        e1 = np.sqrt(a * a + b * b + c2 * c2 + e * e) * w1
                        s0 += e0
                        s1 += e1
                        buf0[t] = e0 + e1
                    for t in range(j - j_start, j_run - j_start):
                        col[offset + t] += buf0[t]
                else:
                    for t in range(j - j_start, j_run - j_start):
                        e0 = np.sqrt(buf0[t])
                        e1 = np.sqrt(buf1[t]) * w1
                        s0 += e0
                        s1 += e1
                        col[offset + t] += e0 + e1
                out[i0, c] += s0
                if has_pair:
                    out[i1, c] += s1
                j = j_run
        for t in range(b_stop - b_start):
            out[b_start + t, cluster] += col[t]
        run_start = run_stop


@parallel_kernel
def cluster_distance_sums(XT, labels, out):
    """``out[i, c]``: the summed distances from row ``i`` to the rows of cluster ``c``.

    XT : (padded_width, n_samples) float64 IN, the rows sorted by cluster,
        feature-major, zero-padded to a multiple of ``FEATURE_BLOCK`` rows
    labels : (n_samples,) int64 IN, non-decreasing
    out : (n_samples, n_clusters) float64 OUT, zeroed by the caller

    The same bits for any number of threads (see the module's docstring).
    """
    n = labels.shape[0]
    n_blocks = -(-n // BLOCK)
    n_slots = n_blocks + n_blocks % 2
    for round_ in range(n_slots - 1):
        for slot in prange(n_slots // 2):
            a, b = _pair(round_, slot, n_slots)
            if a < n_blocks and b < n_blocks:
                lo, hi = min(a, b), max(a, b)
                _run_tile(XT, labels, lo, hi, False, out)
    for a in prange(n_blocks):
        _run_tile(XT, labels, a, a, True, out)


@kernel
def _run_tile(XT, labels, a, b, diagonal, out):
    n = labels.shape[0]
    col = np.empty(BLOCK)
    buf0 = np.empty(BLOCK)
    buf1 = np.empty(BLOCK)
    a_start, b_start = a * BLOCK, b * BLOCK
    a_stop, b_stop = min(a_start + BLOCK, n), min(b_start + BLOCK, n)
    _tile(XT, labels, a_start, a_stop, b_start, b_stop, diagonal, out, col, buf0, buf1)
