"""MT19937, the generator behind numpy's legacy ``RandomState``, for kernels.

scikit-learn's mini-batch loop draws its batches (and the rows that replace
starved centres) from a ``RandomState``. A compiled loop that draws the very
same numbers from the very same state picks the very same batches, which is
what lets fastkm's MiniBatchKMeans follow scikit-learn's step by step.

The state is one uint32 array of 625 words: ``RandomState.get_state()``'s 624
key words, then its position. Every function here reproduces the named
numpy routine bit for bit (numpy/random/src/mt19937 and legacy distributions).
"""

import numpy as np

from ._jit import kernel

_N = 624
_M = 397
_MATRIX_A = np.uint64(0x9908B0DF)
_UPPER = np.uint64(0x80000000)
_LOWER = np.uint64(0x7FFFFFFF)
_LOW32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)


@kernel
def _regenerate(state):
    """mt19937_gen: the next 624 key words, in place; position back to 0."""
    for i in range(_N):
        y = (np.uint64(state[i]) & _UPPER) | (np.uint64(state[(i + 1) % _N]) & _LOWER)
        # Words past i + M - N were regenerated earlier in this loop, as in numpy.
        v = np.uint64(state[(i + _M) % _N]) ^ (y >> _ONE)
        if y & _ONE:
            v ^= _MATRIX_A
        state[i] = np.uint32(v & _LOW32)
    state[_N] = 0


@kernel
def next_uint32(state):
    """mt19937_next32: the next tempered 32-bit word (as uint64)."""
    pos = np.int64(state[_N])
    if pos >= _N:
        _regenerate(state)
        pos = 0
    y = np.uint64(state[pos])
    state[_N] = np.uint32(pos + 1)
    y ^= y >> np.uint64(11)
    y ^= (y << np.uint64(7)) & np.uint64(0x9D2C5680)
    y ^= (y << np.uint64(15)) & np.uint64(0xEFC60000)
    y ^= y >> np.uint64(18)
    return y & _LOW32


@kernel
def next_double(state):
    """mt19937_next_double: what ``RandomState.random_sample`` returns, in [0, 1)."""
    a = next_uint32(state) >> np.uint64(5)
    b = next_uint32(state) >> np.uint64(6)
    return (np.float64(a) * 67108864.0 + np.float64(b)) / 9007199254740992.0


@kernel
def random_interval(state, max_value):
    """random_interval: a uniform integer in [0, max_value], max_value < 2**32."""
    if max_value == 0:
        return np.int64(0)
    mask = np.uint64(max_value)
    mask |= mask >> np.uint64(1)
    mask |= mask >> np.uint64(2)
    mask |= mask >> np.uint64(4)
    mask |= mask >> np.uint64(8)
    mask |= mask >> np.uint64(16)
    value = next_uint32(state) & mask
    while value > np.uint64(max_value):
        value = next_uint32(state) & mask
    return np.int64(value)


@kernel
def permutation(state, out):
    """``RandomState.permutation(len(out))`` into ``out``: arange, then shuffle.

    out : (n,) int64 OUT
    """
    n = out.shape[0]
    for i in range(n):
        out[i] = i
    for i in range(n - 1, 0, -1):
        j = random_interval(state, i)
        out[i], out[j] = out[j], out[i]
