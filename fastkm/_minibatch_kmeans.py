"""MiniBatchKMeans: the scikit-learn-facing layer of the mini-batch solver."""

import numpy as np
from sklearn.utils import check_random_state

from . import _tiers
from . import _validation as v
from ._fit_context import fit_context
from ._interrupt import restored_on_interrupt
from ._kmeans import _BaseKMeans, _fallback
from ._lazy import LazyModule

# Imported on first use: ``import fastkm`` imports no numba.
_solvers = LazyModule("fastkm._solvers", __name__)


class MiniBatchKMeans(_BaseKMeans):
    """Mini-Batch K-Means clustering, a drop-in for :class:`sklearn.cluster.MiniBatchKMeans`.

    Same parameters, attributes, methods and errors as scikit-learn's
    MiniBatchKMeans (1.9). The whole optimisation loop (drawing batches,
    labelling them, moving the centres, restarting starved centres, early
    stopping) runs in compiled code, in slices of steps of about 0.1 s
    (so that Ctrl-C is answered), instead of a Python loop over steps.
    It draws its random numbers from ``random_state`` exactly as
    scikit-learn does, so with the same seed it visits the same batches and
    gives the same result, up to floating-point ties.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters to form as well as the number of centroids.
    init : {'k-means++', 'random'}, callable or array-like of shape \
            (n_clusters, n_features), default='k-means++'
        Method for initialization, applied to ``init_size`` random rows:
        greedy k-means++; 'random' rows drawn with probability proportional to
        sample_weight; an array of initial centres; or a callable
        ``init(X, n_clusters, random_state=...)``.
    max_iter : int, default=100
        Maximum number of passes over the data (as counted in steps of
        ``batch_size`` rows) before stopping, independently of early stopping.
    batch_size : int, default=1024
        Size of the mini-batches.
    verbose : int, default=0
        Verbosity mode.
    compute_labels : bool, default=True
        Compute labels and inertia for the whole dataset once the centres have
        converged.
    random_state : int, RandomState instance or None, default=None
        Determines random number generation for the initialization, the
        mini-batches and the reassignment of starved centres.
    tol : float, default=0.0
        Early stopping on the squared change of the centres between steps,
        relative to the mean variance of the features; 0 disables it.
    max_no_improvement : int or None, default=10
        Early stopping after this many steps without improvement of the
        smoothed batch inertia; None disables it.
    init_size : int, default=None
        Number of random rows used to make each candidate initialization
        (and to score it). None means ``3 * batch_size``, or
        ``3 * n_clusters`` if that is larger.
    n_init : 'auto' or int, default="auto"
        Number of candidate initializations; the one with the lowest inertia
        on a validation sample is kept. 'auto' means 1 for 'k-means++' or an
        array, 3 otherwise.
    reassignment_ratio : float, default=0.01
        Centres whose accumulated weight falls below this fraction of the
        largest are restarted on random batch rows.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Coordinates of cluster centers.
    labels_ : ndarray of shape (n_samples,)
        Labels of each point (if compute_labels is set to True).
    inertia_ : float
        The value of the inertia criterion associated with the chosen
        partition if compute_labels is set to True. If compute_labels is set to
        False, it's an approximation of the inertia based on an exponentially
        weighted average of the batch inertiae.
    n_iter_ : int
        Number of iterations over the full dataset.
    n_steps_ : int
        Number of minibatches processed.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when `X` has string feature
        names.

    See Also
    --------
    sklearn.cluster.MiniBatchKMeans : The reference implementation.
    fastkm.KMeans : Exact k-means on all the data at every iteration.

    Examples
    --------
    >>> from fastkm import MiniBatchKMeans
    >>> import numpy as np
    >>> X = np.array([[1, 2], [1, 4], [1, 0],
    ...               [4, 2], [4, 0], [4, 4],
    ...               [4, 5], [0, 1], [2, 2],
    ...               [3, 2], [5, 5], [1, -1]])
    >>> kmeans = MiniBatchKMeans(n_clusters=2, random_state=0, batch_size=6, n_init="auto")
    >>> kmeans = kmeans.partial_fit(X[0:6, :])
    >>> kmeans = kmeans.partial_fit(X[6:12, :])
    >>> kmeans.cluster_centers_
    array([[3.375, 3.   ],
           [0.75 , 0.5  ]])
    >>> kmeans.predict([[0, 0], [4, 4]])
    array([1, 0], dtype=int32)
    >>> kmeans = MiniBatchKMeans(n_clusters=2, random_state=0, batch_size=6, max_iter=10,
    ...                          n_init="auto").fit(X)
    >>> kmeans.cluster_centers_
    array([[3.20967742, 3.56451613],
           [1.32758621, 0.77586207]])
    >>> kmeans.predict([[0, 0], [4, 4]])
    array([1, 0], dtype=int32)
    """

    _parameter_constraints: dict = v.MINIBATCH_KMEANS_CONSTRAINTS

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        max_iter=100,
        batch_size=1024,
        verbose=0,
        compute_labels=True,
        random_state=None,
        tol=0.0,
        max_no_improvement=10,
        init_size=None,
        n_init="auto",
        reassignment_ratio=0.01,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio

    def _check_params_vs_input(self, X):
        v.check_n_samples(X, self.n_clusters)
        self._tol = _solvers.tolerance(X, self.tol)
        self._n_init = v.resolve_n_init(self.n_init, self.init, 3, type(self).__name__)
        self._batch_size = min(self.batch_size, X.shape[0])
        self._init_size = v.resolve_init_size(self.init_size, self._batch_size, self.n_clusters, X.shape[0])

    @fit_context
    @restored_on_interrupt()
    def fit(self, X, y=None, sample_weight=None):
        """Compute the centroids on X by chunking it into mini-batches.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training instances to cluster. Converted to C order (a copy if it
            is not already).
        y : Ignored
            Not used, present here for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X: batches are drawn with
            probability proportional to them. Not used by an array or callable
            init.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        if self._by_scikit_learn(X, "minibatch", "fit"):
            return _fallback.fit(self, X, sample_weight)
        X, _, _ = v.validate_fit_data(self, X, copy=False, accept_sparse=True)
        self._check_params_vs_input(X)
        random_state = check_random_state(self.random_state)
        sample_weight = v.check_sample_weight(sample_weight, X)
        init = self._validated_init(X)

        centers = _solvers.minibatch_init(
            X,
            sample_weight,
            self.n_clusters,
            init,
            self._n_init,
            self._init_size,
            random_state,
            self.verbose,
            validate_centers=lambda c: v.check_init_result(c, X, self.n_clusters),
        )
        centers = np.array(centers, dtype=X.dtype, order="C")
        n_steps, self._ewa_inertia, self._counts, self._n_since_last_reassign = _solvers.minibatch_fit(
            X,
            sample_weight,
            centers,
            self._batch_size,
            self.max_iter,
            self._tol,
            self.max_no_improvement,
            self.reassignment_ratio,
            random_state,
            verbose=self.verbose,
        )

        self.cluster_centers_ = centers
        self._n_features_out = centers.shape[0]
        self.n_steps_ = n_steps
        self.n_iter_ = int(np.ceil((n_steps * self._batch_size) / X.shape[0]))
        if self.compute_labels:
            self.labels_, self.inertia_ = _solvers.labels_inertia(X, sample_weight, centers)
        else:
            # scikit-learn's estimate (and its TypeError if there was no estimate yet).
            self.inertia_ = self._ewa_inertia * np.sum(sample_weight)
        self._fastkm_tier = _tiers.COMPILED
        return self

    @fit_context
    @restored_on_interrupt("cluster_centers_", "_counts")
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update k means estimate on a single mini-batch X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training instances to cluster, all of them one mini-batch.
        y : Ignored
            Not used, present here for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X, used as they are in the
            step. Not used by an array or callable init.

        Returns
        -------
        self : object
            Return updated estimator.
        """
        if self._by_scikit_learn(X, "minibatch", "partial_fit"):
            return _fallback.partial_fit(self, X, sample_weight)
        has_centers = hasattr(self, "cluster_centers_")
        if has_centers:
            X = v.validate_test_data(self, X)
        else:
            X, _, _ = v.validate_fit_data(self, X, copy=False, accept_sparse=True)
        self._random_state = getattr(self, "_random_state", check_random_state(self.random_state))
        sample_weight = v.check_sample_weight(sample_weight, X)
        self.n_steps_ = getattr(self, "n_steps_", 0)

        if not has_centers:
            self._check_params_vs_input(X)
            centers = _solvers.subset_centroids(
                X,
                sample_weight,
                self.n_clusters,
                self._validated_init(X),
                self._random_state,
                self._init_size,
                validate_centers=lambda c: v.check_init_result(c, X, self.n_clusters),
            )
            self.cluster_centers_ = np.array(centers, dtype=X.dtype, order="C")
            self._counts = np.zeros(self.n_clusters, dtype=X.dtype)
            self._n_since_last_reassign = 0

        reassign, self._n_since_last_reassign = _solvers.reassign_due(
            self._counts, self._n_since_last_reassign, self._batch_size
        )
        # A chunk of another float dtype carries the model over to its dtype.
        centers = self._centers_as(X)
        counts = self._counts.astype(X.dtype, copy=False)
        if not (centers.flags.writeable and counts.flags.writeable):
            # A model loaded read-only (a memory map): the step updates copies.
            centers, counts = centers.copy(), counts.copy()
        self._counts = counts
        _solvers.minibatch_partial_step(
            X,
            sample_weight,
            centers,
            self._counts,
            self._random_state,
            reassign,
            self.reassignment_ratio,
            self.verbose,
        )
        self.cluster_centers_ = centers
        if self.compute_labels:
            self.labels_, self.inertia_ = _solvers.labels_inertia(X, sample_weight, centers)
        self.n_steps_ += 1
        self._n_features_out = self.cluster_centers_.shape[0]
        self._fastkm_tier = _tiers.COMPILED
        return self
