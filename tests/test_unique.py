"""Duplicate rows: the distinct-row table, and fits that run on distinct rows only."""

import warnings

import numpy as np
import pytest
import sklearn.cluster

from fastkm import KMeans, datasets
from fastkm._kernels import unique
from fastkm._solvers import distinct as dedup
from fastkm._solvers import exact


def _distinct(X):
    bits = X.view(np.uint64 if X.dtype == np.float64 else np.uint32)
    distinct = np.empty_like(bits)
    inverse = np.empty(len(X), dtype=np.int64)
    n = unique.distinct_rows(bits, distinct, inverse)
    # Row indices of the first occurrences, from the inverse.
    first = np.full(n, len(X))
    np.minimum.at(first, inverse, np.arange(len(X)))
    np.testing.assert_array_equal(distinct[:n], bits[first])
    return first, inverse


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_features", [1, 3, 8])
def test_distinct_rows_matches_numpy(dtype, n_features):
    rng = np.random.default_rng(n_features)
    X = rng.integers(0, 3, size=(3000, n_features)).astype(dtype) / 7
    first, inverse = _distinct(X)
    values, np_first, np_inverse = np.unique(X, axis=0, return_index=True, return_inverse=True)
    assert len(first) == len(values)
    # First occurrences, in row order: numpy's first indices, sorted.
    np.testing.assert_array_equal(first, np.sort(np_first))
    np.testing.assert_array_equal(X[first][inverse], X)
    # Same partition of the rows as numpy's.
    mapping = np.full(len(values), -1)
    mapping[inverse] = np_inverse.ravel()
    np.testing.assert_array_equal(mapping[inverse], np_inverse.ravel())


def test_distinct_rows_edges():
    first, inverse = _distinct(np.zeros((5, 2)))
    np.testing.assert_array_equal(first, [0])
    np.testing.assert_array_equal(inverse, np.zeros(5))
    X = np.arange(12.0).reshape(6, 2)
    first, inverse = _distinct(X)
    np.testing.assert_array_equal(first, np.arange(6))
    np.testing.assert_array_equal(inverse, np.arange(6))
    # Bits, not values: -0.0 and 0.0 stay apart (a missed merge, never a wrong one).
    first, _ = _distinct(np.array([[0.0], [-0.0], [0.0]]))
    np.testing.assert_array_equal(first, [0, 1])


def test_merged_weights():
    inverse = np.array([0, 1, 0, 2, 1, 0])
    weights = np.array([1.0, 2.0, 0.5, 4.0, 0.25, 3.0], dtype=np.float32)
    out = np.empty(3, dtype=np.float32)
    unique.merged_weights(inverse, weights, out)
    np.testing.assert_array_equal(out, [4.5, 2.25, 4.0])


def test_merged_weights_sum_in_float64():
    inverse = np.zeros(1_000_000, dtype=np.int64)
    weights = np.full(1_000_000, 0.1, dtype=np.float32)
    out = np.empty(1, dtype=np.float32)
    unique.merged_weights(inverse, weights, out)
    assert out[0] == np.float32(weights.astype(np.float64).sum())


def test_distinct_rows_only_when_it_pays():
    rng = np.random.default_rng(0)
    n = dedup._DUPLICATES_MIN_ROWS
    w = np.ones(2 * n)
    assert dedup.distinct_rows(rng.normal(size=(2 * n, 3)), w) is None
    assert dedup.distinct_rows(rng.integers(0, 8, size=(n - 1, 3)).astype(float), w[: n - 1]) is None
    X = rng.integers(0, 8, size=(2 * n, 3)).astype(float)
    distinct = dedup.distinct_rows(X, w)
    assert len(distinct.X) == 512
    np.testing.assert_array_equal(distinct.X[distinct.inverse], X)
    assert distinct.sample_weight.sum() == 2 * n


def _repeated(rng, n_distinct, n, d, dtype):
    """n rows drawn from n_distinct points, with uneven counts."""
    points = rng.normal(size=(n_distinct, d))
    counts = rng.zipf(1.5, size=n) % n_distinct
    return points[counts].astype(dtype)


