"""MiniBatchKMeans against a plain numpy step and against scikit-learn."""

import platform
import re
import warnings

import numpy as np
import pytest
import sklearn.cluster as skc
from sklearn.exceptions import NotFittedError

from fastkm import MiniBatchKMeans, _solvers
from fastkm._solvers import minibatch as minibatch_solver

from . import reference
from .helpers import error_of


def _both(X, sample_weight=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = MiniBatchKMeans(**params).fit(X, sample_weight=sample_weight)
        theirs = skc.MiniBatchKMeans(**params).fit(X, sample_weight=sample_weight)
    return ours, theirs


def _assert_same_fit(ours, theirs, rtol=1e-12):
    # Same draws, same steps: the same trajectory up to floating-point ties.
    assert ours.n_steps_ == theirs.n_steps_
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=rtol, atol=1e-12)
    assert ours.cluster_centers_.dtype == theirs.cluster_centers_.dtype
    # scikit-learn sums float32 inertia in float32; fastkm sums in float64.
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=max(rtol, 1e-9))
    if hasattr(theirs, "labels_"):
        np.testing.assert_array_equal(ours.labels_, theirs.labels_)


# --- one step against numpy ----------------------------------------------------


@pytest.mark.parametrize("reassign", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_step_matches_numpy_reference(rng, reassign, dtype):
    X = rng.normal(size=(300, 5)).astype(dtype)
    w = rng.uniform(0.5, 2.0, size=300).astype(dtype)
    centers = X[:6].copy()
    centers[5] += 50  # far away: it gets no points, and with no count it is reassigned
    counts = rng.uniform(10, 20, size=6).astype(dtype)
    counts[5] = 0
    expected_centers, expected_counts, _ = reference.minibatch_step(
        X, w, centers, counts, np.random.RandomState(3), reassign
    )
    state = np.random.RandomState(3)
    _solvers.minibatch_partial_step(X, w, centers, counts, state, reassign, 0.01, verbose=False)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(centers, expected_centers, rtol=tol, atol=tol)
    np.testing.assert_allclose(counts, expected_counts, rtol=tol)
    if reassign:
        assert np.any(np.all(X == centers[5], axis=1))
    # The random state is left where numpy's own draws leave it.
    reference_state = np.random.RandomState(3)
    if reassign:
        reference_state.choice(300, size=1, replace=False)
    assert state.randint(1 << 30) == reference_state.randint(1 << 30)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_starved_centres_match_numpy(rng, dtype):
    from fastkm._kernels import minibatch

    for counts in (rng.uniform(0, 50, 40), np.r_[7.0], np.r_[3.0, 9.0, 9.0, 0.0], rng.normal(size=12)):
        counts = counts.astype(dtype)
        for ratio in (0.01, 0.5, 0.9):
            marks = np.empty(len(counts), dtype=bool)
            n_starved, capped = minibatch.starved_centres(counts, ratio, 10, marks)
            expected = counts < ratio * counts.max()  # scikit-learn's _mini_batch_step
            np.testing.assert_array_equal(marks, expected)
            assert (n_starved, capped) == (expected.sum(), expected.sum() > 5)


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="the kernel follows numpy's einsum at its x86-64 baseline (elsewhere numpy fuses the products)",
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_centre_norms_are_numpy_einsum_bits(rng, dtype):
    # scikit-learn labels a batch (and a small Lloyd fit's rows) with
    # row_norms (np.einsum) of the centres: a row whose two best scores differ
    # in the last bit depends on them.
    from fastkm._kernels import stats

    for n_features in [*range(1, 40), 64, 67, 100]:
        scale = 10.0 ** rng.uniform(-3, 3, size=(30, 1))
        centers = (rng.normal(size=(30, n_features)) * scale).astype(dtype)
        np.testing.assert_array_equal(
            stats.centre_squared_norms(centers), np.einsum("ij,ij->i", centers, centers)
        )


def test_sampling_follows_numpy_choice(rng):
    from fastkm._kernels.minibatch import sample_rows

    for w in (np.ones(1000), rng.uniform(0, 1, 1000) ** 4, np.r_[np.zeros(500), np.ones(500)]):
        p = w / w.sum()
        state = np.random.RandomState(7)
        expected = state.choice(1000, 4096, p=p)
        rng_state, _ = minibatch_solver._mt19937_state(np.random.RandomState(7))
        cdf = p.cumsum()
        cdf /= cdf[-1]
        ours = np.empty(4096, dtype=np.int64)
        sample_rows(rng_state, cdf, ours)
        np.testing.assert_array_equal(ours, expected)


def test_mt19937_follows_randomstate():
    from fastkm._kernels import mt19937

    state = np.random.RandomState(12345)
    rng, _ = minibatch_solver._mt19937_state(state)
    np.testing.assert_array_equal([mt19937.next_double(rng) for _ in range(1500)], state.random_sample(1500))
    perm = np.empty(777, dtype=np.int64)
    mt19937.permutation(rng, perm)
    np.testing.assert_array_equal(perm, state.permutation(777))
    np.testing.assert_array_equal(rng[:624], state.get_state()[1])


# --- whole fits against scikit-learn --------------------------------------------


@pytest.mark.parametrize("k", [3, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_matches_sklearn_digits(digits, k, seed):
    _assert_same_fit(*_both(digits, n_clusters=k, random_state=seed))


@pytest.mark.parametrize("k", [16, 64])
def test_fit_matches_sklearn_china(china, k):
    X = china[::4]
    _assert_same_fit(*_both(X, n_clusters=k, random_state=0, batch_size=512))


@pytest.mark.parametrize(
    "params",
    [
        {"init": "random"},
        {"init": "random", "n_init": 2, "init_size": 100},
        {"tol": 1e-3},
        {"max_no_improvement": None, "max_iter": 3},
        {"max_no_improvement": 1},
        {"compute_labels": False},
        {"reassignment_ratio": 0.3},
        {"reassignment_ratio": 0.0},
        {"batch_size": 100, "init_size": 7},
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_options_match_sklearn(blobs, params, dtype):
    X = np.vstack([blobs, blobs * 3 + 1]).astype(dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    _assert_same_fit(*_both(X, n_clusters=5, random_state=0, **params), rtol=rtol)


def test_fit_with_weights_array_and_callable_init_matches_sklearn(digits):
    w = np.random.default_rng(0).uniform(0, 2, len(digits))
    _assert_same_fit(*_both(digits, sample_weight=w, n_clusters=8, random_state=0))
    init = digits[:8] + 0.5
    _assert_same_fit(*_both(digits, n_clusters=8, init=init, random_state=0))

    def init_fn(X, k, random_state):
        return X[random_state.choice(len(X), k, replace=False)]

    _assert_same_fit(*_both(digits, n_clusters=8, init=init_fn, random_state=0))


def test_random_state_instance_is_consumed_as_sklearn(digits):
    ours_state, theirs_state = np.random.RandomState(5), np.random.RandomState(5)
    MiniBatchKMeans(6, random_state=ours_state).fit(digits)
    skc.MiniBatchKMeans(6, random_state=theirs_state).fit(digits)
    assert ours_state.randint(1 << 30) == theirs_state.randint(1 << 30)


def test_early_stopping_and_full_run(blobs):
    X = np.vstack([blobs] * 20)
    n_steps = (100 * len(X)) // 256
    full = MiniBatchKMeans(4, random_state=0, batch_size=256, max_no_improvement=None).fit(X)
    assert full.n_steps_ == n_steps
    early = MiniBatchKMeans(4, random_state=0, batch_size=256, max_no_improvement=2).fit(X)
    assert early.n_steps_ < n_steps
    by_tol = MiniBatchKMeans(4, random_state=0, batch_size=256, max_no_improvement=None, tol=1e-2).fit(X)
    assert by_tol.n_steps_ < n_steps
    assert early.inertia_ == pytest.approx(full.inertia_, rel=0.05)


def test_verbose_output_matches_sklearn(blobs, capsys):
    params = {"n_clusters": 3, "random_state": 0, "verbose": 1, "batch_size": 50, "max_no_improvement": 3}
    MiniBatchKMeans(**params).fit(blobs)
    ours = capsys.readouterr().out
    skc.MiniBatchKMeans(**params).fit(blobs)
    theirs = capsys.readouterr().out
    assert "Converged" in theirs
    # The same lines; the numbers in them up to the last digits of float sums.
    number = re.compile(r"-?\d+\.\d+(?:e[-+]\d+)?|\d{6,}")
    assert number.sub("#", ours) == number.sub("#", theirs)
    np.testing.assert_allclose(
        [float(x) for x in number.findall(ours)], [float(x) for x in number.findall(theirs)], rtol=1e-9
    )


# --- partial_fit ----------------------------------------------------------------


def test_partial_fit_matches_sklearn(china):
    X = china[:20000]
    ours, theirs = MiniBatchKMeans(16, random_state=0), skc.MiniBatchKMeans(16, random_state=0)
    for chunk in np.array_split(X, 10):
        ours.partial_fit(chunk)
        theirs.partial_fit(chunk)
        np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-12)
        np.testing.assert_array_equal(ours.labels_, theirs.labels_)
        assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-12)
    assert ours.n_steps_ == theirs.n_steps_ == 10


def test_streaming_matches_quality_of_fit(china):
    X = china[::2]
    shuffled = X[np.random.default_rng(0).permutation(len(X))]
    streamed = MiniBatchKMeans(16, random_state=0)
    for _ in range(3):
        for chunk in np.array_split(shuffled, 60):
            streamed.partial_fit(chunk)
    fitted = MiniBatchKMeans(16, random_state=0).fit(X)
    streamed_inertia = -streamed.score(X)
    assert streamed_inertia <= 1.05 * fitted.inertia_


def test_partial_fit_with_raw_weights(digits):
    w = np.random.default_rng(1).uniform(0, 3, len(digits))
    ours = MiniBatchKMeans(5, random_state=0).partial_fit(digits, sample_weight=w)
    theirs = skc.MiniBatchKMeans(5, random_state=0).partial_fit(digits, sample_weight=w)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(ours._counts, theirs._counts, rtol=1e-12)


# --- errors ---------------------------------------------------------------------

X_OK = np.random.default_rng(0).normal(size=(40, 3))


def _nan():
    X = X_OK.copy()
    X[3, 1] = np.nan
    return X


BAD = {
    "nan": (_nan, {}),
    "empty": (lambda: np.empty((0, 3)), {}),
    "1-d": (lambda: X_OK[:, 0], {}),
    "k > n": (lambda: X_OK[:3], {}),
    "complex": (lambda: X_OK + 1j, {}),
    "bad init shape": (lambda: X_OK, {"init": X_OK[:2]}),
    "batch_size 0": (lambda: X_OK, {"batch_size": 0}),
    "negative ratio": (lambda: X_OK, {"reassignment_ratio": -1.0}),
    "init_size 0": (lambda: X_OK, {"init_size": 0}),
    "max_no_improvement -1": (lambda: X_OK, {"max_no_improvement": -1}),
    "all reassigned": (lambda: X_OK, {"reassignment_ratio": 5.0}),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_errors_match_sklearn(case, method):
    make_X, params = BAD[case]

    def call(cls):
        return lambda: getattr(cls(4, random_state=0, **params), method)(make_X())

    ours, theirs = error_of(call(MiniBatchKMeans)), error_of(call(skc.MiniBatchKMeans))
    if case != "all reassigned" or method == "fit":
        assert theirs[0] is not None
    assert ours == theirs


def test_small_init_size_warns_as_sklearn():
    for cls in (MiniBatchKMeans, skc.MiniBatchKMeans):
        with pytest.warns(RuntimeWarning, match="init_size=2 should be larger than n_clusters=4"):
            cls(4, init_size=2, random_state=0).fit(X_OK)


def test_predict_before_fit_and_wrong_width():
    with pytest.raises(NotFittedError):
        MiniBatchKMeans(2).predict(X_OK)
    ours = MiniBatchKMeans(2, random_state=0).fit(X_OK)
    theirs = skc.MiniBatchKMeans(2, random_state=0).fit(X_OK)
    narrow = X_OK[:, :2]
    for method in ("predict", "partial_fit", "transform", "score"):
        assert error_of(getattr(ours, method), narrow) == error_of(getattr(theirs, method), narrow)


def test_inputs_never_mutated(digits):
    X = digits.copy()
    w = np.linspace(0.5, 2, len(X))
    init = X[:5].copy()
    MiniBatchKMeans(5, init=init, random_state=0).fit(X, sample_weight=w)
    MiniBatchKMeans(5, random_state=0).partial_fit(X, sample_weight=w)
    np.testing.assert_array_equal(X, digits)
    np.testing.assert_array_equal(w, np.linspace(0.5, 2, len(X)))
    np.testing.assert_array_equal(init, digits[:5])


def test_failed_fit_leaves_estimator_unfitted():
    for cls in (MiniBatchKMeans, skc.MiniBatchKMeans):
        model = cls(3, random_state=0)
        with pytest.raises(ValueError, match="NaN"):
            model.fit(_nan())
        with pytest.raises(NotFittedError):
            model.predict(X_OK)


def test_negative_weights_in_partial_fit_as_sklearn():
    # A centre whose batch weight is not positive stays where it is.
    X = np.array([[0.0, 0], [1, 1], [10, 10], [11, 11]])
    init = np.array([[0.0, 0], [10, 10]])
    for weights in ([-1.0, -1, 1, 1], [-1.0, -2, -1, -3]):
        models = [cls(2, init=init, reassignment_ratio=0) for cls in (MiniBatchKMeans, skc.MiniBatchKMeans)]
        for _ in range(2):
            for model in models:
                model.partial_fit(X, sample_weight=weights)
            ours, theirs = models
            np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-12)
            np.testing.assert_allclose(ours._counts, theirs._counts, rtol=1e-12)
            assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-12)


@pytest.mark.parametrize("bad", [-0.5, np.nan])
def test_fit_checks_sampling_weights_as_numpy(bad):
    X = np.random.default_rng(0).random((100, 2))
    w = np.ones(100)
    w[0] = bad

    def fit(cls):
        return lambda: cls(2, init=X[:2], random_state=0).fit(X, sample_weight=w)

    ours, theirs = error_of(fit(MiniBatchKMeans)), error_of(fit(skc.MiniBatchKMeans))
    assert theirs[0] is ValueError
    assert ours == theirs


def test_all_reassigned_fails_as_sklearn(capsys):
    states = {}
    for cls in (MiniBatchKMeans, skc.MiniBatchKMeans):
        state = np.random.RandomState(0)
        with pytest.raises(ValueError, match="zero-size array"):
            cls(4, random_state=state, reassignment_ratio=5.0, verbose=1).fit(X_OK)
        states[cls] = (capsys.readouterr().out.splitlines()[-1], state.randint(1 << 30))
    assert states[MiniBatchKMeans] == states[skc.MiniBatchKMeans]
    assert "Reassigning" in states[MiniBatchKMeans][0]


def test_capped_reassignment_matches_sklearn():
    # More than half a batch of starved centres: which stay is numpy's argsort's call.
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(2000, 5, centers=6, random_state=0)
    for params in ({"n_clusters": 40, "batch_size": 20}, {"n_clusters": 200, "batch_size": 50}):
        _assert_same_fit(*_both(X, random_state=0, **params))
        ours, theirs = (cls(random_state=0, **params) for cls in (MiniBatchKMeans, skc.MiniBatchKMeans))
        for chunk in np.array_split(X, 8):
            ours.partial_fit(chunk)
            theirs.partial_fit(chunk)
        np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-12)
