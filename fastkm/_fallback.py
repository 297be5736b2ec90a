"""scikit-learn's estimators answering for fastkm's while its kernels compile (see ``_tiers``).

fastkm's contract is scikit-learn's results, so scikit-learn's own estimator
is the answer a call gets while the compiled one is not ready. The fitted
fastkm estimator receives exactly the attributes the compiled tier would
have set, and ``_fastkm_tier`` says which tier fitted it.
"""

import contextlib
import functools
import os

import numpy as np
import sklearn.cluster
from sklearn.utils import check_array

from . import _tiers

# Attributes of a fitted estimator beyond the public ones (names ending in "_").
_KMEANS_PRIVATE = ("_n_features_out",)
_MINIBATCH_PRIVATE = (
    "_n_features_out",
    "_tol",
    "_n_init",
    "_batch_size",
    "_init_size",
    "_ewa_inertia",
    "_counts",
    "_n_since_last_reassign",
)
# partial_fit keeps these across calls; fit does not set them.
_PARTIAL_PRIVATE = ("_random_state",)


def _sklearn_class(estimator):
    return sklearn.cluster.MiniBatchKMeans if _is_minibatch(estimator) else sklearn.cluster.KMeans


def _is_minibatch(estimator):
    from ._minibatch_kmeans import MiniBatchKMeans

    return isinstance(estimator, MiniBatchKMeans)


def _sklearn_twin(estimator):
    """A scikit-learn estimator with ``estimator``'s parameters (fastkm-only values mapped)."""
    params = estimator.get_params(deep=False)
    if params.get("algorithm") in ("auto", "hamerly", "yinyang"):
        # The same iterates as scikit-learn's Lloyd (fastkm's bounds skip work, not steps).
        params["algorithm"] = "lloyd"
    return _sklearn_class(estimator)(**params)


def _fitted_names(estimator, twin, partial=False):
    """The attributes of ``twin``'s fit that fastkm's compiled tier sets too."""
    private = _MINIBATCH_PRIVATE if _is_minibatch(estimator) else _KMEANS_PRIVATE
    if partial:
        private = private + _PARTIAL_PRIVATE
    params = twin.get_params(deep=False)
    public = [
        name for name in vars(twin) if name.endswith("_") and not name.startswith("_") and name not in params
    ]
    return public + [name for name in private if hasattr(twin, name)]


def _copy_fitted(source, target, names):
    for name in names:
        setattr(target, name, getattr(source, name))
    if not hasattr(source, "feature_names_in_") and hasattr(target, "feature_names_in_"):
        # Refitted on data without names (scikit-learn's validation drops them).
        del target.feature_names_in_


@functools.cache
def _thread_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def _sharing_cores():
    """scikit-learn's OpenMP threads on all cores but one while the background compile runs.

    Beside a compiling process, scikit-learn's threads, which wait for each
    other many times a fit, lose most of their time: a first
    MiniBatchKMeans(16) fit on china.jpg took 12 s on two threads and 0.7 s
    on one (0.8 s with nothing else running). Its results can then differ
    in the last bits, as they do between scikit-learn runs with other
    thread counts.
    """
    if not _tiers.compiling():
        yield
        return
    threads = max(1, (os.cpu_count() or 1) - 1)
    with _thread_controller().limit(limits=threads, user_api="openmp"):
        yield


def fit(estimator, X, sample_weight):
    """Fit ``estimator`` with scikit-learn's estimator; returns ``estimator``."""
    twin = _sklearn_twin(estimator)
    with _sharing_cores():
        twin.fit(X, sample_weight=sample_weight)
    _copy_fitted(twin, estimator, _fitted_names(estimator, twin))
    estimator._fastkm_tier = _tiers.FALLBACK
    return estimator


def partial_fit(estimator, X, sample_weight):
    """One ``partial_fit`` step by scikit-learn's estimator, from ``estimator``'s state."""
    twin = _sklearn_twin(estimator)
    names = [name for name in vars(estimator) if _is_state(estimator, name)]
    _copy_fitted(estimator, twin, names)
    if hasattr(twin, "cluster_centers_"):
        # scikit-learn's step runs in X's dtype (fastkm carries the model over to it).
        dtype = _input_dtype(X)
        if dtype is not None:
            twin.cluster_centers_ = np.ascontiguousarray(twin.cluster_centers_, dtype=dtype)
            twin._counts = twin._counts.astype(dtype, copy=False)
        if not (twin.cluster_centers_.flags.writeable and twin._counts.flags.writeable):
            # A model loaded read-only (a memory map): the step updates copies.
            twin.cluster_centers_, twin._counts = twin.cluster_centers_.copy(), twin._counts.copy()
    with _sharing_cores():
        if hasattr(twin, "cluster_centers_"):
            # scikit-learn sets its thread count on the first step only.
            twin._n_threads = _n_threads()
        twin.partial_fit(X, sample_weight=sample_weight)
    _copy_fitted(twin, estimator, _fitted_names(estimator, twin, partial=True))
    estimator._fastkm_tier = _tiers.FALLBACK
    return estimator


def _is_state(estimator, name):
    params = estimator.get_params(deep=False)
    if name in params or name == "_fastkm_tier":
        return False
    return name.endswith("_") or name in _MINIBATCH_PRIVATE + _PARTIAL_PRIVATE


def _n_threads():
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    return _openmp_effective_n_threads()


def _input_dtype(X):
    """The float dtype scikit-learn's validation gives X (None if it would raise: let it)."""
    try:
        return check_array(
            X, accept_sparse="csr", dtype=[np.float64, np.float32], ensure_all_finite=False
        ).dtype
    except (TypeError, ValueError):
        return None


def _fitted_twin(estimator, X):
    """A scikit-learn estimator holding ``estimator``'s fit, its centres in X's dtype."""
    twin = _sklearn_twin(estimator)
    _copy_fitted(estimator, twin, [name for name in vars(estimator) if _is_state(estimator, name)])
    twin._n_threads = _n_threads()
    dtype = _input_dtype(X)
    if dtype is not None:
        # scikit-learn's labelling wants centres in X's dtype; fastkm computes in X's dtype.
        twin.cluster_centers_ = np.ascontiguousarray(estimator.cluster_centers_, dtype=dtype)
    return twin


def predict(estimator, X):
    """``estimator.predict(X)`` by scikit-learn."""
    return _fitted_twin(estimator, X).predict(X)


def transform(estimator, X):
    """``estimator.transform(X)`` by scikit-learn (distances in the wider of the two dtypes)."""
    twin = _fitted_twin(estimator, X)
    dtype = _input_dtype(X)
    if dtype is not None:
        twin.cluster_centers_ = estimator.cluster_centers_.astype(
            np.result_type(dtype, estimator.cluster_centers_.dtype), copy=False
        )
    return twin.transform(X)


def score(estimator, X, sample_weight):
    """``estimator.score(X)`` by scikit-learn."""
    return _fitted_twin(estimator, X).score(X, sample_weight=sample_weight)


def kmeans_plusplus(X, n_clusters, **options):
    """``sklearn.cluster.kmeans_plusplus``."""
    return sklearn.cluster.kmeans_plusplus(X, n_clusters, **options)
