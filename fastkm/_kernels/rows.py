"""Row access that works on dense arrays and on CSR matrices alike.

A CSR matrix reaches the kernels as the tuple ``(data, indices, starts,
stops, n_features)``: row ``r`` stores ``data[starts[r]:stops[r]]`` at the
columns ``indices[starts[r]:stops[r]]``. For a whole matrix ``starts`` and
``stops`` are views of its ``indptr``; a mini-batch of its rows is the same
``data`` and ``indices`` with the rows' own ``starts`` and ``stops``, nothing
copied. Kernels that only need a matrix's shape or walk a row's stored
values call these helpers, and so serve both forms from one source: numba
picks the implementation by the argument's type when it compiles the caller.
"""

from numba import types
from numba.extending import overload

from ._jit import FASTMATH

_OPTIONS = {"fastmath": FASTMATH}


def _is_dense(X):
    return isinstance(X, types.Array)


def n_rows(X):
    """Number of rows of X, dense or CSR (kernels only)."""
    raise NotImplementedError("compiled kernels only")


def n_cols(X):
    """Number of columns of X, dense or CSR (kernels only)."""
    raise NotImplementedError("compiled kernels only")


def add_row(X, r, scale, out):
    """``out[f] += scale * X[r, f]`` over row ``r``'s stored values (kernels only)."""
    raise NotImplementedError("compiled kernels only")


def copy_row(X, r, out):
    """``out[:] = X[r]``, zeros included (kernels only)."""
    raise NotImplementedError("compiled kernels only")


@overload(n_rows, jit_options=_OPTIONS)
def _n_rows(X):
    if _is_dense(X):
        return lambda X: X.shape[0]
    return lambda X: X[2].shape[0]


@overload(n_cols, jit_options=_OPTIONS)
def _n_cols(X):
    if _is_dense(X):
        return lambda X: X.shape[1]
    return lambda X: X[4]


def add_row_exact(X, r, scale, out):
    """``add_row`` with every product and sum rounded as written (no FMA; kernels only)."""
    raise NotImplementedError("compiled kernels only")


def _add_row(X, r, scale, out):
    if _is_dense(X):

        def add_dense(X, r, scale, out):
            for f in range(X.shape[1]):
                out[f] += scale * X[r, f]

        return add_dense

    def add_csr(X, r, scale, out):
        data, indices, starts, stops, _ = X
        for p in range(starts[r], stops[r]):
            out[indices[p]] += scale * data[p]

    return add_csr


overload(add_row, jit_options=_OPTIONS)(_add_row)
# fastmath stated, not left unset: unset, numba takes the calling kernel's.
overload(add_row_exact, jit_options={"fastmath": False})(_add_row)


@overload(copy_row, jit_options=_OPTIONS)
def _copy_row(X, r, out):
    if _is_dense(X):

        def copy_dense(X, r, out):
            for f in range(X.shape[1]):
                out[f] = X[r, f]

        return copy_dense

    def copy_csr(X, r, out):
        data, indices, starts, stops, _ = X
        out[:] = 0
        for p in range(starts[r], stops[r]):
            out[indices[p]] = data[p]

    return copy_csr
