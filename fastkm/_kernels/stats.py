"""numpy's reductions with numpy's exact rounding: column statistics, sums, squared norms.

scikit-learn centres X on its column means and derives the tolerance from the
column variances, both with numpy reductions. For a C-ordered array with two or
more columns numpy reduces axis 0 one row at a time, in the data type, so a
plain loop without fastmath (every operation rounded in turn) gives the same
bits; the centred data, and so every distance and tie, match scikit-learn's.
These loops are memory-bound; numpy's version allocates a copy of X for the
deviations, which is what makes it slow.
"""

import numpy as np
from numba import prange

from ._jit import exact_kernel, exact_parallel_kernel


@exact_kernel
def column_sums(X):
    """``X.sum(axis=0)`` in X's dtype, rows added in order.

    X : (n_samples, n_features) IN, C-contiguous, n_features >= 2
    """
    n_samples, n_features = X.shape
    sums = np.zeros(n_features, dtype=X.dtype)
    for i in range(n_samples):
        for f in range(n_features):
            sums[f] += X[i, f]
    return sums


@exact_kernel
def center_columns(X, means, out, measure_rows):
    """``out = X - means``; return the columns' variances and the largest row's squared norm.

    The variances are ``np.var``'s: its deviations' squares, ``((X - means) ** 2).sum(0)``,
    each term rounded as numpy rounds it, divided by the row count as
    ``np.true_divide(squares, np.intp(n_samples))`` divides them (in float64,
    then rounded to X's dtype). ``out`` may be X itself (in place);
    otherwise the copy costs no pass of its own. The largest squared norm
    of a centred row (summed in float64) comes on the way if
    ``measure_rows`` (else 0), for the bound-based algorithms' rounding
    margin: 3 ms on 1,000,000 x 16 where a pass of its own took 7.

    X : (n_samples, n_features) IN, C-contiguous, n_features >= 2
    means : (n_features,) IN
    out : (n_samples, n_features) OUT, C-contiguous, may be X

    Returns
    -------
    variances : (n_features,) array of X's dtype
    largest : float
    """
    n_samples, n_features = X.shape
    squares = np.zeros(n_features, dtype=X.dtype)
    largest = 0.0
    for i in range(n_samples):
        # Two loops, not one: the fused loop vectorised 1.5x slower.
        for f in range(n_features):
            out[i, f] = X[i, f] - means[f]
        if measure_rows:
            row = 0.0
            for f in range(n_features):
                deviation = out[i, f]
                squares[f] += deviation * deviation
                row += np.float64(deviation) * np.float64(deviation)
            # A select, not max(): numba's max branches on NaN.
            largest = row if row > largest else largest
        else:
            for f in range(n_features):
                deviation = out[i, f]
                squares[f] += deviation * deviation
    for f in range(n_features):
        squares[f] = np.float64(squares[f]) / np.float64(n_samples)
    return squares, largest