@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly", "elkan", "yinyang"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_on_distinct_rows_gives_the_same_iterates(algorithm, dtype):
    rng = np.random.default_rng(3)
    for case in range(6):
        d, k = int(rng.choice([1, 3, 5])), int(rng.integers(2, 40))
        X = _repeated(rng, int(rng.integers(k, 300)), 2000, d, dtype)
        X -= X.mean(axis=0)
        w = (rng.choice([0.5, 1.0, 3.0], len(X)) if case % 2 else np.ones(len(X))).astype(dtype)
        init = X[rng.choice(len(X), k, replace=False)] + rng.normal(size=(k, d)).astype(dtype) * (case % 3)
        full = exact.lloyd_single(X, w, init, algorithm=algorithm, tol=0)
        distinct = dedup.DistinctRows(*_merged(X, w))
        collapsed = exact.lloyd_single(X, w, init, algorithm=algorithm, tol=0, distinct=distinct)
        np.testing.assert_array_equal(full[0], collapsed[0])
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(full[2], collapsed[2], rtol=rtol, atol=rtol)
        assert full[1] == pytest.approx(collapsed[1], rel=rtol)
        assert full[3] == collapsed[3]


def _merged(X, w):
    first, inverse = _distinct(X)
    weights = np.empty(len(first), dtype=w.dtype)
    unique.merged_weights(inverse, w, weights)
    return X[first], weights, inverse


@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly", "yinyang"])
def test_relocation_sees_every_row(monkeypatch, algorithm):
    """Empty clusters take scikit-learn's farthest *rows*, one row's weight each.

    The farthest point is repeated with different weights: relocating its
    merged row (all its weight) instead would move different centres.
    """
    monkeypatch.setattr(dedup, "_DUPLICATES_MIN_ROWS", 64)
    monkeypatch.setattr(dedup, "_DUPLICATES_SAMPLE", 64)
    rng = np.random.default_rng(5)
    X = _repeated(rng, 30, 3000, 2, np.float64)
    X[:40] = [25.0, -25.0]  # far away, many copies
    w = rng.choice([0.5, 1.0, 4.0], len(X))
    init = np.vstack([X[40:46], [[1e3, 1e3], [-1e3, 1e3], [1e3, -1e3]]])  # three empty clusters
    ours = KMeans(9, init=init, n_init=1, algorithm=algorithm).fit(X, sample_weight=w)
    theirs = sklearn.cluster.KMeans(9, init=init, n_init=1).fit(X, sample_weight=w)
    assert dedup.distinct_rows(X - X.mean(axis=0), w) is not None
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10, atol=1e-12)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-12)
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("k", [16, 200])
def test_china_fit_matches_scikit_learn(k):
    """china.jpg is mostly repeated colours: the fit runs on its 96,615 distinct ones."""
    X = datasets.china()
    assert len(dedup.distinct_rows(X, np.ones(len(X))).X) == 96_615
    init = X[np.random.default_rng(k).choice(len(X), k, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer distinct clusters than k, for both
        ours = KMeans(k, init=init, n_init=1, max_iter=30).fit(X)
        theirs = sklearn.cluster.KMeans(k, init=init, n_init=1, max_iter=30).fit(X)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10, atol=1e-12)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-10)
    assert ours.n_iter_ == theirs.n_iter_


def test_merged_rows_keep_their_own_sums_through_the_hand_over():
    # auto on float64 with more than 16 features goes from brute force to
    # Hamerly after one iteration; on merged distinct rows (at most 512 of
    # them) both steps must keep fastkm's own sums, as every algorithm does:
    # the same bits as Lloyd's.
    rng = np.random.default_rng(7)
    X = np.repeat(rng.normal(size=(512, 20)) * 3, 32, axis=0)
    w = np.ones(len(X))
    assert len(dedup.distinct_rows(X - X.mean(axis=0), w).X) == 512
    assert exact.choose_algorithm(512, 20, 32) == "hamerly" and exact.handover_share(20) == 1.0
    init = X[rng.choice(len(X), 32, replace=False)]
    fits = [KMeans(32, init=init, n_init=1, algorithm=a).fit(X) for a in ("lloyd", "hamerly", "auto")]
    for fit in fits[1:]:
        np.testing.assert_array_equal(fit.labels_, fits[0].labels_)
        np.testing.assert_array_equal(fit.cluster_centers_, fits[0].cluster_centers_)
        assert fit.n_iter_ == fits[0].n_iter_
