"""KMeans's loop: n_init runs of Lloyd's iterations, the algorithm chosen, empty clusters relocated.

``kmeans_fit`` keeps the best of ``n_init`` runs by scikit-learn's rule;
``lloyd_single`` is one run, stepping one of ``steps``' algorithms until it
converges, and gives an empty cluster the point farthest from its centre
(``_relocate_empty_clusters``); ``choose_algorithm`` is ``algorithm="auto"``.
"""

import numpy as np
import scipy.sparse as sp

from .._kernels import lloyd, small_lloyd, sparse
from .._kernels._jit import serial_when_small, start_threads
from .._validation import is_sparse
from .distinct import distinct_rows
from .layout import csr_parts, row_squared_norms
from .predict import total_inertia
from .seeding import init_centroids
from .steps import BoundingLloydStep, step_for


def is_same_clustering(labels1, labels2, n_clusters):
    """True if two labelings are equal up to a permutation of the labels."""
    mapping = np.full(n_clusters, -1, dtype=np.int64)
    mapping[labels1] = labels2
    return bool(np.array_equal(mapping[labels1], labels2))


def choose_algorithm(n_samples, n_features, n_clusters):
    """The exact algorithm ``algorithm="auto"`` runs for data of this shape.

    From measurements on this project's benchmark machine (see the README):
    Hamerly's bounds cost a few nanoseconds per sample and iteration, and
    the samples near a moving boundary are scored again; that pays once
    scoring a sample against every centre costs more, and once clusters
    hold enough samples for the bounds to settle. From 32 clusters, or 64
    up to 16 features, where brute force is cheapest (make_blobs(100,000,
    centers=100, cluster_std=2), k=32, Hamerly's time over Lloyd's: d=8
    1.40x, d=16 1.38x; float32 1.47x and 1.24x); there, on float64 data,
    Hamerly's iterations start only once few labels change
    (``handover_share``). Yinyang's group bounds cost
    more per sample again, and pay once a distance is dearer still: with 16
    features or more, from 256 clusters, or from 128 where n_features *
    n_clusters >= 16384 (make_blobs(100,000, centers=100, cluster_std=2),
    Hamerly's time over Yinyang's: d=16 k=256 1.01-1.07x, d=32 k=256 1.18x,
    d=64 k=256 1.39x, d=128 k=128 1.10x; but d=64 k=128 0.92-1.01x, d=32
    k=128 0.85x, and below 128 clusters Hamerly wins: d=128 k=100 0.82x,
    d=64 k=64 0.80x). At 8 features Hamerly's rescoring, register-blocked, wins (k=512
    456 against 484 ms). Elkan's per-centre bounds are never picked: where
    they pay (d=64, k=128) Hamerly and Yinyang do as well in a fraction of
    the memory.
    """
    min_clusters = 64 if n_features <= _CHEAP_SCORE_MAX_FEATURES else 32
    if n_clusters < min_clusters or n_samples < 16 * n_clusters:
        return "lloyd"
    if n_features >= 16 and n_clusters >= 128 and (n_clusters >= 256 or n_features * n_clusters >= 16384):
        return "yinyang"
    return "hamerly"


def handover_share(n_features):
    """The share of rows changing label at or below which auto's brute force hands over to Hamerly's.

    ``steps.BoundingLloydStep``: the iteration after one that changed at
    most this share of the labels sets Hamerly's bounds, and Hamerly's
    iterations follow. Up to ``_HANDOVER_MAX_FEATURES`` features a
    brute-force iteration is cheap, and the bounds pay only once few labels
    change (the samples near a moving boundary are scored again): 1%.
    make_blobs(100,000, centers=100, cluster_std=2) and china.jpg, same
    init, auto's time over the fastest fixed algorithm's, handing over
    after the first iteration and at 1%: china.jpg k=64 1.12x and 1.02x,
    d=3 k=64 1.02x and 0.90x, d=8 k=100 0.96x and 0.88x, d=16 k=64 0.99x
    and 0.87x. With more features the bounds pay from the second iteration
    (1: hand over after the first); auto's time at 2% over its time at 1:
    d=32 k=100 1.27x, d=64 k=128 1.05x, d=64 k=64 1.08x.
    """
    return _HANDOVER_SHARE if n_features <= _HANDOVER_MAX_FEATURES else 1.0


