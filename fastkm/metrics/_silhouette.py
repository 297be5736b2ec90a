"""The silhouette (Rousseeuw, 1987) from each row's summed distances to every cluster.

A row's silhouette is ``(b - a) / max(a, b)``: ``a`` its mean distance to
the other rows of its cluster, ``b`` the smallest mean distance to the rows
of another cluster (0 for a row alone in its cluster). The sums come from
``_kernels.silhouette.cluster_distance_sums`` (O(n k) memory, one order of
summation for any thread count); what follows them is scikit-learn's own
arithmetic, step for step.
"""

import itertools
from numbers import Integral
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import silhouette_samples as _sklearn_samples
from sklearn.metrics.cluster._unsupervised import check_number_of_labels
from sklearn.metrics.pairwise import _VALID_METRICS
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_array, check_consistent_length, check_random_state, check_X_y, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .. import _tiers
from .._kernels._jit import FEATURE_BLOCK, one_thread, start_threads
from .._slicing import in_slices

# The metrics the kernel computes; any other goes to scikit-learn.
_EUCLIDEAN = ("euclidean", "l2")


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "labels": ["array-like"],
        "metric": [StrOptions(set(_VALID_METRICS) | {"precomputed"}), callable],
    },
    prefer_skip_nested_validation=True,
)
def silhouette_samples(X, labels, *, metric="euclidean", **kwds):
    """The silhouette coefficient of each sample, as :func:`sklearn.metrics.silhouette_samples`.

    For dense X and the Euclidean metric, every distance is computed once
    (for a pair of samples) by a compiled kernel that keeps O(n_samples x
    n_clusters) memory, never the n x n matrix, and adds them in one order
    whatever the number of threads. Distances are taken from the
    differences and summed in float64: on float64 data the result equals
    scikit-learn's to rounding (exactly, where every squared distance is an
    exact integer, as on digits); on float32 data it is more accurate than
    scikit-learn's, which sums in float32. Other metrics, keyword arguments
    and sparse input are passed to scikit-learn.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features) or (n_samples, n_samples)
        The samples, or their distances with ``metric="precomputed"``.
    labels : array-like of shape (n_samples,)
        Each sample's cluster.
    metric : str or callable, default="euclidean"
        As scikit-learn's.
    **kwds
        Passed to scikit-learn's distance function (then scikit-learn computes).

    Returns
    -------
    silhouette : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        When there are fewer than 2 clusters or as many as samples
        (scikit-learn's message), or X holds NaN or infinity.

    Examples
    --------
    >>> import numpy as np
    >>> from fastkm.metrics import silhouette_samples
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [5.0, 1.0]])
    >>> silhouette_samples(X, [0, 0, 1, 1]).round(3)
    array([0.802, 0.802, 0.802, 0.802])
    """
    if metric not in _EUCLIDEAN or kwds or sp.issparse(X):
        return _sklearn_samples(X, labels, metric=metric, **kwds)
    X, labels = check_X_y(X, labels)
    le = LabelEncoder()
    labels = le.fit_transform(labels)
    n_samples = len(labels)
    label_freqs = np.bincount(labels)
    check_number_of_labels(len(le.classes_), n_samples)
    form = _kernel_form(X)
    if _tiers.choose(_units(form.dtype), "silhouette_samples") == _tiers.FALLBACK:
        return _sklearn_samples(X, labels, metric=metric)
    cluster_distances = cluster_distance_sums(X, labels, len(label_freqs), form)
    return _from_sums(cluster_distances, labels, label_freqs, _result_dtype(X))


def _from_sums(cluster_distances, labels, label_freqs, dtype):
    """Each sample's silhouette from its summed distances to every cluster (overwritten)."""
    # scikit-learn's steps from here (_silhouette_reduce, then silhouette_samples).
    n_samples = len(labels)
    intra_index = (np.arange(n_samples), labels)
    intra_clust_dists = cluster_distances[intra_index]
    cluster_distances[intra_index] = np.inf
    cluster_distances /= label_freqs
    inter_clust_dists = cluster_distances.min(axis=1)
    denom = (label_freqs - 1).take(labels, mode="clip")
    with np.errstate(divide="ignore", invalid="ignore"):
        intra_clust_dists /= denom
    sil_samples = inter_clust_dists - intra_clust_dists
    with np.errstate(divide="ignore", invalid="ignore"):
        sil_samples /= np.maximum(intra_clust_dists, inter_clust_dists)
    # NaN for the samples alone in their cluster: 0, as scikit-learn. Its
    # result is float32 for float32 X (its distances are): so is this one.
    return np.nan_to_num(sil_samples).astype(dtype, copy=False)


