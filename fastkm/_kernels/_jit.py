"""The one place where fastkm's compilation options are declared."""

import numba
from numba.core import types
from numba.extending import intrinsic

# Row chunk processed as one unit. Work is partitioned by this fixed size, never
# by the thread count, so results are identical for any number of threads.
CHUNK = 256

# Upper bound on the number of row groups (and so of per-group partial buffers).
MAX_GROUPS = 64

# Features are processed in blocks of this many columns (zero-padded), which
# lets the low-d case (colour data, d = 3) run as one fused, vectorised pass.
FEATURE_BLOCK = 4

# Explicit flag set rather than fastmath=True: 'ninf'/'nnan' would let LLVM
# drop the +inf "best so far" sentinels the argmin loops rely on.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

_OPTIONS = {"cache": True, "nogil": True, "fastmath": FASTMATH, "error_model": "numpy"}


def start_threads():
    """Start numba's threading layer (cheap once started); call before kernels.

    numba notes in each cached function whether loading it must first start
    the threads. A serial kernel that calls a parallel one, compiled in a
    process that had loaded the parallel one from the cache, is cached without
    that note, and loading it in a fresh process then fails on a missing
    symbol or crashes. Starting the threads up front makes the note moot.
    """
    numba.get_num_threads()


def kernel(fn):
    """Compile ``fn`` as a serial kernel (for helpers and inner routines)."""
    return numba.njit(**_OPTIONS)(fn)


def exact_kernel(fn):
    """Compile ``fn`` without fastmath: every operation rounds as written.

    For the few kernels that must reproduce numpy's results bit for bit.
    """
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)


def parallel_kernel(fn):
    """Compile ``fn`` as a parallel kernel; its ``prange`` loops run on threads."""
    return numba.njit(parallel=True, **_OPTIONS)(fn)


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` with a single rounding (LLVM's fma), all one float type.

    Used where the rounding order matters: the dot products are accumulated as
    a sequential FMA chain over features, like a BLAS GEMM micro-kernel, so
    exact ties between centres break the same way as in scikit-learn.
    """
    if isinstance(a, types.Float) and a == b == c:

        def codegen(context, builder, signature, args):
            return builder.fma(*args)

        return a(a, b, c), codegen
    return None