# Up to this many features brute force wins below 64 clusters (choose_algorithm).
_CHEAP_SCORE_MAX_FEATURES = 16
# auto's hand-over from brute force to Hamerly (handover_share).
_HANDOVER_MAX_FEATURES = 16
_HANDOVER_SHARE = 0.01


def uses_bounds(algorithm, n_samples, n_features, n_clusters):
    """Whether a fit of this shape runs a bound-based step, whose margin wants a bound on the rows' norms."""
    if algorithm == "auto":
        algorithm = choose_algorithm(n_samples, n_features, n_clusters)
    return algorithm != "lloyd"


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
    X,
    sample_weight,
    centers_init,
    max_iter=300,
    verbose=False,
    tol=1e-4,
    algorithm="lloyd",
    distinct=None,
    x_max=None,
):
    """One run of Lloyd's iterations from ``centers_init``.

    Semantics follow scikit-learn: stop on unchanged labels (strict convergence)
    or when the total squared centre shift is at most ``tol``; after a
    non-strict stop, labels are recomputed against the final centres.
    ``algorithm="hamerly"``, ``"yinyang"`` and ``"elkan"`` give the same iterates, skipping
    the distances that their bounds show cannot change a label; ``"auto"``
    picks by shape (``choose_algorithm``), and starts a Hamerly run on
    float64 data with brute force, handed over once few labels change
    (``handover_share``). With ``distinct`` (from
    ``distinct_rows``), the iterations run on X's distinct rows and their
    merged weights; what scikit-learn does row by row (empty-cluster
    relocation, the inertia) still sees every row. ``x_max``, an upper
    bound on every row's squared norm (``center_data`` makes one), spares
    the bound-based steps a pass over X for their rounding margin.

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
    centers = np.array(centers_init, dtype=X.dtype, order="C")
    new_centers = np.empty_like(centers)
    if algorithm == "auto":
        algorithm = choose_algorithm(n_rows, n_features, n_clusters)
        if algorithm == "hamerly" and rows.dtype == np.float64 and not sp.issparse(rows):
            # Brute force scored in float32 first, whose scores set Hamerly's
            # bounds on the way; Hamerly's once they pay (handover_share).
            algorithm = "lloyd-then-hamerly"
    if algorithm != "lloyd" and np.any(sample_weight < 0):
        # Negative weights can put centres outside the data, beyond the
        # rounding margin the bounds are built on; brute force is safe. The
        # rows' own weights: merged ones can hide a negative one, which an
        # empty cluster's relocation still moves alone.
        algorithm = "lloyd"
    step = step_for(rows, row_weight, centers, algorithm, x_max, handover_share(n_features))
    if distinct is not None:
        step = step.on_merged_rows()
    labels = step.labels

    def all_labels():
        return labels if distinct is None else labels[distinct.inverse]

    if step.runs_whole and not verbose:
        buffers = centers, new_centers
        i, strict_convergence, centers, inertia = _run_whole(step, X, sample_weight, *buffers, max_iter, tol)
        if inertia is None:
            if not strict_convergence:
                step.relabel(centers)
            inertia = total_inertia(X, sample_weight, centers, labels)
        return labels, float(inertia), centers, i + 1

    strict_convergence = False
    for i in range(max_iter):
        n_changed, n_empty, center_shift_tot = step(i == 0, centers, new_centers)
        if n_empty:
            center_shift_tot = _relocated(step, X, sample_weight, centers, new_centers, all_labels())
        if verbose:
            inertia = total_inertia(X, sample_weight, centers, all_labels())
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
        if isinstance(step, BoundingLloydStep) and step.bounded:
            # From the centres just scored (now new_centers) to the new ones.
            step = step.to_hamerly(new_centers, centers)
            labels = step.labels

    if not strict_convergence:
        step.relabel(centers)
    labels = all_labels()
    return labels, total_inertia(X, sample_weight, centers, labels), centers, i + 1


def _relocated(step, X, sample_weight, centers, new_centers, labels):
    """The end of an iteration that left a cluster empty; returns the total squared shift.

    ``new_centers`` holds the sums: the empty clusters are relocated, the
    sums averaged as usual, and the step told of the final centres.
    """
    _relocate_empty_clusters(X, sample_weight, centers, new_centers, step.weights, labels)
    lloyd.average_centers(new_centers, step.weights)
    center_shift_tot = step.center_shift(centers, new_centers)
    step.centers_moved(centers, new_centers)
    return center_shift_tot


def _run_whole(step, X, sample_weight, centers, new_centers, max_iter, tol):
    """``lloyd_single``'s loop for a step that ``runs_whole``: compiled runs, relocations between them.

    The same iterations as the loop there, in slices of at most
    ``_RUN_SLICE`` iterations (Ctrl-C is seen between them). X is the
    step's rows (a step on merged distinct rows never runs whole, see
    ``on_merged_rows``). Returns the last iteration, whether it converged
    strictly, the last centres, and the inertia if the last compiled run
    ended the fit (its rows then labelled as the loop's end labels them),
    else None: the fit ended in Python, after a relocation.
    """
    start = 0
    while True:
        stop = min(max_iter, start + _RUN_SLICE)
        i, n_changed, status, inertia = step.run(start, stop, stop == max_iter, tol, centers, new_centers)
        if status == small_lloyd.RAN_OUT and stop < max_iter:
            start = stop
            continue
        if status != small_lloyd.EMPTY:
            # The run ended the fit (``small_lloyd.ends_the_fit``): its inertia is the fit's.
            return i, status == small_lloyd.STRICT, centers, inertia
        center_shift_tot = _relocated(step, X, sample_weight, centers, new_centers, step.labels)
        centers, new_centers = new_centers, centers
        if n_changed == 0:
            return i, True, centers, None
        if center_shift_tot <= tol or i + 1 == max_iter:
            return i, False, centers, None
        start = i + 1


# Iterations a compiled run goes through before Python sees Ctrl-C (a whole
# run's iteration is at most ``steps.WHOLE_RUN_WORK`` multiply-adds: 0.1 ms).
_RUN_SLICE = 64


@serial_when_small(lambda X, sample_weight, n_clusters, *args, **kwargs: X.shape[0] * X.shape[1] * n_clusters)
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
    x_max=None,
):
    """Best of ``n_init`` Lloyd runs, by inertia (scikit-learn's selection rule).

    ``validate_centers`` is called on each callable-made init before use.
    ``x_max``, if known, bounds every row's squared norm (see ``lloyd_single``).

    Returns
    -------
    labels, inertia, centers, n_iter of the best run
    """
    start_threads()
    # Only k-means++ uses the row norms; an array or callable init does not.
    uses_norms = isinstance(init, str) and init == "k-means++"
    x_squared_norms = row_squared_norms(X) if uses_norms else None
    distinct = None if is_sparse(X) else distinct_rows(X, sample_weight)
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
            x_max=x_max,
        )
        # A new run must beat the best inertia *and* be a different clustering:
        # a relabelled copy can win on rounding alone.
        if best_inertia is None or (
            inertia < best_inertia and not is_same_clustering(labels, best_labels, n_clusters)
        ):
            best_labels, best_centers = labels, centers
            best_inertia, best_n_iter = inertia, n_iter
    return best_labels, best_inertia, best_centers, best_n_iter
