"""Labels, inertia and distances against fixed centres (predict, score, transform).

``assign`` is the labelling every other room uses too: after a loop's last
iteration, and in partial_fit's step.
"""

import numpy as np
import scipy.sparse as sp

from .._kernels import lloyd, sparse, stats
from .._kernels._jit import serial_when_small, start_threads
from .layout import csr_parts, n_groups_for, no_tiles, row_squared_norms, squared_norms


def assign(X, centers, labels, n_groups, tiles=None, norms=None):
    """Nearest-centre labels, in place.

    ``norms`` are the centres' squared norms, numpy's (scikit-learn's) if
    None. Returns how many labels changed and, when X is read directly (no
    ``tiles``), whether all of X is finite.
    """
    changed = np.empty(n_groups, dtype=np.int64)
    if norms is None:
        # numpy's einsum bits: from the kernel for C-ordered centres (einsum's
        # call cost 3 us of a digits predict); einsum adds others in plain order.
        c_ordered = centers.flags.c_contiguous
        norms = stats.centre_squared_norms(centers) if c_ordered else squared_norms(centers)
    # Labels alone: no weights, no centre sums.
    no_weights, no_sums = np.empty(0, dtype=X.dtype), np.empty((n_groups, 0, 0))
    if sp.issparse(X):
        n_changed = sparse.assign_labels(csr_parts(X), no_weights, centers, norms, labels, no_sums, changed)
        return int(n_changed), True
    tiles = no_tiles(X) if tiles is None else tiles
    n_changed, finite = lloyd.assign_labels(
        X, tiles, False, no_weights, centers, norms, labels, no_sums, changed
    )
    return int(n_changed), bool(finite)


def total_inertia(X, sample_weight, centers, labels):
    n_groups = n_groups_for(X.shape[0], centers.shape[0], X.shape[1])
    if sp.issparse(X):
        return float(sparse.inertia(csr_parts(X), sample_weight, centers, labels, np.empty(n_groups)))
    return float(lloyd.inertia(X, sample_weight, centers, labels, np.empty(n_groups)))


@serial_when_small(lambda X, centers, **kwargs: X.shape[0] * centers.size)
def predict_labels(X, centers):
    """Labels of X against fixed centres, and whether X was all finite.

    Finiteness is checked in the same pass over dense X (see
    ``lloyd.assign_labels``); CSR input is checked by its validation.
    """
    start_threads()
    n_groups = n_groups_for(X.shape[0], centers.shape[0], X.shape[1])
    labels = np.empty(X.shape[0], dtype=np.int32)
    _, finite = assign(X, centers, labels, n_groups)
    return labels, finite


@serial_when_small(lambda X, sample_weight, centers, **kwargs: X.shape[0] * centers.size)
def labels_inertia(X, sample_weight, centers):
    """Labels of finite X against fixed centres, and the weighted inertia."""
    start_threads()
    n_groups = n_groups_for(X.shape[0], centers.shape[0], X.shape[1])
    labels = np.empty(X.shape[0], dtype=np.int32)
    assign(X, centers, labels, n_groups)
    return labels, total_inertia(X, sample_weight, centers, labels)


@serial_when_small(lambda X, centers, **kwargs: X.shape[0] * centers.size)
def euclidean_distances(X, centers):
    """Distances from every row of X to every centre, in X's dtype."""
    start_threads()
    out = np.empty((X.shape[0], centers.shape[0]), dtype=X.dtype)
    n_groups = n_groups_for(X.shape[0], centers.shape[0], X.shape[1])
    centers = np.ascontiguousarray(centers, dtype=X.dtype)
    if sp.issparse(X):
        sparse.euclidean_distances(csr_parts(X), row_squared_norms(X), centers, n_groups, out)
    else:
        lloyd.euclidean_distances(X, centers, n_groups, out)
    return out
