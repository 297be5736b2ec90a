"""``fastkm.dask.KMeans``: the exact algorithms over the blocks of a dask array.

One pass over X per iteration: each block's step (``_solvers.steps``, kept
on the worker holding the block, ``_blocks.BlockState``) runs the per-block
entry, the shares are added as a tree in block order, and the driver makes
the new centres with the single-process reduction (``lloyd.finish_iteration``),
relocating empty clusters to the farthest rows as scikit-learn does. Labels
stay with the blocks, on the workers.
"""

from numbers import Integral, Real

import dask
import dask.array as da
import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names, check_array, check_is_fitted

from .. import _validation as v
from .._kmeans import KMeans as _LocalKMeans
from .._solvers.exact import choose_algorithm as _choose
from . import _blocks, _cluster, _data, _init, _solver

_CONSTRAINTS = {
    **v.KMEANS_CONSTRAINTS,
    "init": [StrOptions({"k-means||", "k-means++"}), "array-like"],
    "oversampling_factor": [Interval(Real, 0, None, closed="neither")],
    "init_rounds": [Interval(Integral, 1, None, closed="left")],
}


class KMeans(_LocalKMeans):
    """K-Means on a Dask cluster: fastkm's kernels on every block, scikit-learn's semantics.

    Takes the parameters of :class:`fastkm.KMeans`, and fits a row-chunked
    dask array (column chunks are merged), a dask DataFrame, or a numpy
    array (then it is :class:`fastkm.KMeans`). One pass over X per
    iteration, each block's step kept on the worker holding the block; the
    results equal those of :class:`fastkm.KMeans` on the same data from the
    same initial centres (labels and ``n_iter_``; centres to rounding, as
    the blocks add their sums in another order), whatever the chunks. (Two
    clusters left empty in one iteration, a rare event, may be given the
    farthest rows in another pairing.)

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters.
    init : {'k-means||', 'k-means++'} or array of shape (n_clusters, n_features), default='k-means||'
        'k-means||': ``init_rounds`` passes over the data, each drawing about
        ``oversampling_factor * n_clusters`` candidates, which fastkm's
        k-means++ and Lloyd's iterations then cluster (weighted by the rows
        nearest each). 'k-means++': exact, one pass over the data per centre.
    n_init : 'auto' or int, default='auto'
        Runs from different initial centres; the best by inertia is kept.
        'auto' is 1.
    max_iter : int, default=300
    tol : float, default=1e-4
        Relative to the mean of the features' variances, as scikit-learn's.
    verbose : int, default=0
    random_state : int, RandomState instance or None, default=None
    copy_x : bool, default=True
        Kept for the interface: dask arrays are never written.
    algorithm : {'auto', 'lloyd', 'hamerly', 'yinyang', 'elkan'}, default='auto'
        As :class:`fastkm.KMeans`, each block keeping its own bounds; 'auto'
        chooses by the whole data's shape, and 'elkan' (whose bounds take
        n_samples x n_clusters memory) runs as 'auto' does.
    oversampling_factor : float, default=2
        k-means||: candidates drawn per round, as a multiple of n_clusters.
    init_rounds : int, default=5
        k-means||: passes over the data drawing candidates.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : dask array of shape (n_samples,), int32
    inertia_ : float
    n_iter_ : int
    n_features_in_ : int
    """

    _parameter_constraints: dict = _CONSTRAINTS

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means||",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        verbose=0,
        random_state=None,
        copy_x=True,
        algorithm="auto",
        oversampling_factor=2,
        init_rounds=5,
    ):
        super().__init__(
            n_clusters,
            init=init,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            verbose=verbose,
            random_state=random_state,
            copy_x=copy_x,
            algorithm=algorithm,
        )
        self.oversampling_factor = oversampling_factor
        self.init_rounds = init_rounds

    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering over the blocks of X.

        Parameters
        ----------
        X : dask array, dask DataFrame or array-like of shape (n_samples, n_features)
            Training instances. A numpy array is fitted as :class:`fastkm.KMeans` does.
        y : Ignored
        sample_weight : dask array or array-like of shape (n_samples,), default=None
            The weights for each observation in X, chunked like X's rows.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._validate_params()
        if not dask.is_dask_collection(X):
            params = self._local_params()
            if isinstance(self.init, str) and self.init == "k-means||":
                params["init"] = "k-means++"  # k-means|| on one machine is k-means++
            local = _LocalKMeans(**params).fit(X, sample_weight=sample_weight)
            self.__dict__.update(_fitted(local))
            return self
        names = _names_of(X)
        X = _data.as_dask_array(X)
        blocks = _data.blocks_of(X, sample_weight)
        v.check_n_samples(X, self.n_clusters)
        n_init = v.resolve_n_init(self.n_init, self.init, 1, "KMeans")
        means, tol = self._moments(blocks)
        self.n_features_in_ = blocks.n_features
        _check_feature_names(self, names, reset=True)
        runner = _cluster.executor()
        streamed = not _fits_in_memory(runner, blocks)
        # Centred as fastkm.KMeans centres: the distance expansion stays accurate.
        centered_rows = blocks.map(_blocks.center_block, means)
        if not streamed:
            centered_rows = list(dask.persist(*centered_rows))
        centered = _data.Blocks(centered_rows, blocks.weights, blocks.sizes, blocks.n_features, blocks.dtype)
        x_max, w_min = self._norms_and_weights(centered)
        algorithm = self.algorithm
        if streamed or w_min < 0:
            # Read once a pass, a block has no bounds to keep; negative weights need brute force.
            algorithm = "lloyd"
        elif algorithm in ("auto", "elkan"):
            # Elkan's O(n k) bounds per block buy nothing here.
            algorithm = _choose(centered.n_samples, blocks.n_features, self.n_clusters)
        if streamed:
            if self.verbose:
                print(
                    "X does not fit in the workers' memory: its blocks are read from its source every pass."
                )

            def place_states(centers):
                return _solver.StreamedStates(runner, blocks, means)

        else:
            rows, row_weights = runner.blocks(centered.rows), runner.blocks(centered.weights)

            def place_states(centers):
                return _solver.KeptStates(runner, rows, row_weights, centers, algorithm, x_max)

        random_state = check_random_state(self.random_state)
        best = None
        for _ in range(n_init):
            centers_init = self._initial_centers(centered, means, random_state)
            run = _solver.single_run(
                runner, place_states, centered.offsets, centers_init, self.max_iter, tol, self.verbose
            )
            # scikit-learn's rule: a new run must beat the best inertia *and*
            # be a different clustering (a relabelled copy can win on rounding).
            if best is None or (
                run[1] < best[1] and not _solver.same_clustering(runner, best[0], run[0], self.n_clusters)
            ):
                best = run
        label_blocks, inertia, centers, n_iter = best
        self.cluster_centers_ = centers + means
        self._n_features_out = self.n_clusters
        self.labels_ = _data.labels_array(label_blocks, blocks.sizes)
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        sizes = da.bincount(self.labels_, minlength=self.n_clusters).compute()
        v.warn_fewer_clusters(sizes, self.n_clusters, stacklevel=2)
        return self

    def _norms_and_weights(self, blocks):
        """The largest squared row norm (the bounds' margin) and the smallest weight."""
        parts = [
            dask.delayed(_norm_and_weight)(x, w) for x, w in zip(blocks.rows, blocks.weights, strict=True)
        ]
        found = dask.compute(*parts)
        for (_, _, finite), w in zip(found, blocks.weights, strict=True):
            if not finite:
                check_array(w.compute(), ensure_2d=False, input_name="sample_weight")
        return max(f[0] for f in found), min(f[1] for f in found)

    def _local_twin(self):
        """A fitted fastkm.KMeans with this model's centres: what numpy input is answered by."""
        twin = _LocalKMeans(**self._local_params())
        twin.__dict__.update(_fitted(self))
        return twin

    def _local_params(self):
        params = self.get_params(deep=False)
        params.pop("oversampling_factor")
        params.pop("init_rounds")
        return params

    def _moments(self, blocks):
        """Column means (X's dtype) and the absolute tolerance; non-finite X raises scikit-learn's error."""
        moments = _data.tree(_blocks.merge_moments, blocks.map(_blocks.column_moments)).compute()
        n, means, m2 = moments
        if not (np.isfinite(means).all() and np.isfinite(m2).all()):
            finite = dask.compute(*blocks.map(_blocks.is_finite))
            if False in finite:  # else finite values whose squares overflowed
                bad = blocks.rows[finite.index(False)].compute()
                check_array(bad, ensure_all_finite=True, input_name="X", estimator=self)
        variances = m2 / n
        return means.astype(blocks.dtype), float(np.mean(variances) * self.tol) if self.tol else 0.0

    def _initial_centers(self, blocks, means, random_state):
        init = self.init
        if isinstance(init, str):
            seed = int(random_state.randint(np.iinfo(np.int32).max))
            if init == "k-means||":
                return _init.kmeans_parallel(
                    blocks, self.n_clusters, self.oversampling_factor, self.init_rounds, seed
                )
            return _init.kmeans_plusplus(blocks, self.n_clusters, seed)
        init = check_array(init, dtype=blocks.dtype, copy=True, order="C")
        v.validate_center_shape(np.empty((0, blocks.n_features)), init, self.n_clusters)
        return init - means

    def _checked(self, X):
        """Dask input as a dask array of the fitted width and names (scikit-learn's message otherwise)."""
        _check_feature_names(self, _names_of(X), reset=False)
        X = _data.as_dask_array(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} "
                f"is expecting {self.n_features_in_} features as input."
            )
        return X

    def _dask_map(self, X, func, *args, dtype, drop_axis=True, new_axis=None, chunks=None):
        # X: checked (``_checked``).
        centers = np.ascontiguousarray(self.cluster_centers_, dtype=X.dtype)
        return X.map_blocks(
            func, centers, *args, dtype=dtype, drop_axis=drop_axis, new_axis=new_axis, chunks=chunks
        )

    def predict(self, X):
        """Closest cluster of each sample: a dask array for dask input, else as :class:`fastkm.KMeans`.

        Parameters
        ----------
        X : dask array, dask DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : dask array or ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        if not dask.is_dask_collection(X):
            return self._local_twin().predict(X)
        return self._dask_map(self._checked(X), _predict_block, dtype=np.int32, drop_axis=1)

    def transform(self, X):
        """Distances to every centre: a dask array for dask input, else as :class:`fastkm.KMeans`.

        Parameters
        ----------
        X : dask array, dask DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : dask array or ndarray of shape (n_samples, n_clusters)
        """
        check_is_fitted(self)
        if not dask.is_dask_collection(X):
            return self._local_twin().transform(X)
        X = self._checked(X)
        chunks = (X.chunks[0], (self.n_clusters,))
        return self._dask_map(X, _blocks.block_distances, dtype=X.dtype, drop_axis=None, chunks=chunks)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the value of X on the K-means objective.

        Parameters
        ----------
        X : dask array, dask DataFrame or array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : dask array or array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        if not dask.is_dask_collection(X):
            return self._local_twin().score(X, sample_weight=sample_weight)
        X = self._checked(X)
        blocks = _data.blocks_of(X, sample_weight)
        centers = np.ascontiguousarray(self.cluster_centers_, dtype=X.dtype)
        parts = blocks.map(_inertia_of, centers, weights=True)
        return -float(_data.tree(_blocks.add, parts).compute())


# A fit keeps X on the workers while this share of their memory holds it
# (dask's workers spill at 60% of their limit; the rest is the tasks' room).
MEMORY_SHARE = 0.5


def _fits_in_memory(runner, blocks):
    """Whether the workers can keep X between iterations, or must stream it.

    Kept, a row takes its centred copy, about as much again in tiles, its
    label and (Hamerly's) two bounds.
    """
    memory = runner.memory()
    itemsize = np.dtype(blocks.dtype).itemsize
    needed = blocks.n_samples * (2 * itemsize * blocks.n_features + 4 + 16)
    return memory is None or needed <= MEMORY_SHARE * memory


def _names_of(X):
    """What scikit-learn reads feature names from: a dask DataFrame's empty pandas twin, else X."""
    return X._meta if hasattr(X, "columns") and hasattr(X, "_meta") else X


def _fitted(estimator):
    """An estimator's fitted state: every attribute that is not a parameter."""
    params = estimator.get_params(deep=False)
    return {k: val for k, val in vars(estimator).items() if k not in params}


def _norm_and_weight(X, sample_weight):
    weights = _blocks.weights_of(X, sample_weight)
    x_max = float(np.einsum("ij,ij->i", X, X).max()) if len(X) else 0.0
    w_min = float(weights.min()) if len(weights) else 0.0
    return x_max, w_min, bool(np.isfinite(weights).all())


def _predict_block(X, centers):
    labels, finite = _blocks.block_labels(X, centers)
    if not finite:
        check_array(X, ensure_all_finite=True, input_name="X")
    return labels


def _inertia_of(X, sample_weight, centers):
    labels = _predict_block(X, centers)
    return _blocks.labelled_inertia(X, sample_weight, centers, labels)