def _result_dtype(X):
    return np.float32 if X.dtype == np.float32 else np.float64


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "labels": ["array-like"],
        "metric": [StrOptions(set(_VALID_METRICS) | {"precomputed"}), callable],
        "sample_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def silhouette_score(X, labels, *, metric="euclidean", sample_size=None, random_state=None, **kwds):
    """The mean silhouette coefficient of all samples, as :func:`sklearn.metrics.silhouette_score`.

    Exact over every sample by default (see :func:`silhouette_samples`:
    all 273,280 pixels of china.jpg take well under a minute here, in
    O(n_samples x n_clusters) memory); ``sample_size`` draws that many
    samples first, with the same draw as scikit-learn for the same
    ``random_state``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features) or (n_samples, n_samples)
    labels : array-like of shape (n_samples,)
    metric : str or callable, default="euclidean"
    sample_size : int, default=None
        Compute on a random subset of this many samples (without replacement).
    random_state : int, RandomState instance or None, default=None
        The draw of the subset.
    **kwds
        Passed to scikit-learn's distance function.

    Returns
    -------
    silhouette : float

    Examples
    --------
    >>> import numpy as np
    >>> from fastkm.metrics import silhouette_score
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [5.0, 1.0]])
    >>> round(silhouette_score(X, [0, 0, 1, 1]), 3)
    0.802
    """
    if sample_size is not None:
        X, labels = check_X_y(X, labels, accept_sparse=["csc", "csr"])
        random_state = check_random_state(random_state)
        indices = random_state.permutation(X.shape[0])[:sample_size]
        if metric == "precomputed":
            X, labels = X[indices].T[indices].T, labels[indices]
        else:
            X, labels = X[indices], labels[indices]
    return float(np.mean(silhouette_samples(X, labels, metric=metric, **kwds)))


