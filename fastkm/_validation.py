"""Parameter and input checks, delegated to scikit-learn's own validators.

Using scikit-learn's machinery (parameter constraints, ``validate_data``,
``_check_sample_weight``) is what makes fastkm's errors and messages identical
to scikit-learn's.
"""

import warnings
from numbers import Integral, Number, Real

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    _is_arraylike_not_scalar,
    check_is_fitted,
    validate_data,
)

from ._lazy import LazyModule

# Compiled checks, imported on first use (``import fastkm`` imports no numba).
_checks = LazyModule("fastkm._kernels.checks", __name__)
_stats = LazyModule("fastkm._kernels.stats", __name__)

FLOAT_DTYPES = [np.float64, np.float32]

BASE_KMEANS_CONSTRAINTS = {
    "n_clusters": [Interval(Integral, 1, None, closed="left")],
    "init": [StrOptions({"k-means++", "random"}), callable, "array-like"],
    "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
}

KMEANS_CONSTRAINTS = {
    **BASE_KMEANS_CONSTRAINTS,
    "copy_x": ["boolean"],
    "algorithm": [StrOptions({"auto", "lloyd", "elkan", "hamerly", "yinyang"})],
}

MINIBATCH_KMEANS_CONSTRAINTS = {
    **BASE_KMEANS_CONSTRAINTS,
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "compute_labels": ["boolean"],
    "max_no_improvement": [Interval(Integral, 0, None, closed="left"), None],
    "init_size": [Interval(Integral, 1, None, closed="left"), None],
    "reassignment_ratio": [Interval(Real, 0, None, closed="left")],
}

KMEANS_PLUSPLUS_CONSTRAINTS = {
    "X": ["array-like", "sparse matrix"],
    "n_clusters": [Interval(Integral, 1, None, closed="left")],
    "sample_weight": ["array-like", None],
    "x_squared_norms": ["array-like", None],
    "random_state": ["random_state"],
    "n_local_trials": [Interval(Integral, 1, None, closed="left"), None],
}

K_MEANS_CONSTRAINTS = {
    "X": ["array-like", "sparse matrix"],
    "sample_weight": ["array-like", None],
    "return_n_iter": [bool],
}

_SPARSE_MESSAGE = (
    "{} does not accept sparse input yet: convert X with X.toarray(), "
    "or use scikit-learn's estimator for sparse data."
)


def reject_sparse(X, name="fastkm"):
    """Raise a clear TypeError for scipy.sparse input where it is not supported yet."""
    if sp.issparse(X):
        raise TypeError(_SPARSE_MESSAGE.format(name))


def validate_sparse(estimator, X, reset, copy=False):
    """scikit-learn's validation of sparse X: CSR (other formats converted), float, finite.

    int32 indices, as scikit-learn's KMeans requires (``accept_large_sparse=False``).
    Duplicate entries are summed (see ``summed_duplicates``).
    """
    X = validate_data(
        estimator,
        X,
        reset=reset,
        accept_sparse="csr",
        dtype=FLOAT_DTYPES,
        order="C",
        copy=copy,
        accept_large_sparse=False,
    )
    return summed_duplicates(X)


def summed_duplicates(X):
    """CSR X with any entries stored twice for one position summed, in a copy.

    A CSR matrix may store one position more than once, meaning the sum.
    scikit-learn's kernels take each stored value as its own, which counts
    them wrong in row norms (so k-means++ and the inertia); fastkm works on
    the matrix they mean, as for dense X. Without duplicates X is kept as
    it is, its values in their stored order.
    """
    if X.has_canonical_format:
        return X
    summed = X.copy()
    summed.sum_duplicates()
    return summed if summed.nnz < X.nnz else X


def _is_plain_float_matrix(A):
    """True for a non-empty 2-D float32/float64 numpy.ndarray (no subclass).

    For such arrays scikit-learn's validation (``validate_data``,
    ``check_array``) comes down to a few steps that the fast paths below take
    directly: it has no error to raise and nothing to convert, and its
    dataframe and array-API checks cost more than a small fit's iterations.
    Anything else goes through scikit-learn's own code.
    """
    return (
        type(A) is np.ndarray
        and A.ndim == 2
        and A.dtype in FLOAT_DTYPES
        and A.shape[0] > 0
        and A.shape[1] > 0
        and not get_config()["array_api_dispatch"]
    )


def is_sparse(X):
    """``sp.issparse(X)``, answered at once for an ndarray (scipy's is an abstract-class check)."""
    return type(X) is not np.ndarray and sp.issparse(X)


_BY_VALUE = (type(None), str, Number, np.generic)
# The common ones, told by their type alone (``Number`` is an abstract
# class: isinstance checks against it cost a microsecond a fit).
_PLAIN = frozenset((type(None), str, int, float, bool))


