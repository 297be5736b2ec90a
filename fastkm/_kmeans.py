"""KMeans, k_means and kmeans_plusplus: the scikit-learn-facing layer."""

import functools
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import validate_params

from . import _tiers
from . import _validation as v
from ._fit_context import fit_context
from ._interrupt import restored_on_interrupt
from ._lazy import LazyModule

# Imported on first use: ``import fastkm`` imports no numba.
_solvers = LazyModule("fastkm._solvers", __name__)
# scikit-learn's estimators, answering while kernels compile (see ``_tiers``).
_fallback = LazyModule("fastkm._fallback", __name__)


@validate_params(v.KMEANS_PLUSPLUS_CONSTRAINTS, prefer_skip_nested_validation=True)
def kmeans_plusplus(
    X,
    n_clusters,
    *,
    sample_weight=None,
    x_squared_norms=None,
    random_state=None,
    n_local_trials=None,
):
    """Init n_clusters seeds according to greedy k-means++.

    Same contract as :func:`sklearn.cluster.kmeans_plusplus`; the seeding loop
    runs as a compiled, parallel kernel. With the same ``random_state`` it
    draws the same candidates as scikit-learn and computes their distances
    with the same formula and, where the BLAS sums a GEMM entry as one FMA
    chain, the same bits. Candidates whose potentials differ by rounding alone
    are ranked with scikit-learn's own arithmetic on dense float64 data, so it
    picks the same points (among copies of one point, possibly another copy).
    On float32 or sparse data, or with another BLAS, such a near-tie can go
    the other way.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data to pick seeds from.
    n_clusters : int
        The number of centroids to initialize.
    sample_weight : array-like of shape (n_samples,), default=None
        The weights for each observation in `X`. If `None`, all observations
        are assigned equal weight.
    x_squared_norms : array-like of shape (n_samples,), default=None
        Squared Euclidean norm of each data point.
    random_state : int or RandomState instance, default=None
        Determines random number generation for centroid initialization.
    n_local_trials : int, default=None
        The number of seeding trials for each center (except the first), of
        which the one reducing inertia the most is greedily chosen. None means
        ``2 + int(log(n_clusters))``.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
        The initial centers for k-means, in the input array's dtype.
    indices : ndarray of shape (n_clusters,)
        The index location of the chosen centers in the data array X. For a
        given index and center, X[index] = center.

    Examples
    --------
    >>> from fastkm import kmeans_plusplus
    >>> import numpy as np
    >>> X = np.array([[1, 2], [1, 4], [1, 0],
    ...               [10, 2], [10, 4], [10, 0]])
    >>> centers, indices = kmeans_plusplus(X, n_clusters=2, random_state=0)
    >>> centers
    array([[10,  2],
           [ 1,  0]])
    >>> indices
    array([3, 2])
    """
    if _tiers.choose(_tiers.units_for(X, "kmeans"), "kmeans_plusplus") == _tiers.FALLBACK:
        return _fallback.kmeans_plusplus(
            X,
            n_clusters,
            sample_weight=sample_weight,
            x_squared_norms=x_squared_norms,
            random_state=random_state,
            n_local_trials=n_local_trials,
        )
    X_in = X
    X = check_array(X, accept_sparse="csr", dtype=v.FLOAT_DTYPES, order="C")
    if sp.issparse(X):
        X = v.summed_duplicates(X)
    sample_weight = v.check_sample_weight(sample_weight, X)
    v.check_n_samples(X, n_clusters)
    if x_squared_norms is None:
        x_squared_norms = _solvers.row_squared_norms(X)
    else:
        x_squared_norms = check_array(x_squared_norms, dtype=X.dtype, ensure_2d=False)
    if x_squared_norms.shape[0] != X.shape[0]:
        raise ValueError(
            f"The length of x_squared_norms {x_squared_norms.shape[0]} should "
            f"be equal to the length of n_samples {X.shape[0]}."
        )
    random_state = check_random_state(random_state)
    centers, indices = _solvers.kmeans_plusplus(
        X, n_clusters, x_squared_norms, sample_weight, random_state, n_local_trials
    )
    if isinstance(X_in, np.ndarray):
        # Centres are rows of the input, in the input's own dtype (as scikit-learn).
        centers = X_in[indices]
    return centers, indices


