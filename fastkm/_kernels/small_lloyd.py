"""Lloyd's iterations on at most 512 rows: scikit-learn's own centre sums, and a whole run in one call.

On so few rows scikit-learn's sums are a function of the rows (see
``steps.SUMS_AS_SCIKIT_LEARN``), and fastkm makes them the same way
(``chunked_sums``, ``finish_as_scikit_learn``), with scikit-learn's centre
shift (``center_shift_as_scikit_learn``). ``run`` goes through the
iterations of such a fit without returning to Python: on the seeds' blobs a
Python round per iteration (the centres' norms, two kernel calls) cost
twice the arithmetic.
"""

import numpy as np

from . import rows as rows_of
from ._jit import CHUNK, exact_kernel, kernel
from .lloyd import _assign_rows, average_centers, changed_and_empty, group_bounds, rows_inertia
from .row_major import centers_for_rows
from .stats import centre_squared_norms, numpy_sum
from .tiles import padded_centers


@exact_kernel
def chunked_sums(X, sample_weight, labels, sums, weights):
    """The centre sums and weights of ``labels``, made as scikit-learn's Lloyd iteration makes them.

    scikit-learn recomputes them every iteration, in X's dtype: a partial per
    ``CHUNK`` rows (each row times its weight, added in row order), the
    partials then added into zeros one after another. Same operations in the
    same order, rounded as written (no fastmath), so the same bits wherever
    scikit-learn adds its chunks' partials in chunk order (see
    ``steps.SUMS_AS_SCIKIT_LEARN``).

    X : (n, n_features) IN, dense or CSR (see ``rows``)
    sample_weight : (n,) IN, X's dtype
    labels : (n,) int32 IN
    sums : (n_clusters, n_features) OUT, X's dtype, the weighted sums of rows
    weights : (n_clusters,) OUT, X's dtype, the sums of weights
    """
    n = rows_of.n_rows(X)
    n_clusters, n_features = sums.shape
    partial = np.empty_like(sums)
    partial_weights = np.empty_like(weights)
    # Plain loops: a slice assignment compiles much more code.
    for j in range(n_clusters):
        weights[j] = 0
        for f in range(n_features):
            sums[j, f] = 0
    for start in range(0, n, CHUNK):
        for j in range(n_clusters):
            partial_weights[j] = 0
            for f in range(n_features):
                partial[j, f] = 0
        for i in range(start, min(start + CHUNK, n)):
            j = labels[i]
            partial_weights[j] += sample_weight[i]
            rows_of.add_row_exact(X, i, sample_weight[i], partial[j])
        for j in range(n_clusters):
            weights[j] += partial_weights[j]
            for f in range(n_features):
                sums[j, f] += partial[j, f]


@exact_kernel
def center_shift_as_scikit_learn(old_centers, new_centers, shifts):
    """The total squared centre shift, bit for bit as scikit-learn's Lloyd loop computes it.

    Each centre's shift as its ``_center_shift`` (in the centres' dtype,
    four features a step, their squares added left to right and then to the
    total, the rest one by one, then the root), then ``(shifts**2).sum()``
    in numpy's order (``stats.numpy_sum``): the total compared with ``tol``.

    old_centers, new_centers : (n_clusters, n_features) IN
    shifts : (n_clusters,) scratch, centres' dtype

    Returns the total, in the centres' dtype.
    """
    n_clusters, n_features = old_centers.shape
    fours = n_features // 4
    for j in range(n_clusters):
        total = shifts.dtype.type(0.0)
        for q in range(fours):
            f = 4 * q
            d0 = new_centers[j, f] - old_centers[j, f]
            d1 = new_centers[j, f + 1] - old_centers[j, f + 1]
            d2 = new_centers[j, f + 2] - old_centers[j, f + 2]
            d3 = new_centers[j, f + 3] - old_centers[j, f + 3]
            total += d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3
        for f in range(4 * fours, n_features):
            d = new_centers[j, f] - old_centers[j, f]
            total += d * d
        shift = np.sqrt(total)
        shifts[j] = shift * shift
    return numpy_sum(shifts)


@exact_kernel
def finish_as_scikit_learn(X, sample_weight, labels, group_changed, centers, new_centers, weights, shifts):
    """The end of an iteration as scikit-learn's: sums made afresh, its means, its shift.

    ``finish_iteration``'s counterpart for rows whose sums are made as
    scikit-learn makes them (``chunked_sums``); ``group_changed`` is the
    per-block kernel's, as there. Returns ``(n_changed, n_empty,
    center_shift)``: with an empty cluster, ``new_centers`` holds the sums
    (for the caller to relocate and average) and the shift is 0.

    X, sample_weight, labels : as ``chunked_sums``
    centers : (n_clusters, n_features) IN, the iteration's centres
    new_centers : (n_clusters, n_features) OUT
    weights : (n_clusters,) OUT, X's dtype
    shifts : (n_clusters,) scratch, X's dtype
    """
    chunked_sums(X, sample_weight, labels, new_centers, weights)
    n_changed, n_empty = changed_and_empty(group_changed, weights)
    if n_empty:
        return n_changed, n_empty, 0.0
    average_centers(new_centers, weights)
    return n_changed, n_empty, np.float64(center_shift_as_scikit_learn(centers, new_centers, shifts))


