"""Exact duplicate rows: find them, so that a fit can run on each row once.

Colour data repeats itself: china.jpg's 273,280 pixels hold 96,615 colours.
Lloyd's iterates on the distinct rows, each weighted by the total weight of
its copies, are those on all rows (duplicates always share a label), so the
solver may run on the distinct rows alone. Rows are compared by their bit
patterns, through an unsigned-integer view of X: equal bits, equal rows. Two
rows that differ only in the sign of a zero count as distinct, which costs
nothing but a missed merge.

The table is an open-addressing hash table, filled in row order, serially:
the distinct rows come out in order of first occurrence, whatever the
thread count.
"""

import numpy as np

from ._jit import kernel

# Multipliers of the splitmix64 finaliser: every input bit reaches every
# output bit, so low bits of the hash (the table slot) depend on all features.
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@kernel
def _row_hash(bits, i):
    h = np.uint64(bits.shape[1])
    for f in range(bits.shape[1]):
        h = (h ^ np.uint64(bits[i, f])) * _MIX1
        h ^= h >> np.uint64(29)
    h *= _MIX2
    return h ^ (h >> np.uint64(32))


@kernel
def _same_row(bits, i, distinct, u):
    for f in range(bits.shape[1]):
        if bits[i, f] != distinct[u, f]:
            return False
    return True


@kernel
def distinct_rows(bits, distinct, inverse):
    """Number the distinct rows of ``bits`` in order of first occurrence.

    bits : (n_samples, n_features) IN, unsigned integers (X viewed as such);
        n_samples < 2**31
    distinct : (n_samples, n_features) OUT, bits' dtype; the distinct rows
        in its first rows, up to the returned count
    inverse : (n_samples,) OUT, int64; row ``i`` is distinct row ``inverse[i]``

    Returns the number of distinct rows.
    """
    n_samples, n_features = bits.shape
    size = 1
    while size < 2 * n_samples:
        size *= 2
    mask = np.uint64(size - 1)
    # int32 slots: half the memory traffic of int64 on a table larger than L2.
    table = np.full(size, -1, dtype=np.int32)
    n_distinct = 0
    for i in range(n_samples):
        slot = _row_hash(bits, i) & mask
        while True:
            u = table[slot]
            if u < 0:
                table[slot] = n_distinct
                for f in range(n_features):
                    distinct[n_distinct, f] = bits[i, f]
                inverse[i] = n_distinct
                n_distinct += 1
                break
            if _same_row(bits, i, distinct, u):
                inverse[i] = u
                break
            slot = (slot + np.uint64(1)) & mask
    return n_distinct


@kernel
def merged_weights(inverse, sample_weight, out):
    """``out[u]`` = the sum of the weights of the rows equal to distinct row ``u``.

    Summed in row order in float64, then rounded once to ``out``'s dtype: a
    long float32 running sum would drift (and stop growing past 2**24).

    inverse : (n_samples,) IN, from ``distinct_rows``
    sample_weight : (n_samples,) IN
    out : (n_distinct,) OUT
    """
    sums = np.zeros(out.shape[0])
    for i in range(inverse.shape[0]):
        sums[inverse[i]] += np.float64(sample_weight[i])
    for u in range(out.shape[0]):
        out[u] = sums[u]