@validate_params(v.K_MEANS_CONSTRAINTS, prefer_skip_nested_validation=False)
def k_means(
    X,
    n_clusters,
    *,
    sample_weight=None,
    init="k-means++",
    n_init="auto",
    max_iter=300,
    verbose=False,
    tol=1e-4,
    random_state=None,
    copy_x=True,
    algorithm="auto",
    return_n_iter=False,
):
    """Perform K-means clustering (functional form of :class:`KMeans`).

    Parameters are those of :class:`KMeans`, plus:

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The observations to cluster.
    n_clusters : int
        The number of clusters to form.
    sample_weight : array-like of shape (n_samples,), default=None
        The weights for each observation in `X`.
    return_n_iter : bool, default=False
        Whether or not to return the number of iterations.

    Returns
    -------
    centroid : ndarray of shape (n_clusters, n_features)
        Centroids found at the last iteration of k-means.
    label : ndarray of shape (n_samples,)
        The index of the centroid each observation is closest to.
    inertia : float
        Sum of squared distances of samples to their closest centroid.
    best_n_iter : int
        Number of iterations of the best run; only if `return_n_iter` is True.
    """
    est = KMeans(
        n_clusters=n_clusters,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        verbose=verbose,
        tol=tol,
        random_state=random_state,
        copy_x=copy_x,
        algorithm=algorithm,
    ).fit(X, sample_weight=sample_weight)
    if return_n_iter:
        return est.cluster_centers_, est.labels_, est.inertia_, est.n_iter_
    return est.cluster_centers_, est.labels_, est.inertia_


# Parameter sets that passed scikit-learn's validation (see _validate_params).
_VALID_PARAMETERS = set()
_MAX_VALID_PARAMETERS = 1024


@functools.cache
def _param_names(cls):
    return tuple(BaseEstimator._get_param_names.__func__(cls))


