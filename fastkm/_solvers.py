"""K-means solvers: iteration loops, convergence, relocation, seeding, n_init.

Arrays arrive validated (C-contiguous float32/float64, weights of the same
dtype). This module allocates buffers and calls kernels; it knows nothing of
estimators.
"""

import contextlib
import functools
import typing

import numpy as np
import scipy.sparse as sp
import threadpoolctl
from sklearn.utils.sparsefuncs import mean_variance_axis

from ._kernels import bounds, elkan, lloyd, minibatch, mixed, sparse, stats, tiles, unique, yinyang
from ._kernels import init as init_kernels
from ._kernels._jit import CHUNK, MAX_GROUPS, start_threads
from ._kernels.tiles import tile_stack

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


def _squared_norms(A):
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
        return _squared_norms(X)
    out = np.empty(X.shape[0])
    sparse.row_sq_norms(csr_parts(X), out)
    return out


def _squared_norms_float64(X, block=1 << 15):
    """Squared row norms in float64, taken a block of rows at a time.

    scikit-learn takes float32 rows' norms on float64 copies of them; blocks
    bound the size of the copy.
    """
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], block):
        rows = X[start : start + block].astype(np.float64)
        out[start : start + block] = _squared_norms(rows)
    return out


def center_data(X, tol, in_place=True, sums=None):
    """Centre X on its column means; return it with the means and absolute tol.

    The absolute tolerance is ``tol`` times the mean of the columns' variances.
    Both come out bit for bit as scikit-learn's ``X.mean(axis=0)``,
    ``np.var(X, axis=0)`` and ``X -= mean`` give them, in one pass less and
    without numpy's temporary copy of X. With ``in_place=False`` the centred
    data goes to a new array and X is left as it is. ``sums``, if given, must
    be ``stats.column_sums(X)`` (validation computes them).

    Returns
    -------
    X : ndarray, centred (X itself when ``in_place``)
    means : ndarray of shape (n_features,), dtype of X
    tol : float
    """
    n_samples, n_features = X.shape
    if n_features < 2 or not X.flags.writeable:
        # numpy sums a single column pairwise; let numpy do it. A read-only X
        # (copy_x=False) gets numpy's "output array is read-only", as in sklearn.
        if not in_place:
            X = X.copy()
        variances = np.var(X, axis=0) if tol else None
        means = X.mean(axis=0)
        X -= means
    else:
        # Divided as numpy's mean and var divide: by an intp count, in place.
        count = np.intp(n_samples)
        means = stats.column_sums(X) if sums is None else sums.copy()
        np.true_divide(means, count, out=means, casting="unsafe")
        out = X if in_place else np.empty_like(X)
        variances = stats.center_columns(X, means, out)
        np.true_divide(variances, count, out=variances, casting="unsafe")
        X = out
    return X, means, (np.mean(variances) * tol if tol else 0)


def is_same_clustering(labels1, labels2, n_clusters):
    """True if two labelings are equal up to a permutation of the labels."""
    mapping = np.full(n_clusters, -1, dtype=np.int64)
    mapping[labels1] = labels2
    return bool(np.array_equal(mapping[labels1], labels2))


# Lloyd and k-means++ keep a feature-major copy of X (see lloyd._assign_rows)
# when it takes at most this many bytes; it saves re-transposing X on every
# iteration or seeding pass.
_TILED_COPY_BUDGET = 256 << 20


# Two sums of n non-negative terms in different orders differ by at most about
# n * eps relative (each is within (n - 1) * eps / 2 of the exact sum).
_TIE_RTOL_PER_ROW = 2 * np.finfo(np.float64).eps


