"""Mini-batch k-means: the whole fitting loop in compiled code, and the pieces of a step.

``fit_steps`` runs MiniBatchKMeans.fit's loop, a slice of steps a call;
partial_fit's step calls the pieces in turn from Python (``_solvers.minibatch_partial_step``), with the
labelling kernel predict uses, so that it compiles no loop of its own.

Each routine follows scikit-learn's MiniBatchKMeans (``_mini_batch_step``,
``_minibatch_update_dense``, ``_random_reassign``, ``_mini_batch_convergence``)
operation for operation, and draws its random numbers from the caller's
MT19937 state exactly as scikit-learn's ``RandomState`` calls would. Given the
same ``random_state``, a fit visits the same batches, reassigns the same
centres and stops at the same step; results differ only where floating-point
ties break differently.
"""

import numpy as np
from numba import prange, types

from . import rows as rows_of
from . import sparse
from ._jit import CHUNK, MAX_GROUPS, exact_kernel, kernel, kernel_for_types, parallel_kernel
from .lloyd import group_bounds
from .mt19937 import next_double, permutation
from .stats import centre_squared_norms, numpy_sum
from .tiles import load_tile, new_scores, new_tile, padded_centers, tile_argmin

# Codes fit_steps returns for why it stopped.
RUNNING = 0
CONVERGED_CENTERS = 1
CONVERGED_INERTIA = 2
ALL_REASSIGNED = 3
# The step stopped before a capped reassignment: which starved centres stay is
# decided by numpy's argsort of the counts (see ``starved_centres``).
NEEDS_ORDER = 4


@kernel
def _search_right(cdf, u):
    """``np.searchsorted(cdf, u, side='right')``: the first i with cdf[i] > u.

    Starts from the guess ``u * n`` (right on for equal weights) and gallops
    from there, so an equal-weight draw costs a few probes, not log2(n).
    """
    n = cdf.shape[0]
    guess = min(np.int64(u * n), n - 1)
    # Invariant for the final bisection: cdf[lo] <= u (or lo == -1) and
    # cdf[hi] > u (or hi == n).
    if cdf[guess] > u:
        hi, lo, step = guess, guess - 1, 1
        while lo >= 0 and cdf[lo] > u:
            hi = lo
            lo -= step
            step *= 2
        lo = max(lo, -1)
    else:
        lo, hi, step = guess, guess + 1, 1
        while hi < n and cdf[hi] <= u:
            lo = hi
            hi += step
            step *= 2
        hi = min(hi, n)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cdf[mid] > u:
            hi = mid
        else:
            lo = mid
    return hi


@kernel
def sample_rows(rng, cdf, out):
    """``RandomState.choice(n, len(out), p=p)``: rows drawn with replacement.

    rng : (625,) uint32 INOUT, MT19937 state
    cdf : (n,) float64 IN, ``p.cumsum() / p.cumsum()[-1]`` as numpy makes it
    out : (batch,) int64 OUT
    """
    for i in range(out.shape[0]):
        out[i] = _search_right(cdf, next_double(rng))


@kernel
def _gather_rows(X, rows, out):
    """out[i] = X[rows[i]]."""
    n_features = X.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for f in range(n_features):
            out[i, f] = X[r, f]


@exact_kernel
def update_centers(X, sample_weight, labels, centers, centers_new, counts, weight_sums):
    """``_minibatch_update_dense`` (and ``_sparse``): move each centre towards its new points.

    A centre with new weight w becomes ``(c * count + sum(w_i x_i)) / (count + w)``,
    its count grows by w; the others are copied. Same operations, same order,
    same rounding as scikit-learn (no fastmath). ``centers_new`` may be
    ``centers`` (partial_fit updates in place).

    X : (n, n_features) IN, the batch, dense or CSR (see ``rows``)
    sample_weight : (n,) IN
    labels : (n,) int32 IN
    centers : (n_clusters, n_features) IN
    centers_new : (n_clusters, n_features) OUT
    counts : (n_clusters,) INOUT, accumulated weight per centre
    weight_sums : (n_clusters,) scratch
    """
    n_clusters, n_features = centers.shape
    n_rows = rows_of.n_rows(X)
    zero = counts.dtype.type(0.0)
    for j in range(n_clusters):
        weight_sums[j] = zero
    for i in range(n_rows):
        weight_sums[labels[i]] += sample_weight[i]
    for j in range(n_clusters):
        if weight_sums[j] > 0:
            for f in range(n_features):
                centers_new[j, f] = centers[j, f] * counts[j]
        else:
            for f in range(n_features):
                centers_new[j, f] = centers[j, f]
    for i in range(n_rows):
        j = labels[i]
        if weight_sums[j] > 0:  # a centre with no positive weight stays as it was
            rows_of.add_row_exact(X, i, sample_weight[i], centers_new[j])
    for j in range(n_clusters):
        if weight_sums[j] > 0:
            counts[j] += weight_sums[j]
            alpha = counts.dtype.type(1.0) / counts[j]
            for f in range(n_features):
                centers_new[j, f] *= alpha


