"""Column statistics with numpy's exact rounding, for fit's preprocessing.

scikit-learn centres X on its column means and derives the tolerance from the
column variances, both with numpy reductions. For a C-ordered array with two or
more columns numpy reduces axis 0 one row at a time, in the data type, so a
plain loop without fastmath (every operation rounded in turn) gives the same
bits; the centred data, and so every distance and tie, match scikit-learn's.
These loops are memory-bound; numpy's version allocates a copy of X for the
deviations, which is what makes it slow.
"""

import numpy as np

from ._jit import exact_kernel


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
def center_columns(X, means, out):
    """``out = X - means``; return the sums of the squared deviations.

    The sums are those of ``np.var``'s deviations, ``((X - means) ** 2).sum(0)``,
    each term rounded as numpy rounds it. ``out`` may be X itself (in place);
    otherwise the copy costs no pass of its own.

    X : (n_samples, n_features) IN, C-contiguous, n_features >= 2
    means : (n_features,) IN
    out : (n_samples, n_features) OUT, C-contiguous, may be X
    """
    n_samples, n_features = X.shape
    squares = np.zeros(n_features, dtype=X.dtype)
    for i in range(n_samples):
        # Two loops, not one: the fused loop vectorised 1.5x slower.
        for f in range(n_features):
            out[i, f] = X[i, f] - means[f]
        for f in range(n_features):
            deviation = out[i, f]
            squares[f] += deviation * deviation
    return squares
