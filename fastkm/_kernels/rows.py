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

from ._jit import kernel_for_types


def _is_dense(X):
    return isinstance(X, types.Array)


@kernel_for_types
def n_rows(X):
    """Number of rows of X, dense or CSR (kernels only)."""
    if _is_dense(X):
        return lambda X: X.shape[0]
    return lambda X: X[2].shape[0]


@kernel_for_types
def n_cols(X):
    """Number of columns of X, dense or CSR (kernels only)."""
    if _is_dense(X):
        return lambda X: X.shape[1]
    return lambda X: X[4]


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


#: ``out[f] += scale * X[r, f]`` over row ``r``'s stored values (kernels only).
add_row = kernel_for_types(_add_row)
#: ``add_row`` with every product and sum rounded as written (no FMA; kernels only).
add_row_exact = kernel_for_types(_add_row, fastmath=False)


@kernel_for_types
def copy_row(X, r, out):
    """``out[:] = X[r]``, zeros included (kernels only)."""
    if _is_dense(X):

        def copy_dense(X, r, out):
            for f in range(X.shape[1]):
                out[f] = X[r, f]

        return copy_dense

    def copy_csr(X, r, out):
        data, indices, starts, stops, _ = X
        for f in range(out.shape[0]):
            out[f] = 0
        for p in range(starts[r], stops[r]):
            out[indices[p]] = data[p]

    return copy_csr