@exact_parallel_kernel
def centered_rows(X, means, out, measure_rows):
    """``out = X - means`` by blocks of rows in parallel; the largest centred row's squared norm.

    ``center_columns``'s copy and row norms (the same operations, so the
    same bits), for large X: a fresh ``out`` is faulted in and written by
    both threads (1,000,000 x 16: ``center_columns`` took 32 ms with a
    fresh ``out``, 13 of them its pages' first touch), and
    ``column_squares`` then reads it once for the columns' sums, which
    numpy adds row after row.

    X : (n_samples, n_features) IN, C-contiguous
    means : (n_features,) IN
    out : (n_samples, n_features) OUT, C-contiguous, may be X
    Returns the largest squared norm (0 without ``measure_rows``).
    """
    n_samples, n_features = X.shape
    n_blocks = -(-n_samples // _CENTERED_BLOCK)
    block_largest = np.zeros(n_blocks)
    for block in prange(n_blocks):
        start = block * _CENTERED_BLOCK
        largest = 0.0
        for i in range(start, min(start + _CENTERED_BLOCK, n_samples)):
            for f in range(n_features):
                out[i, f] = X[i, f] - means[f]
            if measure_rows:
                row = 0.0
                for f in range(n_features):
                    row += np.float64(out[i, f]) * np.float64(out[i, f])
                largest = row if row > largest else largest
        block_largest[block] = largest
    largest = 0.0
    for block in range(n_blocks):
        largest = block_largest[block] if block_largest[block] > largest else largest
    return largest


# Rows a task of ``centered_rows`` centres.
_CENTERED_BLOCK = 4096


@exact_kernel
def column_squares(centered):
    """The squared deviations' sums ``center_columns`` divides into variances, from centred rows."""
    n_samples, n_features = centered.shape
    squares = np.zeros(n_features, dtype=centered.dtype)
    for i in range(n_samples):
        for f in range(n_features):
            deviation = centered[i, f]
            squares[f] += deviation * deviation
    return squares


# numpy adds up to this many values of a contiguous run in one block, eight
# running sums wide; a longer run it halves, and adds the halves' sums.
_PAIRWISE_BLOCK = 128


@exact_kernel
def _pairwise_block(values, start, n):
    """numpy's sum of ``values[start:start + n]``, ``n <= _PAIRWISE_BLOCK``."""
    if n < 8:
        total = values.dtype.type(0.0)
        for i in range(start, start + n):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    i = start + 8
    end = start + n - n % 8
    while i < end:
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < start + n:
        total += values[i]
        i += 1
    return total


@exact_kernel
def numpy_sum(values):
    """``values.sum()`` of a contiguous 1-d array, bit for bit as numpy adds it.

    numpy's pairwise summation: a run of at most 128 values in one block,
    eight running sums wide; a longer run is cut in two (the first part the
    half rounded down to a multiple of eight) and the two parts' sums added.
    The cuts are walked here with a stack instead of recursion.
    """
    n = values.shape[0]
    if n <= _PAIRWISE_BLOCK:
        return _pairwise_block(values, 0, n)
    depth = 64
    starts = np.empty(depth, dtype=np.int64)
    sizes = np.empty(depth, dtype=np.int64)
    stage = np.zeros(depth, dtype=np.int64)  # 0: left part next, 1: right part next, 2: add
    partial = np.empty(depth, dtype=values.dtype)  # the parts' sums, last in on top
    top, n_partial = 0, 0
    starts[0], sizes[0] = 0, n
    while top >= 0:
        size = sizes[top]
        if size <= _PAIRWISE_BLOCK:
            partial[n_partial] = _pairwise_block(values, starts[top], size)
            n_partial += 1
            top -= 1
            continue
        half = size // 2
        half -= half % 8
        if stage[top] < 2:
            first = stage[top] == 0
            stage[top] += 1
            top += 1
            starts[top] = starts[top - 1] if first else starts[top - 1] + half
            sizes[top] = half if first else size - half
            stage[top] = 0
        else:
            n_partial -= 1
            partial[n_partial - 1] = partial[n_partial - 1] + partial[n_partial]
            top -= 1
    return partial[0]


@exact_kernel
def _add_to_lane(a0, a1, a2, a3, lane, value):
    """Add ``value`` to accumulator ``lane`` of four."""
    if lane == 0:
        a0 += value
    elif lane == 1:
        a1 += value
    elif lane == 2:
        a2 += value
    else:
        a3 += value
    return a0, a1, a2, a3


@exact_kernel
def centre_squared_norms(centers):
    """scikit-learn's ``row_norms(centers, squared=True)``: ``np.einsum("ij,ij->i", c, c)``, bit for bit.

    scikit-learn labels a batch by ``||c||^2 - 2 x.c`` with these norms; a
    row whose two best scores differ in the last bit takes the centre these
    bits give. numpy's einsum (``sum_of_products_contig_contig_outstride0_two``
    at the x86-64 baseline) adds a row's squares in 16-byte vectors, 2 float64
    or 4 float32 lanes, lane ``l`` taking the elements ``l``, ``l + lanes``,
    ...; blocks of four vectors last vector first, then the rest in order,
    each product and each sum rounded (no FMA); then the lanes pairwise,
    ``(a0 + a1) + (a2 + a3)`` (float64's two empty lanes add zero).
    tests/test_minibatch.py holds this equal to numpy's einsum. (Lloyd's
    whole small runs use it too: ``small_lloyd.run``.)
    """
    n_clusters, n_features = centers.shape
    out = np.empty(n_clusters, dtype=centers.dtype)
    lanes = 16 // centers.itemsize
    block = 4 * lanes
    zero = centers.dtype.type(0.0)
    for j in range(n_clusters):
        a0, a1, a2, a3 = zero, zero, zero, zero
        start = 0
        while start + block <= n_features:
            for vector in range(3, -1, -1):
                for lane in range(lanes):
                    x = centers[j, start + vector * lanes + lane]
                    a0, a1, a2, a3 = _add_to_lane(a0, a1, a2, a3, lane, x * x)
            start += block
        for f in range(start, n_features):
            x = centers[j, f]
            a0, a1, a2, a3 = _add_to_lane(a0, a1, a2, a3, (f - start) % lanes, x * x)
        out[j] = (a0 + a1) + (a2 + a3)
    return out
