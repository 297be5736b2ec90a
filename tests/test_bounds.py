"""Bound-based iterations (Hamerly, Elkan, Yinyang): valid bounds and Lloyd's iterates, bit for bit."""

from unittest import mock

import numpy as np
import pytest
import sklearn.cluster

from fastkm import _solvers, datasets
from fastkm._kernels import bounds, elkan, yinyang
from fastkm._kernels.tiles import new_scores, new_tile, padded_centers, squared_norms, tile_top2
from fastkm._solvers import exact, layout, steps

from . import reference


def test_half_separations():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(9, 3))
    out = np.empty(9)
    bounds.half_separations(centers, out)
    d = np.sqrt(reference.squared_distances(centers, centers))
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(out, d.min(axis=1) / 2, rtol=1e-14)
    single = np.empty(1)
    bounds.half_separations(centers[:1], single)
    assert single[0] == np.inf


def test_center_shifts_never_short():
    rng = np.random.default_rng(1)
    old = rng.normal(size=(6, 4))
    new = old + rng.normal(size=(6, 4)) * np.arange(6)[:, None]
    expected = np.sqrt(((new - old) ** 2).sum(axis=1))
    out = np.empty(6)
    largest = bounds.center_shifts(old, new, out)
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    assert np.all(out >= expected)
    assert largest == out.max()


def test_row_key_edges():
    assert bounds.row_key(0.0, 0.0, 0.3, 0.0) == -np.inf
    assert bounds.row_key(0.0, np.inf, 0.3, 1e-9) == np.inf
    # b has lost at most half when the key stops deciding: the cap.
    assert bounds.row_key(0.0, 1.0, 0.3, 0.0) == pytest.approx(0.8)
    # 2 E / b of margin.
    assert bounds.row_key(0.5, 1.0, 0.3, 0.1) == pytest.approx(0.5 - 0.2 + 0.3)