def silhouette_scores(X, labellings, form=None):
    """X's mean silhouette under each of several labellings, ``[silhouette_score(X, l) for l in labellings]``.

    Each distance is computed once for all the labellings
    (``_kernels.silhouette.labellings_distance_sums``), which a k sweep
    needs: on digits, 19 labellings cost about what 3 separate calls do.
    Memory O(n_samples x the labellings' clusters added up), taken in
    batches of about ``SWEEP_MEMORY`` bytes (a labelling larger than that
    alone). The results equal separate calls' to rounding (the sums are
    made in another order), and are the same for any number of threads.

    X : (n_samples, n_features) dense, finite; labellings : sequence of (n_samples,) arrays;
    form : the kernels' (default ``_kernel_form(X)``; the tests vary it).
    """
    X = check_array(X)
    encoded = []
    for labels in labellings:
        labels = column_or_1d(labels)
        check_consistent_length(X, labels)
        labels = LabelEncoder().fit_transform(labels)
        label_freqs = np.bincount(labels)
        check_number_of_labels(len(label_freqs), len(labels))
        encoded.append((labels, label_freqs))
    if not encoded:
        return []
    n_samples = X.shape[0]
    form = _kernel_form(X) if form is None else form
    if _tiers.choose(_units(form.dtype), "silhouette_samples") == _tiers.FALLBACK:
        return [float(np.mean(_sklearn_samples(X, labels))) for labels, _ in encoded]
    from numba import get_num_threads

    from .._kernels.silhouette import labellings_block_rows, labellings_distance_sums

    XT = norms = roots = None  # X feature-major, made when a batch of several labellings first needs it
    scores = []
    batch = []

    def flush():
        nonlocal XT, norms, roots
        if len(batch) == 1:  # one labelling: the symmetric kernel, each distance taken once
            ((labels, freqs),) = batch
            sums_each = [cluster_distance_sums(X, labels, len(freqs), form)]
        else:
            if XT is None:
                XT, norms, roots = _feature_major(X, None, form)
            offsets = np.cumsum([0] + [len(freqs) for _, freqs in batch])
            sums_t = np.zeros((offsets[-1], n_samples))
            stacked = np.array([labels for labels, _ in batch], dtype=np.int64)
            start_threads()
            starts, block = offsets[:-1].copy(), labellings_block_rows(n_samples)
            # A slice is a whole number of rounds of one block a thread: every thread busy.
            n_blocks, threads = -(-n_samples // block), get_num_threads()
            in_slices(
                lambda first, stop: labellings_distance_sums(
                    XT,
                    norms,
                    roots,
                    stacked,
                    starts,
                    block,
                    sums_t,
                    first * threads,
                    min(stop * threads, n_blocks),
                ),
                -(-n_blocks // threads),
                n_samples * block * (XT.shape[0] + len(stacked)),  # a block of columns against every row
            )
            # One labelling's sums at a time, row-major for _from_sums.
            sums_each = (np.ascontiguousarray(sums_t[a:b].T) for a, b in itertools.pairwise(offsets))
        for (labels, freqs), sums in zip(batch, sums_each, strict=True):
            scores.append(float(np.mean(_from_sums(sums, labels, freqs, _result_dtype(X)))))
        batch.clear()

    for labels, freqs in encoded:
        if batch and (sum(len(f) for _, f in batch) + len(freqs)) * n_samples * 8 > SWEEP_MEMORY:
            flush()
        batch.append((labels, freqs))
    flush()
    return scores


# The most memory silhouette_scores takes for its sums at once, in bytes.
SWEEP_MEMORY = 256 * 2**20


class KernelForm(NamedTuple):
    """How the kernels take X: in ``dtype``, and, where ``low`` is not None, less
    ``low`` (its column minima) with the squared distances from the expansion;
    ``squares`` given for exact data (see ``exact_in_float32``)."""

    dtype: np.dtype
    low: np.ndarray | None
    squares: float | None = None  # exact data's summed squared spans: a bound on its squared distances


# The expansion |x|^2 + |y|^2 - 2 x.y is exact on integer data shifted to
# its column minima while |x|^2 + |y|^2, the largest value it meets, stays
# within float32's exact integers: summed squared spans at most 2**23.
EXPANSION_SQUARES = 2**23


def _kernel_form(X):
    """The kernels' form for X (``KernelForm``).

    float32 when that computes every squared distance exactly
    (``exact_in_float32``: the same results, twice the numbers a vector),
    else float64; float64 too when its kernels are compiled and the
    float32 ones not yet: they give the same bits. On such exact data, the
    squared distances come from the expansion when it is exact as well
    (``EXPANSION_SQUARES``): the same integers, in half the arithmetic.
    """
    spans = _exact_spans(X)
    if spans is None:
        return KernelForm(np.dtype(np.float64), None)
    low, squares = spans
    low = low if squares <= EXPANSION_SQUARES else None
    if (
        _tiers.mode() != "wait"
        and _tiers.is_ready("metrics:float64")
        and not _tiers.is_ready("metrics:float32")
    ):
        return KernelForm(np.dtype(np.float64), low, squares)
    return KernelForm(np.dtype(np.float32), low, squares)


def _units(dtype):
    # The float32 kernels are compiled in their own unit; the float64 ones always are.
    return ["metrics:float64"] + (["metrics:float32"] if dtype == np.float32 else [])


def _feature_major(X, order, form):
    """The kernels' inputs: X's rows in ``order`` (None: as they are) in ``form``,
    feature-major, zero-padded to whole FEATURE_BLOCKs of features; their
    squared norms (empty unless ``form.low`` is given); and the table of
    square roots (empty unless ``form.squares`` is given and small)."""
    from .._kernels.tiles import gather_tile

    n_samples, n_features = X.shape
    width = max(FEATURE_BLOCK, -(-n_features // FEATURE_BLOCK) * FEATURE_BLOCK)
    XT = np.empty((width, n_samples), dtype=form.dtype)
    XT[n_features:] = 0
    rows = np.arange(n_samples) if order is None else order
    # Compiled: eight rows at a time, each feature's eight values side by side
    # (digits: 56 us, against 189 for numpy's copies). X cast first (exact for
    # exact data, else widened): one dtype in and out, the signatures the
    # metrics units compile.
    gather_tile(np.ascontiguousarray(X, dtype=form.dtype), 0, rows, n_samples, XT)
    roots = np.empty(0) if form.squares is None else _roots(form.squares)
    if form.low is None:
        return XT, np.empty(0, dtype=form.dtype), roots
    # Integers of at most 2**24 (exact_in_float32), their differences too.
    XT[:n_features] -= form.low.astype(form.dtype)[:, None]
    # Integers of at most 2**23: exact in any order.
    return XT, np.einsum("ij,ij->j", XT, XT), roots


# Exact data whose squared distances are at most this many integers (their
# summed squared spans) has their square roots looked up, not taken: a
# table of 512 KiB at most, in a core's L2. Digits (16,384): its sums in
# 3.8 ms against 4.7 on one core.
ROOTS_TABLE = 2**16


# The whole table, made by the first call that needs it (30 us, a call saved).
_ROOTS = []


def _roots(squares):
    """``sqrt(arange(squares + 1))`` (float64), or an empty array past ``ROOTS_TABLE``."""
    if squares > ROOTS_TABLE:
        return np.empty(0)
    if not _ROOTS:
        # Writable, as every array the kernels take (a read-only one is
        # copied to the writable type on every call).
        _ROOTS.append(np.sqrt(np.arange(ROOTS_TABLE + 1, dtype=np.float64)))
    return _ROOTS[0][: int(squares) + 1]


# Rows checked at a time by exact_in_float32 (its temporaries stay small).
_CHECK_ROWS = 16_384


def exact_in_float32(X):
    """Whether float32 arithmetic gives X's squared distances exactly.

    So it does when X holds integers (pixel values, counts, digits' grey
    levels) whose squared differences summed over the features stay at
    most 2**24: every value, difference, product and partial sum is then an
    integer float32 holds exactly, and the square roots, taken in float64,
    have the bits of the float64 computation.
    """
    return _exact_spans(X) is not None


def _exact_spans(X):
    """``(column minima, summed squared spans)`` of X when ``exact_in_float32(X)``, else None."""
    if X.size == 0:
        return None
    low, high = X.min(axis=0), X.max(axis=0)
    low64, high64 = low.astype(np.float64), high.astype(np.float64)
    spans = high64 - low64
    squares = spans @ spans
    if max(-low64.min(), high64.max()) > 2**24 or squares > 2**24:
        return None
    for start in range(0, X.shape[0], _CHECK_ROWS):
        block = X[start : start + _CHECK_ROWS]
        if not np.array_equal(block, np.rint(block)):
            return None
    return low64, squares


def cluster_distance_sums(X, labels, n_clusters, form=None, block=None):
    """``out[i, c]``: the summed Euclidean distances from row ``i`` of X to the rows of cluster ``c``.

    X : (n_samples, n_features) dense; labels : (n_samples,) in 0 .. n_clusters - 1;
    form : the kernels' (default ``_kernel_form(X)``); block : rows per block
    (default ``block_rows``, a function of the shape; the tests vary it).
    """
    from .._kernels.silhouette import block_rows, n_rounds, serial_sized
    from .._kernels.silhouette import cluster_distance_sums as kernel

    order = np.argsort(labels, kind="stable")
    n_samples = X.shape[0]
    XT, norms, roots = _feature_major(X, order, _kernel_form(X) if form is None else form)
    width = XT.shape[0]
    block = block_rows(n_samples, width) if block is None else block
    sorted_sums = np.zeros((n_samples, n_clusters))
    start_threads()
    sorted_labels = labels[order].astype(np.int64)
    rounds = n_rounds(n_samples, block)
    with one_thread(serial_sized(n_samples, width)):
        in_slices(
            lambda start, stop: kernel(XT, norms, roots, sorted_labels, block, sorted_sums, start, stop),
            rounds,
            n_samples * n_samples // 2 * width // rounds,  # a round: its share of the pairs' features
        )
    sums = np.empty_like(sorted_sums)
    sums[order] = sorted_sums
    return sums
