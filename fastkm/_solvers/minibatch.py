"""MiniBatchKMeans's driver: its initialisation, the compiled loop, partial_fit's step.

The loop runs in compiled code (``_kernels/minibatch.py``), a slice of steps
a call; this module hands it scikit-learn's random state and comes back
between slices (Ctrl-C), to report a step, to pick the centres kept at a
capped reassignment (numpy's argsort), or to fail where scikit-learn fails.
"""

import functools

import numpy as np
import scipy.sparse as sp

from .._kernels import minibatch
from .._kernels._jit import serial_when_small, start_threads
from .._slicing import Pace, first_slice
from .layout import csr_parts, row_squared_norms
from .predict import assign, labels_inertia
from .seeding import init_centroids


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


@serial_when_small(
    lambda X, sample_weight, n_clusters, init, n_init, init_size, *args, **kwargs: (
        init_size * X.shape[1] * n_clusters
    )
)
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


@serial_when_small(lambda X, sample_weight, centers, batch_size, *args, **kwargs: batch_size * centers.size)
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

    The loop (batch draws, steps, reassignments, early stopping) runs in
    compiled code, in slices of steps of about a tenth of a second each
    (``_slicing.Pace``), so that Ctrl-C is answered. It comes back here
    between slices, to report each step (``verbose``), and for a
    reassignment capped at half a batch, where numpy's argsort picks the
    centres to keep (its choice among equal counts is numpy's own).

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
    # A step: label the batch against every centre, and a few microseconds besides.
    pace = Pace(first_slice(batch_size * centers.shape[0] * n_features + 10_000))
    try:
        while first < n_steps:
            # A slice of steps a call (see _slicing): Ctrl-C is answered between them.
            stop = first + 1 if verbose else min(n_steps, first + pace.size)
            started = pace.start()
            last, status = minibatch.fit_steps(rng, X, cdf, centers, counts, first, stop, *settings, work)
            pace.took(last + 1 - first, started)
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


@serial_when_small(lambda X, sample_weight, centers, *args, **kwargs: X.shape[0] * centers.size)
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
    # With numpy's centre norms, scikit-learn's (the fit's loop makes the same bits).
    assign(X, centers, labels, minibatch.n_row_groups(n_rows))
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
