"""k-means++ and the other initialisations, drawn as scikit-learn draws them.

The kernel (``_kernels.init``) does the passes over X; this module hands it
scikit-learn's draws, keeps numpy's BLAS on one thread around the products
that follow scikit-learn's arithmetic, and ranks near-tied candidates as
scikit-learn does on dense float64 data.
"""

import contextlib
import functools
import math

import numpy as np
import scipy.sparse as sp
import threadpoolctl

from .._kernels import init as init_kernels
from .._kernels._jit import CHUNK, serial_when_small, start_threads
from .._slicing import Pace, first_slice
from .layout import csr_parts, n_groups_for, squared_norms, tiled_copy_storage

# Bytes of candidates' terms k-means++ keeps (see ``kmeans_plusplus``):
# about half a core's L2 cache here. Larger X scores the chosen centre once
# more in the next pass instead (1,000,000 x 16, k=32: writing five terms a
# row made a step 15 ms, scoring one more centre 12.6 ms), and small X reads
# its terms (digits k=40: 2.3 ms, against 3.0 ms scoring it again in each draw).
KEPT_TERMS_BUDGET = 1 << 20


def _squared_norms_float64(X, block=1 << 15):
    """Squared row norms in float64, taken a block of rows at a time.

    scikit-learn takes float32 rows' norms on float64 copies of them; blocks
    bound the size of the copy.
    """
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], block):
        rows = X[start : start + block].astype(np.float64)
        out[start : start + block] = squared_norms(rows)
    return out


# Two sums of n non-negative terms in different orders differ by at most about
# n * eps relative (each is within (n - 1) * eps / 2 of the exact sum).
_TIE_RTOL_PER_ROW = 2 * np.finfo(np.float64).eps


@serial_when_small(lambda X, n_clusters, *args, **kwargs: X.shape[0] * X.shape[1] * n_clusters)
def kmeans_plusplus(X, n_clusters, x_squared_norms, sample_weight, random_state, n_local_trials=None):
    """Greedy k-means++ seeding on validated data.

    Draws from ``random_state`` exactly what scikit-learn draws (one weighted
    choice, then ``n_local_trials`` uniforms per further centre), so a shared
    seed picks the same points. On dense float64 data, candidates whose
    potentials differ by rounding alone are ranked with scikit-learn's
    arithmetic (see ``_rank_candidates``); dense float32 data takes
    scikit-learn's float32 steps (``_kmeans_plusplus_float32``). On CSR data
    such a near-tie can go the other way.

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
    if X.dtype == np.float32 and not sp.issparse(X):
        return _kmeans_plusplus_float32(X, n_clusters, sample_weight, first, uniforms)
    # Near-ties are ranked with scikit-learn's arithmetic on dense data (CSR: not).
    exact = not sp.issparse(X)
    norms = np.asarray(x_squared_norms, dtype=np.float64)
    tie_rtol = _TIE_RTOL_PER_ROW * n_samples if exact else -1.0
    weights = np.asarray(sample_weight, dtype=np.float64)
    centers = np.empty((n_clusters, n_features), dtype=X.dtype)
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = first
    closest = np.empty(n_samples)
    # The centre whose distances ``closest`` does not hold yet (see the kernel).
    pending = np.full(2, -1, dtype=np.int64)
    # The candidates' terms min(closest, d), kept by their pass while they
    # fit in a core's cache: the chosen one's are then read, not scored again.
    keep = n_local_trials * n_samples * 8 <= KEPT_TERMS_BUDGET
    kept = np.empty((n_local_trials, n_samples) if keep else (0, 0))
    chunk_pots = np.empty((n_local_trials, n_chunks))
    chunk_mass, potential = np.empty((n_chunks, 1)), np.zeros(1)
    candidates = np.empty(n_local_trials, dtype=np.int64)
    # Dense X in float64 tiles, kept across the seeding passes (if within budget).
    tiles = np.empty((0, 0, 0)) if sp.issparse(X) else tiled_copy_storage(n_chunks, n_features, np.float64)
    n_groups = n_groups_for(n_samples, n_local_trials, 0)
    rows = csr_parts(X) if sp.issparse(X) else X

    def steps(k_start, k_stop, forced=-1, forced_pot=0.0):
        return init_kernels.kmeans_plusplus(
            rows, tiles, norms, weights, uniforms, n_groups, closest, pending, kept, chunk_pots, chunk_mass,
            potential, centers, indices, candidates, k_start, k_stop, forced, forced_pot, tie_rtol,
        )  # fmt: skip

    k = steps(0, 1)
    if exact:
        with _serial_blas(n_samples * n_features):
            _first_distances_as_sklearn(X, norms, weights, first, (closest, chunk_mass, potential))
        pending[0] = -1  # closest holds the first centre's distances now
    # The centres a slice at a time (see _slicing): Ctrl-C is answered between them.
    pace = Pace(first_slice(n_samples * n_features * (n_local_trials + 1)))
    while k < n_clusters:
        stop = min(n_clusters, k + pace.size)
        started = pace.start()
        reached = steps(k, stop)
        pace.took(reached - k, started)
        k = reached
        if k < stop:  # a near-tie at centre k: ranked with scikit-learn's arithmetic
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

    state : the kernel's ``closest``, ``chunk_mass_out`` and ``potential``,
        all OUT (the caller marks no centre pending)
    """
    closest, chunk_mass, potential = state
    dist = _gemm_sq_distances(X[first : first + 1], X, x_squared_norms)
    closest[:] = dist[0]
    mass = sample_weight * closest
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