def kmeans_plusplus(X, n_clusters, x_squared_norms, sample_weight, random_state, n_local_trials=None):
    """Greedy k-means++ seeding on validated data.

    Draws from ``random_state`` exactly what scikit-learn draws (one weighted
    choice, then ``n_local_trials`` uniforms per further centre), so a shared
    seed picks the same points. On dense float64 data, candidates whose
    potentials differ by rounding alone are ranked with scikit-learn's
    arithmetic (see ``_rank_candidates``); on float32 data, which scikit-learn
    scores in float32 and fastkm in float64, and on CSR data, such a near-tie
    can go the other way.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), dtype of X
    indices : ndarray of shape (n_clusters,), int
    """
    start_threads()
    n_samples, n_features = X.shape
    n_chunks = -(-n_samples // CHUNK)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    first = random_state.choice(n_samples, p=sample_weight / sample_weight.sum())
    # One call yields the same stream as scikit-learn's one call per centre.
    uniforms = random_state.uniform(size=(n_clusters - 1, n_local_trials))
    # scikit-learn's arithmetic is followed on dense float64 data only.
    exact = X.dtype == np.float64 and not sp.issparse(X)
    if exact:
        norms, tie_rtol = np.asarray(x_squared_norms, dtype=np.float64), _TIE_RTOL_PER_ROW * n_samples
    elif sp.issparse(X):
        norms, tie_rtol = np.asarray(x_squared_norms, dtype=np.float64), -1.0
    else:
        norms, tie_rtol = _squared_norms_float64(X), -1.0
    weights = np.asarray(sample_weight, dtype=np.float64)
    centers = np.empty((n_clusters, n_features), dtype=X.dtype)
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = first
    closest, mass = np.empty(n_samples), np.empty(n_samples)
    chunk_mass, potential = np.empty((n_chunks, 1)), np.zeros(1)
    candidates = np.empty(n_local_trials, dtype=np.int64)
    # Dense X in float64 tiles, kept across the seeding passes (if within budget).
    tiles = np.empty((0, 0, 0)) if sp.issparse(X) else _tiled_copy_storage(n_chunks, n_features, np.float64)
    n_groups = n_groups_for(n_samples, n_local_trials, 0)
    rows = csr_parts(X) if sp.issparse(X) else X

    def steps(k_start, k_stop, forced=-1, forced_pot=0.0):
        return init_kernels.kmeans_plusplus(
            rows, tiles, norms, weights, uniforms, n_groups, closest, mass, chunk_mass, potential,
            centers, indices, candidates, k_start, k_stop, forced, forced_pot, tie_rtol,
        )  # fmt: skip

    k = steps(0, 1)
    if exact:
        with _serial_blas(n_samples * n_features):
            _first_distances_as_sklearn(X, norms, weights, first, (closest, mass, chunk_mass, potential))
    while k < n_clusters:
        k = steps(k, n_clusters)
        if k < n_clusters:
            with _serial_blas(n_samples * n_features * n_local_trials):
                ranked = _rank_candidates(X, norms, weights, closest, candidates)
            k = steps(k, k + 1, *ranked)
    return centers, indices.astype(int)


@functools.cache
def _blas_controller():
    return threadpoolctl.ThreadpoolController()


# Products of fewer elements than this run on one BLAS thread anyway (and
# setting the limit costs more than they take: 70 us a seeding on digits).
_SERIAL_BLAS_FROM = 1 << 17


def _serial_blas(size):
    """A context in which numpy's BLAS runs on the calling thread alone, for a product of ``size`` elements.

    BLAS threads spin for a while after a call, and would take the cores from
    the next kernel's threads. A GEMM's entries do not depend on its thread
    count, but a long GEMV's sums can: fastkm follows scikit-learn's GEMV as
    it runs on one thread (as it does on small inputs).
    """
    if size < _SERIAL_BLAS_FROM:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


def _first_distances_as_sklearn(X, x_squared_norms, sample_weight, first, state):
    """Reset k-means++'s state after the first centre to scikit-learn's bits.

    scikit-learn scores one centre against X with a GEMV, which may round in
    another order than the GEMM (FMA chain) of the later steps, and fastkm's
    kernels follow the GEMM.

    state : the kernel's ``closest``, ``mass``, ``chunk_mass_out`` and
        ``potential``, all OUT
    """
    closest, mass, chunk_mass, potential = state
    dist = _gemm_sq_distances(X[first : first + 1], X, x_squared_norms)
    closest[:] = dist[0]
    np.multiply(sample_weight, closest, out=mass)
    chunk_mass[:, 0] = np.add.reduceat(mass, np.arange(0, X.shape[0], CHUNK))
    potential[0] = (dist @ sample_weight)[0]


def _gemm_sq_distances(C, X, x_squared_norms):
    """Squared distances from the rows of C to those of X, float64 rows only.

    scikit-learn's ``euclidean_distances(C, X, Y_norm_squared=...,
    squared=True)`` for float64, operation for operation (a test holds them
    bit-equal), without its input checks (300 us on digits).
    """
    dist = -2 * (C @ X.T)
    dist += np.einsum("ij,ij->i", C, C)[:, np.newaxis]
    dist += x_squared_norms[np.newaxis, :]
    return np.maximum(dist, 0, out=dist)


def _rank_candidates(X, x_squared_norms, sample_weight, closest, candidates):
    """The candidate scikit-learn's k-means++ step takes, and its potential.

    The same calls as scikit-learn's step (GEMM distances, a GEMV for the
    potentials), so near-tied candidates are ranked by the same roundings.
    """
    dist = _gemm_sq_distances(X[candidates], X, x_squared_norms)
    np.minimum(closest, dist, out=dist)
    pots = dist @ sample_weight.reshape(-1, 1)
    best = int(np.argmin(pots))
    return best, pots[best, 0]


def init_centroids(X, n_clusters, init, random_state, sample_weight, x_squared_norms):
    """Initial centres from ``init``: 'k-means++', 'random', an array or a callable.

    An array must already be validated (and mean-centred with X). A callable's
    result is returned as given; the caller validates it.
    """
    if isinstance(init, str) and init == "k-means++":
        centers, _ = kmeans_plusplus(X, n_clusters, x_squared_norms, sample_weight, random_state)
    elif isinstance(init, str) and init == "random":
        seeds = random_state.choice(
            X.shape[0], size=n_clusters, replace=False, p=sample_weight / sample_weight.sum()
        )
        centers = X[seeds].toarray() if sp.issparse(X) else X[seeds]
    elif callable(init):
        centers = init(X, n_clusters, random_state=random_state)
    else:
        centers = init
    return centers


def choose_algorithm(n_samples, n_features, n_clusters):
    """The exact algorithm ``algorithm="auto"`` runs for data of this shape.

    From measurements on this project's benchmark machine (see the README):
    Hamerly's bounds cost a few nanoseconds per sample and iteration, which
    pays once scoring a sample against every centre costs more: from 32
    clusters (1.2-1.4x at d=8-16), from 64 when n_features <= 4, where a
    score is cheapest (about even at 32, 1.1-1.3x at 64), and once clusters
    hold enough samples for the bounds to settle. Yinyang's group bounds cost
    more per sample again, and pay once a distance is dearer still: from 128
    clusters and n_features * n_clusters >= 4096 (1.15-2.2x faster than
    Hamerly there, 0.7-0.8x on colour data). Elkan's per-centre bounds are
    never picked: where they pay (d=64, k=128) Yinyang does as well in a
    fraction of the memory.
    """
    min_clusters = 64 if n_features <= 4 else 32
    if n_clusters < min_clusters or n_samples < 16 * n_clusters:
        return "lloyd"
    if n_clusters >= 128 and n_features >= 8 and n_features * n_clusters >= 4096:
        return "yinyang"
    return "hamerly"


# Collapsing duplicates is tried from this many rows, on a strided sample of
# _DUPLICATES_SAMPLE rows first: the full pass costs about 20-120 ns a row,
# a few brute-force iterations' worth, and data without duplicates (most
# continuous data) should not pay it.
_DUPLICATES_MIN_ROWS = 1 << 14
_DUPLICATES_SAMPLE = 1 << 12
# A sample with fewer duplicates than this share is not worth the full pass...
_SAMPLE_DUPLICATES_MIN = 1 / 32
# ... and a full pass that leaves more than this share of the rows is dropped.
_DISTINCT_MAX = 0.8


class DistinctRows(typing.NamedTuple):
    """X's distinct rows, their merged weights, and which one each row of X is."""

    X: np.ndarray
    sample_weight: np.ndarray
    inverse: np.ndarray


def distinct_rows(X, sample_weight):
    """X's distinct rows if duplicates make a real share of X, else None.

    Lloyd's iterates on the distinct rows, weighted by the total weight of
    their copies, are those on X (copies share a label), up to the rounding of
    the sums. Colour data is where this pays: china.jpg's 273,280 pixels hold
    96,615 colours.
    """
    n_samples = X.shape[0]
    if not _DUPLICATES_MIN_ROWS <= n_samples < 2**31:
        return None
    bits = X.view(np.uint64 if X.dtype == np.float64 else np.uint32)
    distinct = np.empty_like(bits)
    inverse = np.empty(n_samples, dtype=np.int64)
    sample = np.ascontiguousarray(bits[:: n_samples // _DUPLICATES_SAMPLE][:_DUPLICATES_SAMPLE])
    n_sample_distinct = unique.distinct_rows(sample, distinct, inverse)
    if n_sample_distinct > (1 - _SAMPLE_DUPLICATES_MIN) * len(sample):
        return None
    n_distinct = unique.distinct_rows(bits, distinct, inverse)
    if n_distinct > _DISTINCT_MAX * n_samples:
        return None
    weights = np.empty(n_distinct, dtype=sample_weight.dtype)
    unique.merged_weights(inverse, sample_weight, weights)
    return DistinctRows(distinct[:n_distinct].view(X.dtype), weights, inverse)


def _tiled_copy_storage(n_tiles, n_features, dtype):
    """Room for ``n_tiles`` tiles of X, or no tiles (shape (0, 0, 0)) if over budget."""
    if n_tiles * tile_stack(1, n_features, dtype).nbytes > _TILED_COPY_BUDGET:
        return np.empty((0, 0, 0), dtype=dtype)
    return tile_stack(n_tiles, n_features, dtype)


def _tile_storage(X, n_groups):
    """Room for X in Lloyd's tiles (filled by the first iteration), if within budget."""
    return _tiled_copy_storage(lloyd.n_tiles(n_groups, X.shape[0]), X.shape[1], X.dtype)


def _no_tiles(X):
    return np.empty((0, 0, 0), dtype=X.dtype)


def _assign(X, centers, labels, n_groups, tiles=None, norms=None):
    """Nearest-centre labels, in place.

    ``norms`` are the centres' squared norms, numpy's (scikit-learn's) if
    None. Returns how many labels changed and, when X is read directly (no
    ``tiles``), whether all of X is finite.
    """
    changed = np.empty(n_groups, dtype=np.int64)
    norms = _squared_norms(centers) if norms is None else norms
    # Labels alone: no weights, no centre sums.
    no_weights, no_sums = np.empty(0, dtype=X.dtype), np.empty((n_groups, 0, 0))
    if sp.issparse(X):
        n_changed = sparse.assign_labels(csr_parts(X), no_weights, centers, norms, labels, no_sums, changed)
        return int(n_changed), True
    tiles = _no_tiles(X) if tiles is None else tiles
    n_changed, finite = lloyd.assign_labels(
        X, tiles, False, no_weights, centers, norms, labels, no_sums, changed
    )
    return int(n_changed), bool(finite)


def _relocate_empty_clusters(X, sample_weight, centers_old, sums, weights, labels):
    """Give each empty cluster the point farthest from its centre (in place).

    Rare, so plain numpy, with scikit-learn's exact choice of points (its
    argpartition call) so that results stay identical.
    """
    empty = np.flatnonzero(weights == 0)
    n_empty = empty.shape[0]
    if n_empty == 0:
        return
    if sp.issparse(X):
        distances = np.empty(X.shape[0])
        sparse.label_distances(csr_parts(X), centers_old, labels, distances)
    else:
        distances = ((X - centers_old[labels]) ** 2).sum(axis=1)
    if np.max(distances) == 0:
        return
    far = np.argpartition(distances, -n_empty)[: -n_empty - 1 : -1]
    for new_cluster, far_idx in zip(empty, far, strict=True):
        weight = sample_weight[far_idx]
        old_cluster = labels[far_idx]
        row = X[far_idx].toarray()[0] if sp.issparse(X) else X[far_idx]
        sums[old_cluster] -= row * weight
        sums[new_cluster] = row * weight
        weights[new_cluster] = weight
        weights[old_cluster] -= weight


def lloyd_single(
    X, sample_weight, centers_init, max_iter=300, verbose=False, tol=1e-4, algorithm="lloyd", distinct=None
):
    """One run of Lloyd's iterations from ``centers_init``.

    Semantics follow scikit-learn: stop on unchanged labels (strict convergence)
    or when the total squared centre shift is at most ``tol``; after a
    non-strict stop, labels are recomputed against the final centres.
    ``algorithm="hamerly"``, ``"yinyang"`` and ``"elkan"`` give the same iterates, skipping
    the distances that their bounds show cannot change a label; ``"auto"``
    picks by shape (``choose_algorithm``). With ``distinct`` (from
    ``distinct_rows``), the iterations run on X's distinct rows and their
    merged weights; what scikit-learn does row by row (empty-cluster
    relocation, the inertia) still sees every row.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int32
    inertia : float
    centers : ndarray of shape (n_clusters, n_features)
    n_iter : int
    """
    rows, row_weight = (X, sample_weight) if distinct is None else (distinct.X, distinct.sample_weight)
    n_rows, n_features = rows.shape
    n_clusters = centers_init.shape[0]
    n_groups = n_groups_for(n_rows, n_clusters, n_features)
    if sp.issparse(rows):
        n_groups = csr_n_groups(rows, n_clusters, n_groups)
    centers = np.array(centers_init, dtype=X.dtype, order="C")
    new_centers = np.empty_like(centers)
    labels = np.full(n_rows, -1, dtype=np.int32)
    if algorithm == "auto":
        algorithm = choose_algorithm(n_rows, n_features, n_clusters)
    if algorithm != "lloyd" and np.any(sample_weight < 0):
        # Negative weights can put centres outside the data, beyond the
        # rounding margin the bounds are built on; brute force is safe. The
        # rows' own weights: merged ones can hide a negative one, which an
        # empty cluster's relocation still moves alone.
        algorithm = "lloyd"
    if sp.issparse(rows):
        # One kernel for CSR rows: every algorithm gives Lloyd's iterates.
        step = _SparseLloydStep(rows, None, row_weight, labels, n_groups, centers)
    elif algorithm == "lloyd" and _scores_in_float32(rows, n_groups):
        step = _MixedLloydStep(rows, None, row_weight, labels, n_groups, centers)
    else:
        # Elkan reads X in tiles only once: no copy is kept for it.
        tiles = _no_tiles(rows) if algorithm == "elkan" else _tile_storage(rows, n_groups)
        step = _STEPS[algorithm](rows, tiles, row_weight, labels, n_groups, centers)
    weights = step.weights

    def all_labels():
        return labels if distinct is None else labels[distinct.inverse]

    strict_convergence = False
    for i in range(max_iter):
        n_changed, n_empty, center_shift_tot = step(i == 0, centers, new_centers)
        if n_empty:
            # new_centers holds the sums: relocate, then average as usual.
            _relocate_empty_clusters(X, sample_weight, centers, new_centers, weights, all_labels())
            lloyd.average_centers(new_centers, weights)
            center_shift_tot = lloyd.center_shift_total(centers, new_centers)
            step.after_relocation(centers, new_centers)
        if verbose:
            inertia = _inertia(X, sample_weight, centers, all_labels())
            print(f"Iteration {i}, inertia {inertia}.")
        centers, new_centers = new_centers, centers
        if n_changed == 0:
            if verbose:
                print(f"Converged at iteration {i}: strict convergence.")
            strict_convergence = True
            break
        if center_shift_tot <= tol:
            if verbose:
                print(f"Converged at iteration {i}: center shift {center_shift_tot} within tolerance {tol}.")
            break

    if not strict_convergence:
        step.relabel(centers)
    labels = all_labels()
    return labels, _inertia(X, sample_weight, centers, labels), centers, i + 1


class _LloydStep:
    """One brute-force iteration: every distance, every time.

    Holds what persists across iterations: the labels, the centre sums (see
    ``lloyd.accumulate_changes``) and the per-group scratch.
    """

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        n_clusters, n_features = centers_init.shape
        self.X, self.tiles, self.sample_weight, self.labels = X, tiles, sample_weight, labels
        self.group_partials = np.empty((n_groups, n_clusters, n_features + 2))
        self.group_changed = np.empty(n_groups, dtype=np.int64)
        self.sums = np.zeros((n_clusters, n_features + 2))
        self.weights = np.empty(n_clusters, dtype=X.dtype)

    def __call__(self, first, centers, new_centers):
        return lloyd.lloyd_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            _squared_norms(centers),
            self.labels,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )

    def after_relocation(self, centers, new_centers):
        pass

    def relabel(self, centers):
        """Label every row against ``centers`` (after a non-strict convergence)."""
        _assign(self.X, centers, self.labels, len(self.group_changed), self.tiles)


class _SparseLloydStep(_LloydStep):
    """Lloyd's iteration on CSR rows (``sparse.lloyd_iteration``)."""

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        self.parts = csr_parts(X)

    def __call__(self, first, centers, new_centers):
        return sparse.lloyd_iteration(
            self.parts,
            self.sample_weight,
            centers,
            _squared_norms(centers),
            self.labels,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )


def _scores_in_float32(X, n_groups):
    """Whether Lloyd's iterations on X score in float32 first (``_MixedLloydStep``).

    For float64 data whose float32 tiles fit the budget. Measured on make_blobs
    (100,000 samples, k = 8-30): 1.1-1.25x faster at d=3, 1.15-1.5x at d=8-16;
    digits k=10 1.3x, k=64 1.4x.
    """
    if X.dtype != np.float64:
        return False
    n_tiles = lloyd.n_tiles(n_groups, X.shape[0])
    return n_tiles * tile_stack(1, X.shape[1], np.float32).nbytes <= _TILED_COPY_BUDGET


class _MixedLloydStep(_LloydStep):
    """Lloyd's iteration on float64 data, scored in float32 and checked (same labels).

    Keeps a float32 copy of X in tiles and every row's norm, both made by the
    first iteration.
    """

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        self.tiles = _tiled_copy_storage(lloyd.n_tiles(n_groups, X.shape[0]), X.shape[1], np.float32)
        self.row_norms = np.empty(X.shape[0])  # written with the tiles

    def __call__(self, first, centers, new_centers):
        return mixed.mixed_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            _squared_norms(centers),
            self.row_norms,
            self.labels,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )

    def relabel(self, centers):
        """Label every row against ``centers`` (reads X: the tiles are float32)."""
        _assign(self.X, centers, self.labels, len(self.group_changed))


def _bounds_state(X, centers_init):
    """A new state for the bound-based steps, with the run's rounding margin.

    The margin is twice a bound on the rounding error of a score comparison
    (see _kernels/bounds.py). With non-negative weights (lloyd_single sees to it),
    centres after the first iteration are means of rows: their norms are
    bounded by the rows'.
    """
    n_samples, n_features = X.shape
    # Twice a score comparison's rounding: the other half covers the rounding
    # of the exact distances the bounds' tests compute.
    gamma = max(8 * (n_features + 4) * float(np.finfo(X.dtype).eps), 1e-12)
    x_max = float(_squared_norms(X).max()) if n_samples else 0.0
    c_max = float(_squared_norms(centers_init).max())
    return bounds.new_state(len(centers_init), gamma * (x_max + max(x_max, c_max)))


class _HamerlyStep(_LloydStep):
    """One Hamerly iteration: per-row bounds, O(n) memory."""

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        self.key = np.empty(X.shape[0])
        self.lower_key = np.empty(X.shape[0])
        self.state = _bounds_state(X, centers_init)

    def __call__(self, first, centers, new_centers):
        return bounds.hamerly_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            _squared_norms(centers),
            self.state,
            self.labels,
            self.key,
            self.lower_key,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )

    def after_relocation(self, centers, new_centers):
        bounds.record_drift(centers, new_centers, self.state)

    def relabel(self, centers):
        """Label every row against ``centers``: one more step, its centres unused."""
        self(False, centers, np.empty_like(centers))


