"""fastkm.metrics: the silhouette against a numpy reference and against scikit-learn."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import metrics as sk
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs

from fastkm.metrics import (
    _silhouette,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_samples,
    silhouette_score,
)

from . import reference

# The kernels' general form: float64, squared distances from the differences.
DIFFERENCES = _silhouette.KernelForm(np.dtype(np.float64), None)


@pytest.mark.parametrize(
    "n_samples, n_features, n_clusters",
    # With blocks of 64 rows: one block, a partial last one, odd and even
    # counts of blocks (1 to 16: the circle method's fixed slot beside
    # others in every round); narrow (d <= 4) and wide rows, clusters of one
    # row. The default blocks (these sizes run on one thread) too.
    [(1, 3, 1), (7, 1, 3), (255, 3, 4), (256, 4, 2), (257, 5, 7), (600, 9, 5), (800, 64, 10), (1000, 5, 6)],
)
def test_cluster_distance_sums_match_numpy(n_samples, n_features, n_clusters):
    rng = np.random.default_rng(n_samples)
    X = rng.normal(size=(n_samples, n_features)) * 3 + 1
    labels = rng.integers(0, n_clusters, n_samples)
    labels[: min(n_clusters, n_samples)] = np.arange(min(n_clusters, n_samples))
    expected = reference.cluster_distance_sums(X, labels, n_clusters)
    for block in (None, 64):  # the default (one thread: these are small) and many blocks
        found = _silhouette.cluster_distance_sums(X, labels, n_clusters, block=block)
        np.testing.assert_allclose(found, expected, rtol=1e-13, atol=1e-12 * expected.max())


@pytest.mark.parametrize(
    "n_samples, n_features",
    # One column block, a partial last one, more blocks than threads; the
    # rows' last group of ROWS padded; narrow and wide rows.
    [(3, 1), (66, 3), (129, 5), (700, 9), (2100, 2)],
)
def test_labellings_distance_sums_match_numpy(n_samples, n_features):
    from fastkm._kernels import silhouette as kernels

    rng = np.random.default_rng(n_samples)
    X = rng.normal(size=(n_samples, n_features)) * 2 - 1
    ks = [2, 5, 3]
    labels = np.array([rng.integers(0, k, n_samples) for k in ks], dtype=np.int64)
    offsets = np.cumsum([0, *ks])
    sums_t = np.zeros((offsets[-1], n_samples))
    XT, norms, roots = _silhouette._feature_major(X, np.arange(n_samples), DIFFERENCES)
    block = kernels.labellings_block_rows(n_samples)
    n_blocks = -(-n_samples // block)
    # In two calls, as a caller answering Ctrl-C between slices makes them.
    for first, stop in ((0, n_blocks // 2), (n_blocks // 2, n_blocks)):
        kernels.labellings_distance_sums(
            XT, norms, roots, labels, offsets[:-1].copy(), block, sums_t, first, stop
        )
    for q, k in enumerate(ks):
        expected = reference.cluster_distance_sums(X, labels[q], k)
        found = sums_t[offsets[q] : offsets[q + 1]].T
        np.testing.assert_allclose(found, expected, rtol=1e-13, atol=1e-12 * expected.max())


def test_silhouette_scores_of_many_labellings(monkeypatch):
    # A k sweep's silhouettes in one pass: each equals its own call to rounding
    # and scikit-learn's, split into batches (a memory cap) too.
    X = load_digits().data
    labellings = [KMeans(k, random_state=0, n_init=1).fit(X).labels_ for k in (2, 3, 7, 12)]
    labellings.append(np.where(labellings[0] == 0, 10, -4))  # labels of any values
    found = _silhouette.silhouette_scores(X, labellings)
    for labels, score in zip(labellings, found, strict=True):
        assert score == pytest.approx(silhouette_score(X, labels), rel=1e-13)
        assert score == pytest.approx(sk.silhouette_score(X, labels), rel=1e-12)
    monkeypatch.setattr(_silhouette, "SWEEP_MEMORY", 12 * 8 * len(X))  # 12 clusters a batch
    # (a batch of one labelling goes to the symmetric kernel: another order of sums)
    assert _silhouette.silhouette_scores(X, labellings) == pytest.approx(found, rel=1e-13)
    assert _silhouette.silhouette_scores(X, []) == []
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _silhouette.silhouette_scores(X, [labellings[0][:40]])
    with pytest.raises(ValueError, match="Number of labels is 1"):
        _silhouette.silhouette_scores(X, [labellings[0], np.zeros(len(X))])


def _digits():
    X = load_digits().data
    return X, KMeans(10, random_state=0, n_init=1).fit(X).labels_


def test_digits_equal_to_scikit_learn():
    # Integer pixels: every squared distance is exact, in both.
    X, labels = _digits()
    expected = sk.silhouette_score(X, labels)
    assert silhouette_score(X, labels) == pytest.approx(expected, rel=1e-12, abs=0)
    np.testing.assert_allclose(
        silhouette_samples(X, labels), sk.silhouette_samples(X, labels), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blobs_equal_to_scikit_learn(dtype):
    X, _ = make_blobs(1500, n_features=6, centers=5, cluster_std=2.0, random_state=1)
    X = X.astype(dtype)
    labels = KMeans(5, random_state=0, n_init=1).fit(X).labels_
    # scikit-learn sums float32 distances in float32; fastkm in float64,
    # and gives float32 for float32 X, as scikit-learn does.
    tol = 1e-10 if dtype == np.float64 else 1e-5
    ours, theirs = silhouette_samples(X, labels), sk.silhouette_samples(X, labels)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, atol=tol)
    assert silhouette_score(X, labels) == pytest.approx(sk.silhouette_score(X, labels), rel=tol)


def test_sample_size_draws_as_scikit_learn():
    X, labels = _digits()
    for seed in (0, 3):
        ours = silhouette_score(X, labels, sample_size=300, random_state=seed)
        theirs = sk.silhouette_score(X, labels, sample_size=300, random_state=seed)
        assert ours == pytest.approx(theirs, rel=1e-12)
    assert silhouette_score(X, labels, sample_size=300, random_state=0) != silhouette_score(
        X, labels, sample_size=300, random_state=1
    )


def test_labels_of_any_kind_and_clusters_of_one():
    X, _ = make_blobs(60, n_features=2, centers=3, random_state=2)
    names = np.array(["a", "b", "c"], dtype=object)[np.arange(60) % 3]
    names[0] = "alone"
    ours = silhouette_samples(X, names)
    np.testing.assert_allclose(ours, sk.silhouette_samples(X, names), atol=1e-12)
    assert ours[0] == 0.0  # a sample alone in its cluster, as scikit-learn


def test_other_metrics_and_sparse_go_to_scikit_learn():
    X, labels = _digits()
    X, labels = X[:400], labels[:400]
    assert silhouette_score(X, labels, metric="manhattan") == sk.silhouette_score(
        X, labels, metric="manhattan"
    )
    sparse = sp.csr_matrix(X)
    assert silhouette_score(sparse, labels) == pytest.approx(sk.silhouette_score(sparse, labels), rel=1e-12)
    distances = sk.pairwise_distances(X)
    assert silhouette_score(distances, labels, metric="precomputed") == sk.silhouette_score(
        distances, labels, metric="precomputed"
    )


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros(50), "Number of labels is 1. Valid values are 2 to n_samples - 1"),
        (np.arange(50), "Number of labels is 50. Valid values are 2 to n_samples - 1"),
        (np.arange(49) % 2, "inconsistent numbers of samples"),
    ],
)
def test_bad_labels_raise_scikit_learns_error(labels, message):
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match=message):
        silhouette_score(X, labels)


def test_nan_and_bad_parameters():
    X = np.random.default_rng(0).normal(size=(50, 3))
    labels = np.arange(50) % 2
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        silhouette_samples(X, labels)
    with pytest.raises(ValueError, match="sample_size"):
        silhouette_score(X, labels, sample_size=0)
    with pytest.raises(ValueError, match="metric"):
        silhouette_score(X, labels, metric="no-such-metric")


_HASH = """
import hashlib, numpy as np
from sklearn.datasets import make_blobs
from fastkm.metrics import silhouette_samples
from fastkm.metrics._silhouette import silhouette_scores
from fastkm._kernels import silhouette as kernels
X, _ = make_blobs(1100, n_features={d}, centers=6, random_state=0)
many = np.array(silhouette_scores(X, [np.arange(1100) % k for k in (2, 6, 9)]))
integers = silhouette_samples(np.rint(X * 4), np.arange(1100) % 6)  # the float32 kernels
one = silhouette_samples(X, np.arange(1100) % 6)  # one thread at this size (serial_sized)
kernels.SERIAL_PAIR_WORK = 0  # the threads' own sizes and blocks
shared = silhouette_samples(X, np.arange(1100) % 6)
np.testing.assert_allclose(shared, one, rtol=1e-13, atol=1e-15)
shared_integers = silhouette_samples(np.rint(X * 4), np.arange(1100) % 6)
digest = one.tobytes() + many.tobytes() + integers.tobytes() + shared.tobytes() + shared_integers.tobytes()
print(hashlib.sha256(digest).hexdigest())
"""


@pytest.mark.parametrize("n_features", [3, 10])
def test_same_bits_for_any_thread_count(n_features):
    # Real processes with 1 and 2 threads: the sums are made in one order.
    digests = []
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads, "FASTKM_COMPILE": "wait"}
        done = subprocess.run(
            [sys.executable, "-c", _HASH.format(d=n_features)], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        digests.append(done.stdout.strip())
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_same_bits_wherever_the_arrays_lie():
    # A loop vectorised behind a run-time overlap check runs scalar when two
    # arrays lie close in memory: the kernel's results must not depend on
    # which ran (compiled without reassociation; see _jit.ORDERED). Where the
    # kernel's own buffers land varies from run to run, so the processes of
    # test_same_bits_for_any_thread_count check it too.
    from fastkm._kernels import silhouette as kernels

    X, _ = make_blobs(1100, n_features=3, centers=6, random_state=0)
    labels = np.sort(np.arange(1100) % 6).astype(np.int64)
    n = len(X)
    results = set()
    for shift in range(8):
        for out_shift in range(3):
            flat = np.zeros(4 * n + 8)
            XT = flat[shift : shift + 4 * n].reshape(4, n)
            XT[:3] = X.T
            out = np.zeros(6 * n + 8)[out_shift : out_shift + 6 * n].reshape(n, 6)
            block = kernels.block_rows(n, 4)
            kernels.cluster_distance_sums(
                XT, np.empty(0), np.empty(0), labels, block, out, 0, kernels.n_rounds(n, block)
            )
            results.add(out.tobytes())
    assert len(results) == 1


def _blobs_and_labels(dtype=np.float64):
    X, _ = make_blobs(900, n_features=5, centers=6, random_state=3)
    return X.astype(dtype), KMeans(6, random_state=0, n_init=1).fit(X).labels_


@pytest.mark.parametrize("score", ["calinski_harabasz_score", "davies_bouldin_score"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_centroid_scores_equal_to_scikit_learn(score, dtype):
    theirs = getattr(sk, score)
    ours = calinski_harabasz_score if score == "calinski_harabasz_score" else davies_bouldin_score
    # float32: computed in float64 here; scikit-learn's Davies-Bouldin keeps float32 in places.
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    X, labels = _blobs_and_labels(dtype)
    assert ours(X, labels) == pytest.approx(theirs(X, labels), rel=rtol)
    digits = load_digits().data
    for k in (2, 10):
        labels = KMeans(k, random_state=0, n_init=1).fit(digits).labels_
        assert ours(digits, labels) == pytest.approx(theirs(digits, labels), rel=1e-12)
    # Labels of any values, clusters of one sample, a list X.
    labels = np.array(["b", "a", "a", "c", "c", "c"])
    small = [[0.0, 1.0], [1.0, 1.0], [1.0, 2.0], [5.0, 5.0], [6.0, 5.0], [5.0, 7.0]]
    assert ours(small, labels) == pytest.approx(theirs(small, labels), rel=1e-12)


def test_centroid_scores_plain_numpy():
    # The definitions, written out, on clusters of unequal sizes.
    X, labels = _blobs_and_labels()
    centroids = np.array([X[labels == c].mean(axis=0) for c in range(6)])
    sizes = np.bincount(labels)
    between = (sizes * ((centroids - X.mean(axis=0)) ** 2).sum(axis=1)).sum()
    within = sum(((X[labels == c] - centroids[c]) ** 2).sum() for c in range(6))
    assert calinski_harabasz_score(X, labels) == pytest.approx(between * (900 - 6) / (within * 5), rel=1e-12)
    spread = np.array([np.linalg.norm(X[labels == c] - centroids[c], axis=1).mean() for c in range(6)])
    apart = np.linalg.norm(centroids[:, None] - centroids[None], axis=2)
    ratios = (spread[:, None] + spread[None]) / np.where(apart == 0, np.inf, apart)
    assert davies_bouldin_score(X, labels) == pytest.approx(ratios.max(axis=1).mean(), rel=1e-12)


def test_centroid_scores_degenerate_clusters_and_bad_input():
    # Every cluster a single repeated point: scikit-learn's 1.0 and 0.0.
    X = np.repeat([[0.0, 0.0], [3.0, 4.0]], 5, axis=0)
    labels = np.repeat([0, 1], 5)
    assert calinski_harabasz_score(X, labels) == sk.calinski_harabasz_score(X, labels) == 1.0
    assert davies_bouldin_score(X, labels) == sk.davies_bouldin_score(X, labels) == 0.0
    for score in (calinski_harabasz_score, davies_bouldin_score):
        with pytest.raises(ValueError, match="Number of labels is 1"):
            score(X, np.zeros(10))
        with pytest.raises(ValueError, match="Number of labels is 10"):
            score(X, np.arange(10))
        bad = X.copy()
        bad[2, 0] = np.nan
        with pytest.raises(ValueError, match="Input X contains NaN"):
            score(bad, labels)


def test_exact_in_float32():
    rng = np.random.default_rng(0)
    digits = load_digits().data
    assert _silhouette.exact_in_float32(digits)
    assert _silhouette.exact_in_float32(rng.integers(0, 256, (500, 3)).astype(np.float64))  # pixels
    assert not _silhouette.exact_in_float32(digits + 0.5)
    assert not _silhouette.exact_in_float32(np.full((4, 3), 2.0**25))  # values float32 cannot hold
    wide = np.zeros((2, 300))
    wide[1] = 300.0  # 300 * 300**2 > 2**24: a sum float32 would round
    assert not _silhouette.exact_in_float32(wide)
    assert not _silhouette.exact_in_float32(np.zeros((0, 3)))
    assert _silhouette.exact_in_float32(np.array([[-8.0, 3.0], [7.0, -2.0]]))  # negative integers
    edge = np.array([[2.0**24], [2.0**24 - 1]])  # at float32's last exact integer
    assert _silhouette.exact_in_float32(edge) and not _silhouette.exact_in_float32(edge + 1)


@pytest.mark.parametrize("n_features", [3, 64])
def test_float32_kernels_give_the_float64_bits_on_integer_data(n_features):
    # Integer data within float32's exact range: every squared distance is the
    # same integer whichever way it is computed (differences or expansion,
    # float32 or float64), so the sums are the same bits.
    rng = np.random.default_rng(n_features)
    X = rng.integers(-3, 14, (1100, n_features)).astype(np.float64)
    labels = rng.integers(0, 6, 1100)
    form = _silhouette._kernel_form(X)
    assert form.dtype == np.float32 and np.array_equal(form.low, X.min(axis=0))
    expected = _silhouette.cluster_distance_sums(X, labels, 6, DIFFERENCES)
    np.testing.assert_allclose(expected, reference.cluster_distance_sums(X, labels, 6), rtol=1e-13)
    assert form.squares <= _silhouette.ROOTS_TABLE  # the square roots looked up
    for dtype in (np.float32, np.float64):
        for shift in (None, form.low):
            for squares in (None, form.squares):
                each = _silhouette.KernelForm(np.dtype(dtype), shift, squares)
                found = _silhouette.cluster_distance_sums(X, labels, 6, each)
                np.testing.assert_array_equal(found, expected)
    # Many blocks (18 of 64 rows), the circle method's rounds.
    by_blocks = _silhouette.cluster_distance_sums(X, labels, 6, DIFFERENCES, block=64)
    np.testing.assert_array_equal(_silhouette.cluster_distance_sums(X, labels, 6, form, block=64), by_blocks)
    # The sweep's kernel, with the same forms.
    labellings = [labels, rng.integers(0, 3, 1100)]
    for squares in (None, form.squares):
        each = _silhouette.KernelForm(np.dtype(np.float32), form.low, squares)
        assert _silhouette.silhouette_scores(X, labellings, each) == _silhouette.silhouette_scores(
            X, labellings, DIFFERENCES
        )


def test_square_roots_looked_up_only_for_few_integers():
    assert len(_silhouette._roots(16_384)) == 16_385
    assert len(_silhouette._roots(_silhouette.ROOTS_TABLE + 1)) == 0
    np.testing.assert_array_equal(_silhouette._roots(100), np.sqrt(np.arange(101.0)))
    wide = np.zeros((3, 30))
    wide[1] = 60.0  # squared spans 108,000: exact, the roots taken
    form = _silhouette._kernel_form(wide)
    assert form.squares == 108_000 and len(_silhouette._feature_major(wide, None, form)[2]) == 0


def test_expansion_only_where_it_is_exact():
    # Summed squared spans past 2**23: |x|^2 + |y|^2 would pass 2**24.
    wide = np.zeros((3, 200))
    wide[1] = 205.0  # 200 * 205**2 = 8,405,000 > 2**23
    form = _silhouette._kernel_form(wide)
    assert form.dtype == np.float32 and form.low is None
    wide[1] = 204.0  # 8,323,200 <= 2**23
    assert _silhouette._kernel_form(wide).low is not None
    assert _silhouette._kernel_form(wide + 0.5).low is None
    # At the limit, against differences in float64 and against numpy.
    rng = np.random.default_rng(5)
    X = rng.integers(0, 205, (300, 200)).astype(np.float64)
    X[0], X[1] = 0.0, 204.0
    labels = rng.integers(0, 4, 300)
    form = _silhouette._kernel_form(X)
    assert form.low is not None
    found = _silhouette.cluster_distance_sums(X, labels, 4, form)
    expected = _silhouette.cluster_distance_sums(X, labels, 4, DIFFERENCES)
    np.testing.assert_array_equal(found, expected)