@kernel
def _largest(values):
    """``np.max`` of a non-empty array without NaNs (numba's compiles numpy's n-d machinery)."""
    largest = values[0]
    for j in range(1, values.shape[0]):
        if values[j] > largest:
            largest = values[j]
    return largest


@kernel
def starved_centres(counts, ratio, n_rows, to_reassign):
    """Mark the centres whose count is below ``ratio`` times the largest.

    to_reassign : (n_clusters,) bool OUT
    Returns how many, and whether that is more than half the batch's size:
    then only the lowest counts may go, chosen by numpy's (unstable) argsort
    of the counts, so the caller sorts and calls ``cap_starved``.
    """
    # In the data type, as numpy multiplies a float32 array's max by a Python float.
    threshold = counts.dtype.type(ratio) * _largest(counts)
    n_starved = 0
    for j in range(counts.shape[0]):
        to_reassign[j] = counts[j] < threshold
        n_starved += to_reassign[j]
    return n_starved, n_starved > 0.5 * n_rows


@kernel
def cap_starved(to_reassign, order, n_rows):
    """Keep the centres from position ``n_rows // 2`` of the count ``order`` on."""
    for p in range(n_rows // 2, order.shape[0]):
        to_reassign[order[p]] = False


@kernel
def reassign_rows(rng, X, centers, counts, to_reassign, perm):
    """Move the marked centres to distinct random rows of the batch.

    The rows are drawn as ``RandomState.choice(n, size, replace=False)`` draws
    them; the moved centres get the smallest count of the others.

    rng : (625,) uint32 INOUT
    X : (n, n_features) IN, the batch, dense or CSR
    centers : (n_clusters, n_features) INOUT
    counts : (n_clusters,) INOUT
    to_reassign : (n_clusters,) bool IN
    perm : (n,) int64 scratch
    Returns the number of centres moved; minus that number if all of them
    were (scikit-learn fails there, on the minimum of an empty selection,
    after drawing the rows and moving the centres).
    """
    n_clusters = counts.shape[0]
    n_reassign = 0
    for j in range(n_clusters):
        n_reassign += to_reassign[j]
    if n_reassign > 0:
        permutation(rng, perm)
        taken = 0
        for j in range(n_clusters):
            if to_reassign[j]:
                row = perm[taken]
                taken += 1
                rows_of.copy_row(X, row, centers[j])
    if n_reassign == n_clusters:
        return -n_reassign
    smallest = np.inf
    for j in range(n_clusters):
        if not to_reassign[j] and counts[j] < smallest:
            smallest = counts[j]
    for j in range(n_clusters):
        if to_reassign[j]:
            counts[j] = smallest
    return n_reassign


def n_row_groups(n_rows):
    """Row groups for a batch: one per CHUNK of rows, fixed by its size alone."""
    return min(-(-n_rows // CHUNK), MAX_GROUPS)


@kernel
def _gather_label_rows(X, rows, centers, padded, norms, batch, labels, row_start, row_stop):
    """Batch rows ``row_start:row_stop``: gather, label, and their inertia.

    Copies ``X[rows[i]]`` into ``batch[i]``, labels the rows through a tile,
    and returns their summed squared distance to their centre (exact
    differences, float64, unit weights: fit's batches are sampled by weight).
    """
    n_features = X.shape[1]
    tile = new_tile(n_features, X.dtype)
    scores = new_scores(X.dtype)
    best = np.empty(CHUNK, dtype=X.dtype)
    chunk_labels = np.empty(CHUNK, dtype=np.int32)
    total = 0.0
    for start in range(row_start, row_stop, CHUNK):
        stop = min(start + CHUNK, row_stop)
        n_rows = stop - start
        _gather_rows(X, rows[start:stop], batch[start:stop])
        load_tile(batch, start, stop, tile)
        tile_argmin(tile, n_rows, n_features, padded, norms, scores, best, chunk_labels, 0)
        for i in range(n_rows):
            label = chunk_labels[i]
            labels[start + i] = label
            s = 0.0
            for f in range(n_features):
                diff = np.float64(batch[start + i, f]) - np.float64(centers[label, f])
                s += diff * diff
            total += s
    return total


@parallel_kernel
def _gather_label_groups(X, rows, centers, padded, norms, batch, labels, group_inertia):
    """``_gather_label_rows`` over fixed groups of batch rows, in parallel."""
    n_rows = rows.shape[0]
    n_groups = group_inertia.shape[0]
    for task in prange(n_groups):
        g = np.int64(task)  # one index type, one compilation of each helper
        g_start, g_stop = group_bounds(g, n_groups, n_rows)
        group_inertia[g] = _gather_label_rows(X, rows, centers, padded, norms, batch, labels, g_start, g_stop)


@kernel
def gather_and_label(X, rows, centers, batch, labels, group_inertia):
    """Gather the batch ``X[rows]`` into ``batch``, label it; return its inertia.

    In parallel, each group of rows gathered by the thread that labels it
    (even small batches: measured, the thread start costs no more than it
    saves); groups are fixed by the batch size and their inertias added in
    group order, so results do not depend on the threads.

    group_inertia : (n_groups,) float64 scratch, one slot per group
    """
    padded = padded_centers(centers, X.dtype)
    norms = centre_squared_norms(centers)
    _gather_label_groups(X, rows, centers, padded, norms, batch, labels, group_inertia)
    total = 0.0
    for g in range(group_inertia.shape[0]):
        total += group_inertia[g]
    return total


@kernel
def _csr_label_rows(batch, centers, centers_t, norms, float64_norms, labels, row_start, row_stop):
    """Label CSR batch rows ``row_start:row_stop``; their summed squared distance."""
    dots = np.empty(centers.shape[0], dtype=centers.dtype)
    total = 0.0
    for i in range(row_start, row_stop):
        label = sparse.row_argmin(batch, i, centers_t, norms, dots)
        labels[i] = label
        total += sparse.row_sq_distance(batch, i, centers[label], float64_norms[label])
    return total


@parallel_kernel
def _csr_label_groups(batch, centers, centers_t, norms, float64_norms, labels, group_inertia):
    """``_csr_label_rows`` over fixed groups of batch rows, in parallel."""
    n_rows = rows_of.n_rows(batch)
    n_groups = group_inertia.shape[0]
    for task in prange(n_groups):
        g = np.int64(task)
        g_start, g_stop = group_bounds(g, n_groups, n_rows)
        group_inertia[g] = _csr_label_rows(
            batch, centers, centers_t, norms, float64_norms, labels, g_start, g_stop
        )


@kernel
def _csr_gather_and_label(X, batch_rows, centers, batch, labels, group_inertia):
    """``gather_and_label`` for CSR X: the batch is X's rows ``batch_rows``, then labelled.

    batch : CSR tuple of X's data and indices with its own ``starts`` and
        ``stops`` (batch_size,), written here: nothing is copied
    group_inertia : (n_groups,) float64 scratch; groups fixed by the batch size
    """
    _, _, starts, stops, _ = X
    _, _, batch_starts, batch_stops, _ = batch
    for i in range(batch_rows.shape[0]):
        batch_starts[i] = starts[batch_rows[i]]
        batch_stops[i] = stops[batch_rows[i]]
    centers_t = sparse.transposed(centers, centers.dtype)
    norms = centre_squared_norms(centers)
    float64_norms = sparse.float64_sq_norms(centers)
    _csr_label_groups(batch, centers, centers_t, norms, float64_norms, labels, group_inertia)
    total = 0.0
    for g in range(group_inertia.shape[0]):
        total += group_inertia[g]
    return total


@kernel_for_types
def _gather_and_label(X, batch_rows, centers, batch, labels, group_inertia):
    """``gather_and_label`` for dense X, ``_csr_gather_and_label`` for CSR (kernels only)."""
    if isinstance(X, types.Array):
        return lambda X, batch_rows, centers, batch, labels, group_inertia: gather_and_label(
            X, batch_rows, centers, batch, labels, group_inertia
        )
    return lambda X, batch_rows, centers, batch, labels, group_inertia: _csr_gather_and_label(
        X, batch_rows, centers, batch, labels, group_inertia
    )


def step_scratch(n_rows, n_clusters, dtype):
    """Scratch buffers for a step on batches of up to ``n_rows`` rows.

    (weight sums, starved-centre marks, a row permutation)
    """
    return (
        np.empty(n_clusters, dtype=dtype),
        np.empty(n_clusters, dtype=np.bool_),
        np.empty(n_rows, dtype=np.int64),
    )


@kernel
def should_reassign(counts, counters, batch_size, n_clusters):
    """``_random_reassign``: every 10 k samples, or at once if a centre is empty.

    counters[1] : INOUT, samples seen since the last reassignment
    """
    counters[1] += batch_size
    empty = False
    for j in range(counts.shape[0]):
        empty |= counts[j] == 0
    if empty or counters[1] >= 10 * n_clusters:
        counters[1] = 0
        return True
    return False


@exact_kernel
def _converged(
    step_index, n_samples, batch_size, batch_inertia, shift, tol, max_no_improvement, ewa, counters
):
    """``_mini_batch_convergence``: early stopping on centre shift or inertia.

    ewa : (3,) float64 INOUT, [smoothed inertia, its minimum, this step's
        mean batch inertia]; NaN stands for "not set yet"
    counters : (3,) int64 INOUT, counters[0] steps without improvement
    max_no_improvement : int, -1 for None
    """
    batch_inertia /= batch_size
    ewa[2] = batch_inertia
    if step_index == 0:
        # The first step's inertia comes from the initialisation: ignored.
        return RUNNING
    if np.isnan(ewa[0]):
        ewa[0] = batch_inertia
    else:
        alpha = min(batch_size * 2.0 / (n_samples + 1), 1.0)
        ewa[0] = ewa[0] * (1 - alpha) + batch_inertia * alpha
    if tol > 0.0 and shift <= tol:
        return CONVERGED_CENTERS
    if np.isnan(ewa[1]) or ewa[0] < ewa[1]:
        counters[0] = 0
        ewa[1] = ewa[0]
    else:
        counters[0] += 1
    if max_no_improvement >= 0 and counters[0] >= max_no_improvement:
        return CONVERGED_INERTIA
    return RUNNING


@exact_kernel
def _squared_shift(old, new):
    """The total squared centre shift, bit for bit scikit-learn's ``np.sum((new - old) ** 2)``.

    The squares are written over ``old`` (C-contiguous; the step's copy of
    the centres, not needed after), then added in numpy's order.
    """
    for j in range(old.shape[0]):
        for f in range(old.shape[1]):
            diff = new[j, f] - old[j, f]
            old[j, f] = diff * diff
    return numpy_sum(old.reshape(old.size))


@kernel
def _copy_rows(src, dst):
    """dst = src (plain loops: a slice assignment compiles much more code)."""
    for j in range(src.shape[0]):
        for f in range(src.shape[1]):
            dst[j, f] = src[j, f]


def fit_workspace(batch_size, n_clusters, n_features, dtype):
    """The buffers ``fit_steps`` keeps between calls (one fit's worth)."""
    return (
        np.empty(batch_size, dtype=np.int64),  # the batch's rows of X
        np.empty((batch_size, n_features), dtype=dtype),  # the batch
        np.ones(batch_size, dtype=dtype),  # unit weights
        np.empty(batch_size, dtype=np.int32),  # labels
        np.empty(n_row_groups(batch_size)),  # per-group inertia
        np.empty((n_clusters, n_features), dtype=dtype),  # centres before the step
        np.empty(1),  # the batch inertia of a step left for the caller to finish
        step_scratch(batch_size, n_clusters, dtype),
    )


def csr_fit_workspace(X, batch_size, n_clusters):
    """``fit_workspace`` for CSR X (a kernels' tuple): the batch as rows of X."""
    data, indices, starts, _, n_features = X
    batch = (
        data,
        indices,
        np.empty(batch_size, dtype=starts.dtype),
        np.empty(batch_size, dtype=starts.dtype),
        n_features,
    )
    return (
        np.empty(batch_size, dtype=np.int64),
        batch,
        np.ones(batch_size, dtype=data.dtype),
        np.empty(batch_size, dtype=np.int32),
        np.empty(n_row_groups(batch_size)),
        np.empty((n_clusters, n_features), dtype=data.dtype),
        np.empty(1),
        step_scratch(batch_size, n_clusters, data.dtype),
    )


@kernel
def end_step(
    step_index, n_samples, batch_size, centers, old, batch_inertia, tol, max_no_improvement, ewa, counters
):
    """The shift and convergence bookkeeping that close a fit step."""
    shift = _squared_shift(old, centers) if tol > 0.0 else 0.0
    return _converged(
        step_index, n_samples, batch_size, batch_inertia, shift, tol, max_no_improvement, ewa, counters
    )


@kernel
def fit_steps(
    rng,
    X,
    cdf,
    centers,
    counts,
    first_step,
    stop_step,
    tol,
    max_no_improvement,
    ratio,
    ewa,
    counters,
    work,
):
    """Steps ``first_step`` .. ``stop_step - 1`` of MiniBatchKMeans.fit's loop.

    Each step draws a batch (rows in proportion to ``cdf``'s weights, unit
    weights in the step), labels it, moves the centres, restarts starved
    centres and checks convergence, all without leaving compiled code. Called
    for a slice of steps at a time (about 0.1 s each, so that Ctrl-C is
    answered between them), or one step at a time when the caller prints
    progress. A step whose reassignment is capped stops with NEEDS_ORDER,
    the starved centres marked in ``work``: the caller sorts the counts with
    numpy, caps the marks (``cap_starved``), reassigns (``reassign_rows``) and
    closes the step (``end_step``).

    rng : (625,) uint32 INOUT, MT19937 state
    X : (n_samples, n_features) IN, C-contiguous or CSR (then the batch is
        X's rows themselves, see ``csr_fit_workspace``)
    cdf : (n_samples,) float64 IN, see ``sample_rows``
    centers : (n_clusters, n_features) INOUT, updated in place
    counts : (n_clusters,) INOUT
    tol : float, absolute tolerance on the squared centre shift (0: unused)
    max_no_improvement : int, -1 for None
    ewa : (3,) float64 INOUT, see ``_converged``
    counters : (3,) int64 INOUT, [steps without improvement, samples since
        the last reassignment, centres reassigned in the last step]
    work : tuple from ``fit_workspace``

    Returns
    -------
    last_step : int, index of the last step run
    status : RUNNING, CONVERGED_CENTERS, CONVERGED_INERTIA, ALL_REASSIGNED
        or NEEDS_ORDER
    """
    batch_rows, batch, unit_weight, labels, group_inertia, old, pending, scratch = work
    weight_sums, to_reassign, perm = scratch
    n_samples = rows_of.n_rows(X)
    n_clusters = centers.shape[0]
    batch_size = batch_rows.shape[0]
    last = first_step
    status = RUNNING
    for i in range(first_step, stop_step):
        last = i
        sample_rows(rng, cdf, batch_rows)
        reassign = should_reassign(counts, counters, batch_size, n_clusters)
        batch_inertia = _gather_and_label(X, batch_rows, centers, batch, labels, group_inertia)
        if tol > 0.0:
            _copy_rows(centers, old)
        update_centers(batch, unit_weight, labels, centers, centers, counts, weight_sums)
        counters[2] = 0
        if reassign and ratio > 0:
            _, capped = starved_centres(counts, ratio, batch_size, to_reassign)
            if capped:
                pending[0] = batch_inertia
                return last, NEEDS_ORDER
            counters[2] = reassign_rows(rng, batch, centers, counts, to_reassign, perm)
            if counters[2] < 0:
                return last, ALL_REASSIGNED
        status = end_step(
            i, n_samples, batch_size, centers, old, batch_inertia, tol, max_no_improvement, ewa, counters
        )
        if status != RUNNING:
            break
    return last, status
