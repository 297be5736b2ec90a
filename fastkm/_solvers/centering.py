"""X's column statistics: centring on the column means, and the absolute tolerance.

Both come out bit for bit as scikit-learn's numpy calls give them.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.sparsefuncs import mean_variance_axis

from .._kernels import stats

# From this many values, X is centred by both threads and its squared
# deviations summed in a second pass (``stats.centered_rows``); below, in one
# serial pass (``stats.center_columns``). Same bits either way.
PARALLEL_CENTRING = 1 << 21


def center_data(X, tol, in_place=True, sums=None, record=None, measure_rows=True):
    """Centre X on its column means; return it with the means and absolute tol.

    The absolute tolerance is ``tol`` times the mean of the columns' variances.
    Both come out bit for bit as scikit-learn's ``X.mean(axis=0)``,
    ``np.var(X, axis=0)`` and ``X -= mean`` give them, in one pass less and
    without numpy's temporary copy of X. With ``in_place=False`` the centred
    data goes to a new array and X is left as it is. ``sums``, if given, must
    be ``stats.column_sums(X)`` (validation computes them). ``record``, a
    dict, gets ``"means"`` before X is changed in place: a caller interrupted
    (Ctrl-C) once X is centred, even before this returns, can add them back.
    ``measure_rows``: bound the centred rows' squared norms too (``x_max``).

    Returns
    -------
    X : ndarray, centred (X itself when ``in_place``)
    means : ndarray of shape (n_features,), dtype of X
    tol : float
    x_max : float or None
        An upper bound on the squared norm of every centred row (the largest
        one, rounded up), made on the way: the bound-based algorithms'
        rounding margin needs one, and a pass of its own over 1,000,000 x 16
        took 7 ms. None without ``measure_rows`` and where numpy centres X
        (a single column, a read-only X).
    """
    n_samples, n_features = X.shape
    if n_features < 2 or not X.flags.writeable:
        # numpy sums a single column pairwise; let numpy do it. A read-only X
        # (copy_x=False) gets numpy's "output array is read-only", as in sklearn.
        if not in_place:
            X = X.copy()
        variances = np.var(X, axis=0) if tol else None
        means = X.mean(axis=0)
        if record is not None and in_place:
            record["means"] = means
        X -= means
        x_max = None
    else:
        # Divided as numpy's mean and var divide: by an intp count, in place
        # (``center_columns`` divides its variances the same way).
        count = np.intp(n_samples)
        means = stats.column_sums(X) if sums is None else sums.copy()
        np.true_divide(means, count, out=means, casting="unsafe")
        out = X if in_place else np.empty_like(X)
        if record is not None and in_place:
            record["means"] = means.copy()
        if X.size >= PARALLEL_CENTRING:
            largest = stats.centered_rows(X, means, out, measure_rows)
            variances = stats.column_squares(out)
            np.true_divide(variances, count, out=variances, casting="unsafe")
        else:
            variances, largest = stats.center_columns(X, means, out, measure_rows)
        X = out
        # Past the rounding of the row's float64 sum.
        x_max = (
            largest * (1 + 2 * (n_features + 2) * float(np.finfo(np.float64).eps)) if measure_rows else None
        )
    # np.mean's own arithmetic for a 1-d array (its sum, divided by the
    # count), without its 2 us of Python: a small fit's fixed cost.
    return X, means, (np.add.reduce(variances) / n_features * tol if tol else 0), x_max


def tolerance(X, tol):
    """Absolute tolerance: ``tol`` times the mean column variance.

    numpy's variances, or scikit-learn's ``mean_variance_axis`` for sparse X.
    """
    if not tol:
        return 0
    variances = mean_variance_axis(X, axis=0)[1] if sp.issparse(X) else np.var(X, axis=0)
    return np.mean(variances) * tol