def _kmeans_plusplus_float32(X, n_clusters, sample_weight, first, uniforms):
    """k-means++ on dense float32 X in scikit-learn's float32 arithmetic, step for step.

    scikit-learn rounds each squared distance (summed in float64) to float32,
    draws candidates from a float32 running sum of ``sample_weight *
    closest`` and ranks them by float32 GEMV potentials. Where candidates'
    potentials tie to float32 rounding (often, on data with exact decimal
    ties) or a draw falls near a row's edge of the running sum (often, on
    many rows), only that arithmetic takes scikit-learn's rows. So the
    distances come from the compiled kernel (scikit-learn's float64 values,
    then rounded), and the sums, draws and ranking are scikit-learn's own
    numpy calls on the same float32 arrays.
    """
    n_samples, n_features = X.shape
    n_trials = uniforms.shape[1]
    norms = _squared_norms_float64(X)
    weights = np.asarray(sample_weight, dtype=np.float32)
    centers = np.empty((n_clusters, n_features), dtype=X.dtype)
    indices = np.empty(n_clusters, dtype=int)
    centers[0], indices[0] = X[first], first
    with _serial_blas(n_samples * n_features):
        closest = _upcast_distances_to_row(X, first, norms)
        potential = closest[np.newaxis, :] @ weights
    # X's float32 values in tiles, upcast as they are scored: half the memory
    # a float64 copy reads each step, the same bits.
    tiles = tiled_copy_storage(-(-n_samples // CHUNK), n_features, np.float32)
    # The candidates' distances: (n_trials, n_samples) float32, as scikit-learn holds them.
    distances = np.empty((n_trials, n_samples), dtype=np.float32)
    for c in range(1, n_clusters):
        candidate_ids = np.searchsorted(np.cumsum(weights * closest), uniforms[c - 1] * potential)
        np.clip(candidate_ids, None, n_samples - 1, out=candidate_ids)
        points = X[candidate_ids].astype(np.float64)
        init_kernels.float32_candidate_distances(
            X, tiles, c == 1, norms, closest, points, norms[candidate_ids], distances
        )
        with _serial_blas(n_samples * n_trials):
            candidates_pot = distances @ weights.reshape(-1, 1)
        best = np.argmin(candidates_pot)
        potential = candidates_pot[best]
        closest = distances[best].copy()
        centers[c], indices[c] = X[candidate_ids[best]], candidate_ids[best]
    return centers, indices


def _upcast_distances_to_row(X, row, norms):
    """scikit-learn's float32 ``euclidean_distances(X[row:row+1], X, squared=True)``, operation for operation.

    It upcasts X to float64 in batches of rows (a GEMV per batch: its sums
    may round by their place in the batch) and rounds the result to float32.
    norms : X's squared row norms in float64, of the float64 rows
    """
    n_samples, n_features = X.shape
    # scikit-learn's batch size for one row against n_samples (dense rows).
    maxmem = max(((1 + n_samples) * n_features + n_samples) / 10, 10 * 2**17)
    batch = max(int((-2 * n_features + math.sqrt((2 * n_features) ** 2 + 4 * maxmem)) / 2), 1)
    point = X[row : row + 1].astype(np.float64)
    point_norm = squared_norms(point)[:, np.newaxis]
    out = np.empty(n_samples, dtype=np.float32)
    for start in range(0, n_samples, batch):
        dist = -2 * (point @ X[start : start + batch].astype(np.float64).T)
        dist += point_norm
        dist += norms[np.newaxis, start : start + batch]
        out[start : start + batch] = dist[0]
    return np.maximum(out, 0, out=out)


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