def test_row_key_keeps_the_gap_above_the_margin():
    """While the drifts grow by less than key - T, b_now^2 - u_now^2 > E."""
    rng = np.random.default_rng(7)
    for _ in range(20_000):
        b = rng.uniform(1e-3, 2.0)
        u = b * rng.uniform(0, 1)
        margin = b * b * 10 ** rng.uniform(-6, 0)
        drift = rng.uniform(0, 2)
        room = bounds.row_key(u, b, drift, margin) - drift
        if not room > 0:
            continue
        spent = room * rng.uniform(0, 1)
        share = rng.uniform(0, 1)  # how much of the drift moved the lower bound
        b_now, u_now = b - share * spent, u + (1 - share) * spent
        assert b_now * b_now - u_now * u_now > margin


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bounds_with_rounding_at_stake(dtype):
    """Data far from the origin, inits far from the data: large scores, many relocations;
    the rounding margins decide which rows are skipped (float64: also the float32
    scores' margins of the bounds auto's brute-force pass sets)."""
    rng = np.random.default_rng(11)
    for case in range(120):
        n, d = int(rng.choice([30, 300, 1000])), int(rng.choice([1, 2, 3, 5, 8, 13]))
        k = int(rng.integers(2, 30))
        if case % 2:
            base = rng.normal(size=(max(2, n // 10), d)) + 1e3 * rng.integers(0, 3, size=(max(2, n // 10), 1))
            X = base[rng.integers(0, len(base), n)]
        else:
            X = rng.normal(size=(n, d)) + 1e3 * rng.integers(0, 3, size=(n, 1))
        X = X.astype(dtype)
        init = (rng.normal(size=(k, d)) * X.std() * 3).astype(dtype)
        weights = rng.choice([0.5, 1.0, 2.0], n)
        _assert_same(_both(X, init + X.mean(axis=0), sample_weight=weights, tol=float(rng.choice([0, 1e-3]))))


@pytest.mark.parametrize("n_features", [2, 3, 4, 7, 64])
@pytest.mark.parametrize("n_clusters", [1, 2, 5, 6, 8, 11, 13])
def test_top2_matches_numpy(n_features, n_clusters):
    rng = np.random.default_rng(n_features * 100 + n_clusters)
    X = rng.integers(0, 4, size=(200, n_features)).astype(np.float64)  # many exact ties
    centers = rng.integers(0, 4, size=(n_clusters, n_features)).astype(np.float64)
    tile = new_tile(n_features, X.dtype)
    tile[:n_features, :200] = X.T
    best, second = np.empty(256), np.empty(256)
    labels = np.empty(256, dtype=np.int32)
    padded = padded_centers(centers, X.dtype)
    tile_top2(
        tile,
        200,
        n_features,
        padded,
        squared_norms(centers, X.dtype),
        new_scores(X.dtype),
        best,
        second,
        labels,
        0,
    )
    scores = (centers**2).sum(axis=1)[None, :] - 2 * X @ centers.T
    np.testing.assert_array_equal(labels[:200], scores.argmin(axis=1))
    ordered = np.sort(scores, axis=1)
    np.testing.assert_allclose(best[:200], ordered[:, 0], atol=1e-12)
    expected_second = ordered[:, 1] if n_clusters > 1 else np.full(200, np.inf)
    np.testing.assert_allclose(second[:200], expected_second, atol=1e-12)


def _both(X, init, sample_weight=None, tol=1e-4, max_iter=300):
    w = np.ones(len(X), dtype=X.dtype) if sample_weight is None else sample_weight.astype(X.dtype)
    mean = X.mean(axis=0)
    X = np.ascontiguousarray(X - mean)
    init = (init - mean).astype(X.dtype)
    runs = [
        exact.lloyd_single(X, w, init, max_iter=max_iter, tol=tol, algorithm=a)
        for a in ("lloyd", "hamerly", "elkan", "yinyang", "lloyd-then-hamerly")
    ]
    with _small_center_groups():
        runs.append(exact.lloyd_single(X, w, init, max_iter=max_iter, tol=tol, algorithm="yinyang"))
    return runs


def _small_center_groups():
    """Yinyang with groups of about 3 centres: many groups even for small k."""
    return mock.patch.object(steps, "_CENTERS_PER_GROUP", 3)


def _assert_same(runs):
    labels_a, inertia_a, centers_a, n_iter_a = runs[0]
    for labels_b, inertia_b, centers_b, n_iter_b in runs[1:]:
        np.testing.assert_array_equal(labels_a, labels_b)
        np.testing.assert_array_equal(centers_a, centers_b)
        assert n_iter_a == n_iter_b and inertia_a == inertia_b


def _china_sample(n=20_000, seed=0):
    X = datasets.china()
    return X[np.random.default_rng(seed).choice(len(X), n, replace=False)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "name, k", [("blobs", 4), ("blobs", 3), ("digits", 10), ("digits", 2), ("china", 16), ("china", 64)]
)
def test_hamerly_equals_lloyd(name, k, dtype):
    X = {"blobs": datasets.blobs, "digits": datasets.digits, "china": _china_sample}[name]().astype(dtype)
    for seed in range(3):
        init, _ = sklearn.cluster.kmeans_plusplus(X, k, random_state=seed)
        _assert_same(_both(X, init))


@pytest.mark.parametrize("tol", [0.0, 1e-4])
def test_hamerly_with_weights_and_duplicates(tol):
    rng = np.random.default_rng(3)
    base = rng.normal(size=(300, 3))
    X = np.concatenate([base, base[:100], base[:50]])  # exact duplicate points
    weights = rng.uniform(0.1, 3.0, size=len(X))
    for seed in range(4):
        init, _ = sklearn.cluster.kmeans_plusplus(X, 12, random_state=seed)
        _assert_same(_both(X, init, sample_weight=weights, tol=tol))


@pytest.mark.parametrize("n_features", [5, 20])
def test_hamerly_with_empty_clusters(n_features):
    # Two centres far from the data end up empty and are relocated. With 20
    # features, auto's brute force sets Hamerly's bounds in that very
    # iteration (its hand-over share is 1), and relocating must not spoil them.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, n_features))
    init = np.concatenate([X[:6], np.full((2, n_features), 50.0)])
    runs = _both(X, init)
    _assert_same(runs)
    assert len(np.unique(runs[0][0])) == 8


@pytest.mark.parametrize("handover", [1.0, 0.05])
@pytest.mark.parametrize("name, k", [("digits", 10), ("digits", 40), ("china", 16)])
def test_bounds_from_brute_force_stay_valid(name, k, handover):
    """auto's switch: Hamerly's bounds set by a float32-first Lloyd pass hold, then Hamerly's steps.

    With ``handover`` 1 the first iteration sets the bounds; with less, the
    first after one that changed at most that share of the labels.
    """
    X = {"digits": datasets.digits, "china": lambda: _china_sample(3000)}[name]()
    X = np.ascontiguousarray(X - X.mean(axis=0))
    n = len(X)
    centers, _ = sklearn.cluster.kmeans_plusplus(X, k, random_state=0)
    step = steps.BoundingLloydStep(X, np.ones(n), centers, handover=handover)
    for found in step.bounds[:2]:
        found[:] = np.nan  # a bound the iteration does not write fails the checks below
    new_centers = np.empty_like(centers)
    handed_over_at, changed = None, []
    for i in range(12):
        state = step.state.copy()
        changed.append(step(i == 0, centers, new_centers)[0])
        labels = step.labels
        np.testing.assert_array_equal(labels, _solvers.predict_labels(X, centers)[0])
        bounded = handed_over_at is not None or step.bounded
        if bounded:
            key, lower_key = (step.key, step.lower_key) if handed_over_at is not None else step.bounds[:2]
            dist = np.sqrt(((X[:, None, :] - centers[None]) ** 2).sum(-1))
            own = dist[np.arange(n), labels]
            others = dist.copy()
            others[np.arange(n), labels] = np.inf
            assert np.all(key - state[bounds.CENTER_DRIFT][labels] <= others.min(axis=1) - own + 1e-9)
            assert np.all(lower_key - state[bounds.SCALARS, bounds.DRIFT] <= others.min(axis=1) + 1e-9)
        if handed_over_at is None and step.bounded:
            # The float32 scores decide most rows: bounds for all but the near-ties.
            assert np.mean(np.isfinite(key)) > 0.9
            step = step.to_hamerly(centers, new_centers)
            handed_over_at = i
        centers, new_centers = new_centers, centers
    # The hand-over came after the first iteration that changed at most that share.
    few = [j for j, c in enumerate(changed[:-1]) if c <= handover * n]
    assert few, "no iteration changed few enough labels: the case does not reach the hand-over"
    assert handed_over_at == (0 if handover >= 1 else few[0] + 1)


def test_center_distances():
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(7, 3))
    out, half_sep = np.empty((7, 7)), np.empty(7)
    elkan.center_distances(centers, out, half_sep)
    expected = np.sqrt(((centers[:, None] - centers[None]) ** 2).sum(-1))
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    np.fill_diagonal(expected, np.inf)
    np.testing.assert_allclose(half_sep, expected.min(axis=1) / 2, rtol=1e-14)


@pytest.mark.parametrize("algorithm", ["hamerly", "elkan", "yinyang"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, k", [("digits", 10), ("china", 16)])
def test_bounds_stay_valid(algorithm, dtype, name, k):
    """After every step, every stored bound holds against the step's centres."""
    X = {"digits": datasets.digits, "china": lambda: _china_sample(3000)}[name]().astype(dtype)
    X = np.ascontiguousarray(X - X.mean(axis=0))
    n = len(X)
    centers, _ = sklearn.cluster.kmeans_plusplus(X, k, random_state=0)
    with _small_center_groups():
        step = steps.STEPS[algorithm](X, np.ones(n, dtype=dtype), centers)
    # X in tiles for every algorithm: Elkan's kernel takes them too.
    step.tiles = layout.tile_storage(X, step.n_groups)
    labels = step.labels
    new_centers = np.empty_like(centers)
    slack = 1e-9 if dtype == np.float64 else 1e-4
    for i in range(8):
        state = step.state.copy()
        group_drift = step.group_drift.copy() if algorithm == "yinyang" else None
        step(i == 0, centers, new_centers)
        dist = np.sqrt(((X[:, None, :].astype(np.float64) - centers[None]) ** 2).sum(-1))
        np.testing.assert_array_equal(labels, _solvers.predict_labels(X, centers)[0])
        own = dist[np.arange(n), labels]
        others = dist.copy()
        others[np.arange(n), labels] = np.inf
        gap = step.key - state[bounds.CENTER_DRIFT][labels]
        assert np.all(gap <= others.min(axis=1) - own + slack)
        if algorithm == "yinyang":
            assert len(group_drift) > 2
            for g, members in enumerate(np.split(step.order, step.offsets[1:-1])):
                lower = step.group_lower[g] - group_drift[g]
                assert np.all(lower <= others[:, members].min(axis=1) + slack)
        else:
            lower = step.lower_key - state[bounds.SCALARS, bounds.DRIFT]
            assert np.all(lower <= others.min(axis=1) + slack)
        if algorithm == "elkan":
            assert np.all(step.lower - state[bounds.OWN_DRIFT] <= dist + slack)
        centers, new_centers = new_centers, centers


def test_center_groups():
    rng = np.random.default_rng(8)
    centers = np.concatenate([rng.normal(size=(40, 3)), rng.normal(size=(40, 3)) + 20])
    np.testing.assert_array_equal(steps.center_groups(centers[:63]), np.zeros(63))  # under 2 x 32: one group
    assert steps.center_groups(centers).max() == 1
    with _small_center_groups():
        group = steps.center_groups(centers)
        np.testing.assert_array_equal(group, steps.center_groups(centers))
    assert 2 <= group.max() + 1 <= 26
    np.testing.assert_array_equal(np.unique(group), np.arange(group.max() + 1))
    # Nearby centres share groups: no group spans both clouds.
    assert not set(group[:40]) & set(group[40:])


def test_yinyang_group_drifts():
    rng = np.random.default_rng(9)
    old = rng.normal(size=(6, 3))
    new = old + rng.normal(size=(6, 3)) * np.arange(6)[:, None]
    center_group = np.array([0, 1, 0, 2, 1, 2])
    group_drift = np.array([1.0, 0.0, 2.0])
    state = bounds.new_state(6, 0.0)
    yinyang.record_drifts(old, new, state, center_group, group_drift)
    shifts = np.sqrt(((new - old) ** 2).sum(axis=1))
    expected = [1.0 + max(shifts[0], shifts[2]), max(shifts[1], shifts[4]), 2.0 + max(shifts[3], shifts[5])]
    np.testing.assert_allclose(group_drift, expected, rtol=1e-14)
    assert np.all(group_drift >= expected)
    assert state[bounds.SCALARS, bounds.DRIFT] >= shifts.max()


def test_hamerly_single_cluster_and_max_iter():
    X = datasets.digits()
    _assert_same(_both(X, X[:1]))
    init, _ = sklearn.cluster.kmeans_plusplus(X, 10, random_state=0)
    _assert_same(_both(X, init, max_iter=3))