class _BaseKMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """What KMeans and MiniBatchKMeans share: everything but fitting."""

    @classmethod
    def _get_param_names(cls):
        # scikit-learn inspects the __init__ signature on every get_params,
        # which each fit calls to validate the parameters; the names depend on
        # the class alone.
        return list(_param_names(cls))

    def _validate_params(self):
        # scikit-learn validates the parameters on every fit (about 40 us, a
        # twentieth of a fit on digits). Whether a set passes depends on the
        # values of its scalars and only the types of the rest (an init array
        # or callable, a RandomState), so a set that passed once is not checked
        # again. A failing set is never remembered: it raises every time.
        # Only for fastkm's own constraints: a subclass may constrain more.
        constraints = (v.KMEANS_CONSTRAINTS, v.MINIBATCH_KMEANS_CONSTRAINTS)
        own = any(self._parameter_constraints is c for c in constraints)
        key = v.parameter_key(type(self), self.get_params(deep=False)) if own else None
        if key is None or key not in _VALID_PARAMETERS:
            super()._validate_params()
            if key is not None:
                if len(_VALID_PARAMETERS) >= _MAX_VALID_PARAMETERS:
                    _VALID_PARAMETERS.clear()
                _VALID_PARAMETERS.add(key)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _validated_init(self, X):
        # An init array becomes a validated C-ordered copy in X's dtype.
        init = self.init
        if v.is_array_init(init):
            init = v.check_init_array(init, X, self.n_clusters)
        return init

    def fit_predict(self, X, y=None, sample_weight=None):
        """Compute cluster centers and predict cluster index for each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data to transform.
        y : Ignored
            Not used, present here for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the cluster each sample belongs to.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def _by_scikit_learn(self, X, group, method, units=None):
        """Whether scikit-learn answers this call: its kernels are not compiled yet (``_tiers``)."""
        units = _tiers.units_for(X, group) if units is None else units
        return _tiers.choose(units, f"{type(self).__name__}.{method}") == _tiers.FALLBACK

    def predict(self, X):
        """Predict the closest cluster each sample in X belongs to.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data to predict.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the cluster each sample belongs to.
        """
        v.check_fitted(self)
        if self._by_scikit_learn(X, "predict", "predict"):
            return _fallback.predict(self, X)
        # Finiteness is checked in the labelling pass itself, not before it.
        X = v.validate_test_data(self, X, check_finite=False)
        labels, finite = _solvers.predict_labels(X, self._centers_as(X))
        if not finite:
            v.raise_not_finite(self, X)
        return labels

    def fit_transform(self, X, y=None, sample_weight=None):
        """Compute clustering and transform X to cluster-distance space.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data to transform.
        y : Ignored
            Not used, present here for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_clusters)
            X transformed in the new space.
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def transform(self, X):
        """Transform X to a cluster-distance space.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data to transform.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_clusters)
            Euclidean distance of each sample to each cluster center.
        """
        v.check_fitted(self)
        units = _tiers.units_for(X, "predict")
        if self.cluster_centers_.dtype != np.float32:
            # Distances in the wider of X's dtype and the centres'.
            units = [unit.replace("float32", "float64") for unit in units]
        if self._by_scikit_learn(X, "predict", "transform", units):
            return _fallback.transform(self, X)
        X = v.validate_test_data(self, X)
        dtype = np.result_type(X.dtype, self.cluster_centers_.dtype)
        return _solvers.euclidean_distances(X.astype(dtype, copy=False), self.cluster_centers_)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the value of X on the K-means objective.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present here for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X.

        Returns
        -------
        score : float
            Opposite of the value of X on the K-means objective.
        """
        v.check_fitted(self)
        if self._by_scikit_learn(X, "predict", "score"):
            return _fallback.score(self, X, sample_weight)
        X = v.validate_test_data(self, X)
        sample_weight = v.check_sample_weight(sample_weight, X)
        _, inertia = _solvers.labels_inertia(X, sample_weight, self._centers_as(X))
        return -inertia

    def _centers_as(self, X):
        # scikit-learn fails with a buffer dtype error when X's dtype differs
        # from the fitted centres'; fastkm computes in X's dtype instead.
        return np.ascontiguousarray(self.cluster_centers_, dtype=X.dtype)


class KMeans(_BaseKMeans):
    """K-Means clustering, a drop-in for :class:`sklearn.cluster.KMeans`.

    Same parameters, attributes, methods, errors and results as scikit-learn's
    KMeans (1.9); the assignment, centre update and k-means++ seeding run as
    Numba-compiled parallel kernels, with results independent of the number of
    threads.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters to form as well as the number of centroids.
    init : {'k-means++', 'random'}, callable or array-like of shape \
            (n_clusters, n_features), default='k-means++'
        Method for initialization: greedy k-means++; 'random' rows drawn with
        probability proportional to sample_weight; an array of initial centres;
        or a callable ``init(X, n_clusters, random_state=...)``.
    n_init : 'auto' or int, default='auto'
        Number of runs with different seeds; the run with the lowest inertia is
        kept. 'auto' means 1 for 'k-means++' or an array, 10 otherwise.
    max_iter : int, default=300
        Maximum number of iterations of a single run.
    tol : float, default=1e-4
        Relative tolerance, with regard to the mean variance of the features,
        on the total squared centre shift between iterations.
    verbose : int, default=0
        Verbosity mode.
    random_state : int, RandomState instance or None, default=None
        Determines random number generation for centroid initialization.
    copy_x : bool, default=True
        If False, X is mean-centred in place during fit and restored afterwards
        (small rounding differences may remain).
    algorithm : {"auto", "lloyd", "elkan", "hamerly", "yinyang"}, default="auto"
        K-means algorithm to use. All give the same labels, centres and
        ``n_iter_``: "lloyd" computes every distance every iteration (brute
        force); "elkan" (Elkan, 2003) keeps a lower bound per sample and centre,
        O(n_samples x n_clusters) memory; "hamerly" (Hamerly, 2010) keeps two
        bounds per sample and skips the distances they show cannot change a
        label; "yinyang" (Ding et al., 2015) keeps a lower bound per sample and
        group of about 32 centres. "auto" (fastkm's default; scikit-learn's is
        "lloyd") picks by the data's shape: "lloyd" below 32 clusters (64
        when n_features <= 16) or 16 samples per cluster, "yinyang" when
        n_features >= 16 from 256 clusters (from 128 when n_features *
        n_clusters >= 16384), "hamerly" otherwise (measurements in the
        README). With negative sample weights the bounds do not apply and
        every algorithm runs "lloyd".

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Coordinates of cluster centers.
    labels_ : ndarray of shape (n_samples,)
        Labels of each point.
    inertia_ : float
        Sum of squared distances of samples to their closest cluster center,
        weighted by the sample weights if provided.
    n_iter_ : int
        Number of iterations run.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when `X` has string feature
        names.

    See Also
    --------
    sklearn.cluster.KMeans : The reference implementation.

    Examples
    --------
    >>> from fastkm import KMeans
    >>> import numpy as np
    >>> X = np.array([[1, 2], [1, 4], [1, 0],
    ...               [10, 2], [10, 4], [10, 0]])
    >>> kmeans = KMeans(n_clusters=2, random_state=0, n_init="auto").fit(X)
    >>> kmeans.labels_
    array([1, 1, 1, 0, 0, 0], dtype=int32)
    >>> kmeans.predict([[0, 0], [12, 3]])
    array([1, 0], dtype=int32)
    >>> kmeans.cluster_centers_
    array([[10.,  2.],
           [ 1.,  2.]])
    """

    _parameter_constraints: dict = v.KMEANS_CONSTRAINTS

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        verbose=0,
        random_state=None,
        copy_x=True,
        algorithm="auto",
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm

    @fit_context
    @restored_on_interrupt()
    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training instances to cluster. Converted to C order (a copy if it
            is not already).
        y : Ignored
            Not used, present here for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X. If None, all observations
            are assigned equal weight. Not used by an array or callable init.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        if self._by_scikit_learn(X, "kmeans", "fit"):
            return _fallback.fit(self, X, sample_weight)
        X, X_owned, X_sums = v.validate_fit_data(self, X, copy=self.copy_x, accept_sparse=True)
        v.check_n_samples(X, self.n_clusters)
        n_init = v.resolve_n_init(self.n_init, self.init, 10, type(self).__name__)
        algorithm = self.algorithm
        if algorithm == "elkan" and self.n_clusters == 1:
            warnings.warn(
                "algorithm='elkan' doesn't make sense for a single cluster. Using 'lloyd' instead.",
                RuntimeWarning,
                stacklevel=2,
            )
            algorithm = "lloyd"
        random_state = check_random_state(self.random_state)
        sample_weight = v.check_sample_weight(sample_weight, X)

        init = self._validated_init(X)

        # With copy_x=False, X is centred in place: Ctrl-C from then on adds
        # the means back (to rounding, as the end of a fit does).
        given, centring, sparse = X, {}, v.is_sparse(X)
        try:
            if sparse:
                # Sparse data is not centred (that would fill it), as in scikit-learn.
                X_mean, tol = np.zeros(X.shape[1], dtype=X.dtype), _solvers.tolerance(X, self.tol)
                x_max = None
            else:
                # Mean-centring makes the ||c||^2 - 2 x.c distance expansion accurate.
                # Into a new array if X is still the caller's (copy_x=True).
                X, X_mean, tol, x_max = _solvers.center_data(
                    X,
                    self.tol,
                    in_place=X_owned,
                    sums=X_sums,
                    record=centring,
                    measure_rows=_solvers.uses_bounds(algorithm, *X.shape, self.n_clusters),
                )
                if v.is_array_init(self.init):
                    init -= X_mean

            labels, inertia, centers, n_iter = _solvers.kmeans_fit(
                X,
                sample_weight,
                self.n_clusters,
                init,
                n_init,
                self.max_iter,
                tol,
                random_state,
                verbose=self.verbose,
                validate_centers=lambda c: v.check_init_result(c, X, self.n_clusters),
                algorithm=algorithm,
                x_max=x_max,
            )
        except KeyboardInterrupt:
            if "means" in centring and not self.copy_x:
                given += centring["means"]
            raise

        if not sparse:
            if not self.copy_x:
                X += X_mean
            centers += X_mean

        v.warn_fewer_clusters(np.bincount(labels, minlength=self.n_clusters), self.n_clusters, stacklevel=2)

        self.cluster_centers_ = centers
        self._n_features_out = centers.shape[0]
        self.labels_ = labels
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self._fastkm_tier = _tiers.COMPILED
        return self
