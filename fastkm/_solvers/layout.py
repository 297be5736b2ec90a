"""How the kernels see the rows: row groups, CSR parts, squared norms, tiled copies.

The row groups are a function of the data's shape alone, never of the
thread count, which is what makes results identical for any number of
threads. ``TILED_COPY_BUDGET`` bounds the feature-major copy of X that
Lloyd's loop and k-means++ keep (tests and ``fastkm compile`` lower it).
"""

import numpy as np
import scipy.sparse as sp

from .._kernels import lloyd, sparse
from .._kernels._jit import CHUNK, MAX_GROUPS
from .._kernels.tiles import tile_bytes, tile_stack

# Elements the per-group partial sums may take in total before fewer groups are used.
_PARTIALS_BUDGET = 1 << 22
# Chunks a row group holds at least, when there are enough rows.
_MIN_GROUP_CHUNKS = 4


def n_groups_for(n_samples, n_clusters, n_features):
    """Number of row groups for a problem; a function of the shape alone.

    Never of the thread count: that is what makes results identical for any
    number of threads. Enough groups to balance the threads, few enough that
    the partial sums stay small, and each of at least ``_MIN_GROUP_CHUNKS``
    chunks where the data allows: a group's task has a fixed cost of a few
    microseconds (digits, 1,797 rows: 8 groups took 6 us an iteration more
    than 2).
    """
    n_chunks = -(-n_samples // (_MIN_GROUP_CHUNKS * CHUNK))
    by_memory = _PARTIALS_BUDGET // max(1, n_clusters * (n_features + 2))
    return int(max(1, min(n_chunks, MAX_GROUPS, max(8, by_memory))))


def squared_norms(A):
    # numpy's einsum, as scikit-learn's row_norms: the same bits, the same ties.
    return np.einsum("ij,ij->i", A, A)


def csr_parts(X):
    """A CSR matrix as the kernels take it: (data, indices, starts, stops, n_features)."""
    return (X.data, X.indices, X.indptr[:-1], X.indptr[1:], X.shape[1])


def csr_n_groups(X, n_clusters, n_groups):
    """Row groups for Lloyd's iteration on CSR X: fewer than ``n_groups`` if it pays.

    Each group clears and hands over centre sums of ``n_clusters x
    n_features`` values every iteration, however few values its rows store:
    the largest power of two of groups whose sums are at most a quarter of
    the values stored (100,000 x 10,000 at 1%, k=32: 4 groups, an iteration
    48 ms against 65 ms with 13), at least 2. A function of the data's shape
    alone, as ``n_groups_for``.
    """
    per_group = 4 * n_clusters * (X.shape[1] + 2)
    fits = max(1, X.nnz // per_group)
    return int(min(n_groups, max(2, 1 << (fits.bit_length() - 1))))


def row_squared_norms(X):
    """Squared norms of X's rows: numpy's einsum for arrays, float64 sums for CSR."""
    if not sp.issparse(X):
        return squared_norms(X)
    out = np.empty(X.shape[0])
    sparse.row_sq_norms(csr_parts(X), out)
    return out


# Lloyd and k-means++ keep a feature-major copy of X (see lloyd._assign_rows)
# when it takes at most this many bytes; it saves re-transposing X on every
# iteration or seeding pass.
TILED_COPY_BUDGET = 256 << 20


def tiled_copy_storage(n_tiles, n_features, dtype):
    """Room for ``n_tiles`` tiles of X, or no tiles (shape (0, 0, 0)) if over budget."""
    if n_tiles * tile_bytes(n_features, dtype) > TILED_COPY_BUDGET:
        return np.empty((0, 0, 0), dtype=dtype)
    return tile_stack(n_tiles, n_features, dtype)


def tile_storage(X, n_groups):
    """Room for X in Lloyd's tiles (filled by the first iteration), if within budget."""
    return tiled_copy_storage(lloyd.n_tiles(n_groups, X.shape[0]), X.shape[1], X.dtype)


def no_tiles(X):
    return np.empty((0, 0, 0), dtype=X.dtype)