# How ``run`` stopped; GOES_ON: it has not.
RAN_OUT, STRICT, WITHIN_TOL, EMPTY, GOES_ON = 0, 1, 2, 3, 4


@kernel
def end_of_iteration(centers, new_centers, n_changed, n_empty, shift, tol):
    """The loop's tests after an iteration of a compiled run (``run``, ``lloyd_run.run``).

    EMPTY with an empty cluster (``centers`` kept, ``new_centers`` the
    sums); otherwise the new centres replace ``centers``, then STRICT (no
    label changed), WITHIN_TOL (total squared shift at most ``tol``) or
    GOES_ON.
    """
    if n_empty:
        return EMPTY
    n_clusters, n_features = centers.shape
    for j in range(n_clusters):
        for f in range(n_features):
            centers[j, f] = new_centers[j, f]
    if n_changed == 0:
        return STRICT
    if shift <= tol:
        return WITHIN_TOL
    return GOES_ON


@kernel
def ends_the_fit(status, last_slice):
    """Whether a run that stopped with ``status`` ended the fit (``last_slice``: it ran to ``max_iter``)."""
    return status == STRICT or status == WITHIN_TOL or (status == RAN_OUT and last_slice)


@kernel
def run(
    X, sample_weight, centers, new_centers, labels, weights, shifts, start, stop, last_slice, tol, n_groups
):
    """Lloyd's iterations ``start .. stop - 1`` in one call, as ``exact.lloyd_single`` steps them.

    ``stop`` is the end of this call's slice (``exact._run_whole``);
    ``last_slice``: it is the fit's ``max_iter`` (a flag, not ``max_iter``
    itself, which numba cannot take past 2**63).

    Each iteration labels the rows against ``centers`` (``lloyd._assign_rows``,
    X read in place: the labels' bits of every Lloyd step), with the
    centres' norms as numpy's einsum gives them (``stats.centre_squared_norms``),
    then ``finish_as_scikit_learn``; the new centres replace ``centers``.
    An iteration that leaves a cluster empty stops the run before its
    relocation (scikit-learn's numpy calls, made by the caller). A run that
    ends the fit also ends it as the loop does: the rows labelled again
    against the last centres unless it converged strictly, and the inertia
    (``lloyd.inertia``'s sum on ``n_groups`` row groups, as ``total_inertia``).

    X : (n, n_features) IN, C-contiguous, n <= ``steps.SUMS_AS_SCIKIT_LEARN``
    sample_weight : (n,) IN, X's dtype
    centers : (n_clusters, n_features) INOUT, the centres, the last ones out
    new_centers : (n_clusters, n_features) scratch; after EMPTY, the sums
    labels : (n,) int32 INOUT
    weights, shifts : (n_clusters,) X's dtype, as ``finish_as_scikit_learn``
    start : int, the slice's first iteration
    tol : float, the absolute tolerance on the total squared shift
    n_groups : int, the row groups of the inertia's partial sums (one on
        so few rows, but the rule is ``total_inertia``'s)

    Returns
    -------
    i : int, the last iteration run
    n_changed : int, the labels it changed
    status : RAN_OUT, STRICT (no label changed), WITHIN_TOL, or EMPTY
        (iteration ``i`` left a cluster empty; ``centers`` are still its
        centres and ``new_centers`` holds the sums)
    inertia : float, the fit's if this run ended it (``ends_the_fit``), else NaN
    """
    changed = np.empty(1, dtype=np.int64)
    n_changed = np.int64(0)
    status = GOES_ON
    i = start
    while i < stop:
        changed[0] = _label_rows(X, sample_weight, centers, labels)
        n_changed, n_empty, shift = finish_as_scikit_learn(
            X, sample_weight, labels, changed, centers, new_centers, weights, shifts
        )
        status = end_of_iteration(centers, new_centers, n_changed, n_empty, shift, tol)
        if status != GOES_ON:
            break
        i += 1
    if status == GOES_ON:  # through the slice
        status, i = RAN_OUT, stop - 1
    inertia = np.nan
    if ends_the_fit(status, last_slice):
        if status != STRICT:
            _label_rows(X, sample_weight, centers, labels)
        # Serial, group by group as ``lloyd.inertia`` adds them: its
        # parallel loop's launch cost a small fit more than the sum itself.
        inertia = 0.0
        for g in range(n_groups):
            g_start, g_stop = group_bounds(g, n_groups, X.shape[0])
            inertia += rows_inertia(X, sample_weight, centers, labels, g_start, g_stop)
    return i, n_changed, status, inertia


@kernel
def _label_rows(X, sample_weight, centers, labels):
    """Label X's rows against ``centers``, read in place; returns the labels changed."""
    no_tiles = np.empty((0, 0, 0), dtype=X.dtype)
    no_sums = np.empty((0, 0))
    norms = centre_squared_norms(centers)
    padded = padded_centers(centers, X.dtype)
    centers_t, norms_t = centers_for_rows(X, no_tiles, centers, norms)
    inputs = X, no_tiles, False, 0, sample_weight, padded, norms, centers_t, norms_t
    n_changed, _ = _assign_rows(*inputs, labels, 0, X.shape[0], no_sums)
    return n_changed