def parameter_key(cls, params):
    """A hashable summary of ``params`` that decides whether they pass validation.

    None, strings and numbers by value, anything else (arrays, callables,
    RandomState instances) by type: fastkm's constraints on those are on
    their type alone ("array-like", callable, "random_state"). None if a
    value cannot be hashed (then nothing is remembered).
    """
    summary = [cls]
    for name, value in sorted(params.items()):
        kind = type(value)
        summary.append((name, kind, value if kind in _PLAIN or isinstance(value, _BY_VALUE) else None))
    summary = tuple(summary)
    try:
        hash(summary)
    except TypeError:
        return None
    return summary


def validate_fit_data(estimator, X, copy, accept_sparse=False):
    """Validate training data: dense, 2-D, finite, float32/float64, C order.

    Returns
    -------
    X : ndarray
        The validated data. With ``copy=True`` it may still be the caller's
        own array (see ``owned``): fit's centring writes the copy anyway, so
        making one here would be a wasted pass.
    owned : bool
        False if X is the caller's array and ``copy`` was asked for: the
        caller must not write to it.
    sums : ndarray of shape (n_features,)
        ``X.sum(axis=0)`` with numpy's rounding when X has two or more
        columns. The finiteness check reads them (a NaN or infinity anywhere
        makes its column's sum non-finite), and fit's centring reuses them.
        None for sparse X (accepted with ``accept_sparse`` only, as CSR).
    """
    if is_sparse(X):
        if not accept_sparse:
            reject_sparse(X, type(estimator).__name__)
        return validate_sparse(estimator, X, reset=True, copy=copy), True, None
    if not _is_plain_float_matrix(X):
        # scikit-learn's own path, finiteness check included (it raises before
        # recording n_features_in_, so a failed fit leaves nothing behind).
        validated = validate_data(estimator, X, dtype=FLOAT_DTYPES, order="C", copy=copy)
        return validated, True, _stats.column_sums(validated)
    # validate_data(reset=True) on such an array: no feature names, a C array,
    # the finiteness check, then the width recorded.
    # An instance attribute (validate_data sets it so); a look in __dict__
    # spares hasattr's AttributeError when it is not there.
    if "feature_names_in_" in vars(estimator):
        delattr(estimator, "feature_names_in_")
    validated = np.asarray(X, order="C")
    sums = _stats.column_sums(validated)
    # Finite sums mean finite data; a sum can also overflow, so check X itself.
    # (The sums as a one-row matrix: the kernel X takes, no ufunc calls.)
    if not _checks.all_finite(sums.reshape(1, -1)) and not _checks.all_finite(validated):
        raise_not_finite(estimator, validated)
    estimator.n_features_in_ = validated.shape[1]
    return validated, (not copy or validated is not X), sums


def check_fitted(estimator):
    """scikit-learn's ``check_is_fitted(estimator)``, answered at once when ``cluster_centers_`` is set.

    Its rule (without ``__sklearn_is_fitted__``) is that some attribute ends
    in an underscore, which ``cluster_centers_`` does; listing them and
    reading the tags took 4-10 us of a 90 us ``predict`` on digits.
    """
    if "cluster_centers_" not in vars(estimator) or _has_fitted_hook(estimator):
        check_is_fitted(estimator)


def _has_fitted_hook(estimator):
    # hasattr's own look, without the AttributeError it raises and formats
    # on a miss (every call): the instance's dict, then the classes'.
    return "__sklearn_is_fitted__" in vars(estimator) or any(
        "__sklearn_is_fitted__" in vars(cls) for cls in type(estimator).__mro__
    )


def validate_test_data(estimator, X, check_finite=True):
    """Validate data for predict/transform/score against the fitted width.

    With ``check_finite=False`` the caller must check finiteness itself and
    call ``raise_not_finite`` on failure (predict does it in its one pass).
    Sparse X comes back as CSR, checked finite whatever ``check_finite``.
    """
    if is_sparse(X):
        return validate_sparse(estimator, X, reset=False)
    if (
        _is_plain_float_matrix(X)
        and getattr(estimator, "feature_names_in_", None) is None
        and X.shape[1] == getattr(estimator, "n_features_in_", None)
    ):
        # validate_data(reset=False) on such an array, fitted without feature
        # names and with the same width: nothing to warn about or raise.
        X = np.asarray(X, order="C")
    else:
        X = validate_data(estimator, X, reset=False, dtype=FLOAT_DTYPES, order="C", ensure_all_finite=False)
    if check_finite and not _checks.all_finite(X):
        raise_not_finite(estimator, X)
    return X