class _ElkanStep(_HamerlyStep):
    """One Elkan iteration: a lower bound per row and centre, O(n k) memory."""

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        n_clusters = len(centers_init)
        self.lower = np.empty((X.shape[0], n_clusters))
        self.center_dist = np.empty((n_clusters, n_clusters))

    def __call__(self, first, centers, new_centers):
        return elkan.elkan_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            _squared_norms(centers),
            self.state,
            self.center_dist,
            self.labels,
            self.key,
            self.lower_key,
            self.lower,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )


# Yinyang's centre groups: about this many centres each. Ding et al. suggest
# ten; here a group's bookkeeping per row costs about as much as scoring a
# dozen centres, and 32 measured faster than 10 or 20 on every shape tried.
_CENTERS_PER_GROUP = 32
# At most this many groups: the bounds take n_samples x groups float64.
_MAX_CENTER_GROUPS = 32


def center_groups(centers, n_iter=5):
    """Yinyang's grouping: a few k-means iterations on the centres themselves.

    Groups of nearby centres drift together, which keeps their bounds tight.
    Deterministic (numpy on k rows, from evenly spaced centres); empty groups
    are dropped. Only the speed depends on it, never the result.

    Returns each centre's group, numbered 0 to n_groups - 1.
    """
    n_clusters = centers.shape[0]
    n_center_groups = min(max(1, n_clusters // _CENTERS_PER_GROUP), _MAX_CENTER_GROUPS)
    C = np.asarray(centers, dtype=np.float64)
    group = np.zeros(n_clusters, dtype=np.int64)
    if n_center_groups > 1:
        means = C[np.linspace(0, n_clusters - 1, n_center_groups).astype(np.int64)]
        for _ in range(n_iter):
            distances = ((C[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
            group = distances.argmin(axis=1)
            for g in np.unique(group):
                means[g] = C[group == g].mean(axis=0)
    return np.unique(group, return_inverse=True)[1].astype(np.int64)


class _YinyangStep(_LloydStep):
    """One Yinyang iteration: a lower bound per row and group of centres."""

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        self.center_group = center_groups(centers_init)
        self.order = np.argsort(self.center_group, kind="stable").astype(np.int64)
        sizes = np.bincount(self.center_group)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.group_drift = np.zeros(len(sizes))
        self.key = np.empty(X.shape[0])
        self.group_lower = np.empty((len(sizes), X.shape[0]))
        self.state = _bounds_state(X, centers_init)

    def __call__(self, first, centers, new_centers):
        return yinyang.yinyang_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            _squared_norms(centers),
            self.state,
            self.center_group,
            self.order,
            self.offsets,
            self.group_drift,
            self.labels,
            self.key,
            self.group_lower,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )

    def after_relocation(self, centers, new_centers):
        yinyang.record_drifts(centers, new_centers, self.state, self.center_group, self.group_drift)

    def relabel(self, centers):
        """Label every row against ``centers``: one more step, its centres unused."""
        self(False, centers, np.empty_like(centers))


_STEPS = {"lloyd": _LloydStep, "elkan": _ElkanStep, "hamerly": _HamerlyStep, "yinyang": _YinyangStep}


def _inertia(X, sample_weight, centers, labels):
    n_groups = n_groups_for(X.shape[0], centers.shape[0], X.shape[1])
    if sp.issparse(X):
        return float(sparse.inertia(csr_parts(X), sample_weight, centers, labels, np.empty(n_groups)))
    return float(lloyd.inertia(X, sample_weight, centers, labels, np.empty(n_groups)))


def predict_labels(X, centers):
    """Labels of X against fixed centres, and whether X was all finite.

    Finiteness is checked in the same pass over dense X (see
    ``lloyd.assign_labels``); CSR input is checked by its validation.
    """
    start_threads()
    n_groups = n_groups_for(X.shape[0], centers.shape[0], X.shape[1])
    labels = np.empty(X.shape[0], dtype=np.int32)
    _, finite = _assign(X, centers, labels, n_groups)
    return labels, finite


def labels_inertia(X, sample_weight, centers):
    """Labels of finite X against fixed centres, and the weighted inertia."""
    start_threads()
    n_groups = n_groups_for(X.shape[0], centers.shape[0], X.shape[1])
    labels = np.empty(X.shape[0], dtype=np.int32)
    _assign(X, centers, labels, n_groups)
    return labels, _inertia(X, sample_weight, centers, labels)


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


def kmeans_fit(
    X,
    sample_weight,
    n_clusters,
    init,
    n_init,
    max_iter,
    tol,
    random_state,
    verbose=False,
    validate_centers=None,
    algorithm="auto",
):
    """Best of ``n_init`` Lloyd runs, by inertia (scikit-learn's selection rule).

    ``validate_centers`` is called on each callable-made init before use.

    Returns
    -------
    labels, inertia, centers, n_iter of the best run
    """
    start_threads()
    # Only k-means++ uses the row norms; an array or callable init does not.
    uses_norms = isinstance(init, str) and init == "k-means++"
    x_squared_norms = row_squared_norms(X) if uses_norms else None
    distinct = None if sp.issparse(X) else distinct_rows(X, sample_weight)
    best_inertia, best_labels = None, None
    for _ in range(n_init):
        centers_init = init_centroids(X, n_clusters, init, random_state, sample_weight, x_squared_norms)
        if validate_centers is not None and callable(init):
            centers_init = validate_centers(centers_init)
        if verbose:
            print("Initialization complete")
        labels, inertia, centers, n_iter = lloyd_single(
            X,
            sample_weight,
            centers_init,
            max_iter=max_iter,
            verbose=verbose,
            tol=tol,
            algorithm=algorithm,
            distinct=distinct,
        )
        # A new run must beat the best inertia *and* be a different clustering:
        # a relabelled copy can win on rounding alone.
        if best_inertia is None or (
            inertia < best_inertia and not is_same_clustering(labels, best_labels, n_clusters)
        ):
            best_labels, best_centers = labels, centers
            best_inertia, best_n_iter = inertia, n_iter
    return best_labels, best_inertia, best_centers, best_n_iter


# --- mini-batch ---------------------------------------------------------------


def _mt19937_state(random_state):
    """``random_state``'s MT19937 state as a kernel's uint32[625] array.

    Returns the array and the state dict ``_store_mt19937_state`` writes it
    back into. A RandomState on another bit generator cannot be followed draw
    for draw; the kernels then get a state seeded from it (and None).
    """
    state = random_state.get_state(legacy=False)
    if state["bit_generator"] != "MT19937":
        seed = random_state.randint(np.iinfo(np.int32).max)
        return _mt19937_state(np.random.RandomState(seed))[0], None
    rng = np.empty(625, dtype=np.uint32)
    rng[:624] = state["state"]["key"]
    rng[624] = state["state"]["pos"]
    return rng, state


def _store_mt19937_state(random_state, rng, state):
    """Leave ``random_state`` where scikit-learn's own draws would leave it."""
    if state is not None:
        state["state"] = {"key": rng[:624].copy(), "pos": int(rng[624])}
        random_state.set_state(state)


def _raise_all_reassigned(n_reassigned, verbose):
    # Where scikit-learn fails, after saying so: np.min of an empty selection.
    if verbose:
        print(f"[MiniBatchKMeans] Reassigning {n_reassigned} cluster centers.")
    raise ValueError("zero-size array to reduction operation minimum which has no identity")


def _check_sampling_weights(p):
    """The checks ``RandomState.choice(n, size, p=p)`` makes of ``p``, its errors.

    An empty draw from a generator of our own: nothing of the caller's stream
    is used, and nothing of ours either (so one generator serves every call).
    """
    _weight_checker().choice(p.shape[0], 0, p=p)


@functools.cache
def _weight_checker():
    # Seeding a RandomState costs ~0.1 ms, a noticeable share of a small fit.
    return np.random.RandomState(0)


def tolerance(X, tol):
    """Absolute tolerance: ``tol`` times the mean column variance.

    numpy's variances, or scikit-learn's ``mean_variance_axis`` for sparse X.
    """
    if not tol:
        return 0
    variances = mean_variance_axis(X, axis=0)[1] if sp.issparse(X) else np.var(X, axis=0)
    return np.mean(variances) * tol


def subset_centroids(X, sample_weight, n_clusters, init, random_state, init_size, validate_centers=None):
    """Initial centres made from ``init_size`` random rows (all rows if fewer).

    scikit-learn's ``_init_centroids`` with ``init_size``: the row draw comes
    first, whatever the init method.
    """
    n_samples = X.shape[0]
    if init_size < n_samples:
        subset = random_state.randint(0, n_samples, init_size)
        X, sample_weight = X[subset], sample_weight[subset]
    uses_norms = isinstance(init, str) and init == "k-means++"
    norms = row_squared_norms(X) if uses_norms else None
    centers = init_centroids(X, n_clusters, init, random_state, sample_weight, norms)
    if validate_centers is not None and callable(init):
        centers = validate_centers(centers)
    return centers


def minibatch_init(
    X, sample_weight, n_clusters, init, n_init, init_size, random_state, verbose, validate_centers
):
    """MiniBatchKMeans's initial centres: the best of ``n_init`` on small samples.

    Each candidate is made from ``init_size`` random rows and scored by its
    inertia on another ``init_size`` random rows, with scikit-learn's draws.
    """
    validation = random_state.randint(0, X.shape[0], init_size)
    X_valid, weight_valid = X[validation], sample_weight[validation]
    best_inertia, best_centers = None, None
    for init_idx in range(n_init):
        if verbose:
            print(f"Init {init_idx + 1}/{n_init} with method {init}")
        centers = subset_centroids(
            X, sample_weight, n_clusters, init, random_state, init_size, validate_centers
        )
        _, inertia = labels_inertia(X_valid, weight_valid, centers)
        if verbose:
            print(f"Inertia for init {init_idx + 1}/{n_init}: {inertia}")
        if best_inertia is None or inertia < best_inertia:
            best_inertia, best_centers = inertia, centers
    return best_centers


def reassign_due(counts, n_since_last_reassign, batch_size):
    """Whether partial_fit's step restarts starved centres (see ``should_reassign``).

    Returns the decision and the new count of samples since the last one.
    """
    counters = np.array([0, n_since_last_reassign, 0], dtype=np.int64)
    due = minibatch.should_reassign(counts, counters, batch_size, counts.shape[0])
    return bool(due), int(counters[1])


def _print_step(step, n_steps, ewa, counters, status):
    """scikit-learn's verbose lines for one mini-batch step."""
    if counters[2] > 0:
        print(f"[MiniBatchKMeans] Reassigning {counters[2]} cluster centers.")
    line = f"Minibatch step {step}/{n_steps}: mean batch inertia: {ewa[2]}"
    print(line if step == 1 else f"{line}, ewa inertia: {ewa[0]}")
    if status == minibatch.CONVERGED_CENTERS:
        print(f"Converged (small centers change) at step {step}/{n_steps}")
    elif status == minibatch.CONVERGED_INERTIA:
        print(f"Converged (lack of improvement in inertia) at step {step}/{n_steps}")


def _reassign_starved(rng, X, centers, counts, to_reassign, perm, n_rows, capped):
    """Restart the centres marked in ``to_reassign`` on random rows of the batch X (``n_rows`` rows).

    When more are marked than half the batch (``capped``), numpy's argsort
    of the counts picks those that stay, as in scikit-learn (its choice among
    equal counts is numpy's own). Returns as ``minibatch.reassign_rows``.
    """
    if capped:
        minibatch.cap_starved(to_reassign, np.argsort(counts), n_rows)
    return minibatch.reassign_rows(rng, X, centers, counts, to_reassign, perm)


def _finish_capped_step(rng, centers, counts, step, n_samples, settings, work):
    """Finish a step ``fit_steps`` left at a capped reassignment; its status, as ``fit_steps`` gives."""
    tol, max_no_improvement, _, ewa, counters = settings
    batch_rows, batch, _, _, _, old, pending, (_, to_reassign, perm) = work
    batch_size = batch_rows.shape[0]
    counters[2] = _reassign_starved(rng, batch, centers, counts, to_reassign, perm, batch_size, capped=True)
    if counters[2] < 0:
        return minibatch.ALL_REASSIGNED
    return minibatch.end_step(
        step, n_samples, batch_size, centers, old, pending[0], tol, max_no_improvement, ewa, counters
    )


def minibatch_fit(
    X,
    sample_weight,
    centers,
    batch_size,
    max_iter,
    tol,
    max_no_improvement,
    reassignment_ratio,
    random_state,
    verbose=False,
):
    """MiniBatchKMeans's optimisation loop, from ``centers`` (updated in place).

    The whole loop (batch draws, steps, reassignments, early stopping) runs in
    one kernel call. It comes back here only to report each step (``verbose``)
    and for a reassignment capped at half a batch, where numpy's argsort picks
    the centres to keep (its choice among equal counts is numpy's own).

    Returns
    -------
    n_steps_run : int
    ewa_inertia : float or None, the smoothed mean batch inertia at the end
    counts : ndarray of shape (n_clusters,), the weight each centre absorbed
    n_since_reassign : int, samples seen since the last reassignment
    """
    start_threads()
    n_samples, n_features = X.shape
    n_steps = (max_iter * n_samples) // batch_size
    # RandomState.choice's checks of the weights, and its cumulative
    # distribution, bit for bit.
    p = sample_weight / np.sum(sample_weight)
    _check_sampling_weights(p)
    cdf = np.asarray(p, dtype=np.float64).cumsum()
    cdf /= cdf[-1]
    counts = np.zeros(centers.shape[0], dtype=X.dtype)
    ewa = np.full(3, np.nan)
    counters = np.zeros(3, dtype=np.int64)
    no_improvement = -1 if max_no_improvement is None else max_no_improvement
    # Scalars of one type each (an int tol or ratio would compile another version).
    settings = (float(tol), int(no_improvement), float(reassignment_ratio), ewa, counters)
    if sp.issparse(X):
        X = csr_parts(X)
        work = minibatch.csr_fit_workspace(X, batch_size, centers.shape[0])
    else:
        work = minibatch.fit_workspace(batch_size, centers.shape[0], n_features, X.dtype)
    rng, state = _mt19937_state(random_state)
    first = 0
    try:
        while first < n_steps:
            stop = first + 1 if verbose else n_steps
            last, status = minibatch.fit_steps(rng, X, cdf, centers, counts, first, stop, *settings, work)
            if status == minibatch.NEEDS_ORDER:
                status = _finish_capped_step(rng, centers, counts, last, n_samples, settings, work)
            if status == minibatch.ALL_REASSIGNED:
                _raise_all_reassigned(-counters[2], verbose)
            if verbose:
                _print_step(last + 1, n_steps, ewa, counters, status)
            if status != minibatch.RUNNING:
                break
            first = last + 1
    finally:
        _store_mt19937_state(random_state, rng, state)
    ewa_inertia = None if np.isnan(ewa[0]) else float(ewa[0])
    return last + 1, ewa_inertia, counts, int(counters[1])


def minibatch_partial_step(X, sample_weight, centers, counts, random_state, random_reassign, ratio, verbose):
    """One mini-batch step on all of X (partial_fit); centres and counts in place.

    The pieces of ``_mini_batch_step`` in turn: the labelling kernel that
    predict runs, the centre update and the reassignment kernels the fit's
    loop is built from (a partial_fit after a fit or a predict compiles only
    these small ones). The batch inertia is not taken: partial_fit drops it.
    """
    start_threads()
    n_rows = X.shape[0]
    weight_sums, to_reassign, perm = minibatch.step_scratch(n_rows, centers.shape[0], X.dtype)
    labels = np.empty(n_rows, dtype=np.int32)
    # The norms the fit's loop labels with (a kernel's sum, not numpy's).
    norms = tiles.squared_norms(centers, centers.dtype)
    _assign(X, centers, labels, minibatch.n_row_groups(n_rows), norms=norms)
    X = csr_parts(X) if sp.issparse(X) else X
    minibatch.update_centers(X, sample_weight, labels, centers, centers, counts, weight_sums)
    n_reassigned = 0
    if random_reassign and ratio > 0:
        rng, state = _mt19937_state(random_state)
        try:
            _, capped = minibatch.starved_centres(counts, float(ratio), n_rows, to_reassign)
            n_reassigned = _reassign_starved(rng, X, centers, counts, to_reassign, perm, n_rows, capped)
        finally:
            _store_mt19937_state(random_state, rng, state)
    if n_reassigned < 0:
        _raise_all_reassigned(-n_reassigned, verbose)
    if verbose and n_reassigned:
        print(f"[MiniBatchKMeans] Reassigning {n_reassigned} cluster centers.")