def raise_not_finite(estimator, X):
    """Raise scikit-learn's own error for X holding NaN or infinity.

    The finiteness test itself is fastkm's (a compiled pass, or part of
    predict's); on failure scikit-learn's check runs for its exact message.
    """
    check_array(X, dtype=None, ensure_all_finite=True, input_name="X", estimator=estimator)


def check_sample_weight(sample_weight, X):
    """Sample weights as an array of X's dtype (scikit-learn's checks)."""
    if sample_weight is None:
        # What _check_sample_weight returns for None, without its namespace checks.
        return np.ones(X.shape[0], dtype=X.dtype)
    return _check_sample_weight(sample_weight, X, dtype=X.dtype)


def check_n_samples(X, n_clusters):
    """Require at least as many samples as clusters."""
    if X.shape[0] < n_clusters:
        raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={n_clusters}.")


def resolve_n_init(n_init, init, default_n_init, estimator_name):
    """Number of initialisations, as scikit-learn resolves n_init='auto'."""
    if n_init == "auto":
        if isinstance(init, str) and init == "k-means++":
            resolved = 1
        elif isinstance(init, str) and init == "random":
            resolved = default_n_init
        elif callable(init):
            resolved = default_n_init
        else:
            resolved = 1
    else:
        resolved = n_init
    if is_array_init(init) and resolved != 1:
        warnings.warn(
            "Explicit initial center position passed: performing only"
            f" one init in {estimator_name} instead of n_init={resolved}.",
            RuntimeWarning,
            stacklevel=3,
        )
        resolved = 1
    return resolved


def resolve_init_size(init_size, batch_size, n_clusters, n_samples):
    """MiniBatchKMeans's number of rows for making initial centres.

    None means three batches (at least three rows per cluster); a size under
    n_clusters warns and becomes 3 * n_clusters. Never more than n_samples.
    """
    if init_size is None:
        init_size = 3 * batch_size
        if init_size < n_clusters:
            init_size = 3 * n_clusters
    elif init_size < n_clusters:
        warnings.warn(
            f"init_size={init_size} should be larger than n_clusters={n_clusters}. "
            "Setting it to min(3*n_clusters, n_samples)",
            RuntimeWarning,
            stacklevel=3,
        )
        init_size = 3 * n_clusters
    return min(init_size, n_samples)


def validate_center_shape(X, centers, n_centers):
    """Require centres of shape (n_centers, n_features of X)."""
    if centers.shape[0] != n_centers:
        raise ValueError(
            f"The shape of the initial centers {centers.shape} does not "
            f"match the number of clusters {n_centers}."
        )
    if centers.shape[1] != X.shape[1]:
        raise ValueError(
            f"The shape of the initial centers {centers.shape} does not "
            f"match the number of features of the data {X.shape[1]}."
        )


def check_init_array(init, X, n_centers):
    """Validate an explicit init array: a C-ordered copy in X's dtype."""
    fast = type(init) is np.ndarray and init.ndim == 2 and init.dtype.kind == "f" and init.size > 0
    if fast and not get_config()["array_api_dispatch"]:
        # check_array's conversion, then its finiteness check on the result
        # (which it would raise from: so it runs when that fails).
        converted = np.array(init, dtype=X.dtype, order="C", copy=True)
        init = (
            converted
            if _checks.all_finite(converted)
            else check_array(init, dtype=X.dtype, copy=True, order="C")
        )
    else:
        init = check_array(init, dtype=X.dtype, copy=True, order="C")
    validate_center_shape(X, init, n_centers)
    return init


def check_init_result(centers, X, n_centers):
    """Validate what an init callable returned."""
    centers = check_array(centers, dtype=X.dtype, copy=False, order="C")
    validate_center_shape(X, centers, n_centers)
    return centers


def is_array_init(init):
    """Whether ``init`` is an array of centres: scikit-learn's ``_is_arraylike_not_scalar``.

    Answered at once for an ndarray and a string (the usual cases); its
    ``np.isscalar`` compares the type with some thirty scalar types.
    """
    if type(init) is np.ndarray:
        return True
    if type(init) is str:
        return False
    return _is_arraylike_not_scalar(init)


def warn_fewer_clusters(cluster_sizes, n_clusters, stacklevel):
    """scikit-learn's ConvergenceWarning when fewer than ``n_clusters`` clusters hold a row.

    ``stacklevel`` counts from the caller, as ``warnings.warn``'s does.
    """
    distinct = np.count_nonzero(cluster_sizes)
    if distinct < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({distinct}) found smaller than "
            f"n_clusters ({n_clusters}). Possibly due to duplicate points in X.",
            ConvergenceWarning,
            stacklevel=stacklevel + 1,
        )
