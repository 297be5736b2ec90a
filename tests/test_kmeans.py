"""KMeans, k_means and kmeans_plusplus against scikit-learn."""

import pickle
import re
import warnings

import numpy as np
import pytest
import sklearn.cluster as skc
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastkm
from fastkm import KMeans, k_means, kmeans_plusplus
from fastkm._solvers import exact, seeding

from .helpers import error_of


def _fit_both(X, k, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = KMeans(k, **params).fit(X)
        theirs = skc.KMeans(k, **params).fit(X)
    return ours, theirs


def _assert_same_fit(ours, theirs, atol=1e-10):
    assert np.array_equal(ours.labels_, theirs.labels_)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=0, atol=atol)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-10)


# --- parity on the seeds' datasets -----------------------------------------


@pytest.mark.parametrize("dataset, k", [("blobs", 4), ("digits", 10), ("china", 16), ("china", 64)])
def test_parity_same_init_array(request, dataset, k):
    X = request.getfixturevalue(dataset)
    init, _ = skc.kmeans_plusplus(X, k, random_state=0)
    ours, theirs = _fit_both(X, k, init=init, n_init=1)
    _assert_same_fit(ours, theirs)
    assert ours.labels_.dtype == np.int32


@pytest.mark.parametrize("dataset, k", [("blobs", 4), ("digits", 10), ("china", 64)])
def test_kmeans_plusplus_picks_sklearns_points(request, dataset, k):
    X = request.getfixturevalue(dataset)
    ours, our_idx = kmeans_plusplus(X, k, random_state=0)
    theirs, their_idx = skc.kmeans_plusplus(X, k, random_state=0)
    np.testing.assert_array_equal(our_idx, their_idx)
    np.testing.assert_array_equal(ours, theirs)


def _terms(monkeypatch, terms):
    """k-means++ keeps its candidates' terms (small X), or scores the chosen centre again (large X)."""
    from fastkm._solvers import seeding

    if terms == "scored":
        monkeypatch.setattr(seeding, "KEPT_TERMS_BUDGET", 0)


@pytest.mark.parametrize("terms", ["kept", "scored"])
@pytest.mark.parametrize("seed", [0, 3, 5])
def test_kmeans_plusplus_ranks_near_ties_as_sklearn(china, seed, terms, monkeypatch):
    # MiniBatchKMeans's init for 1024 colours: 1024 centres from 3072 pixels.
    # Candidates often tie up to the order of the potential sums (the same
    # colour, or equal distances), and scikit-learn's GEMV rounding decides.
    # Before such ties were ranked its way, each seed here took another point
    # at some step; seed 5 also needs the first centre's distances as
    # scikit-learn's GEMV rounds them. A tie stops the seeding after its
    # pass folded the last centre in: both ways of folding are run.
    _terms(monkeypatch, terms)
    sample = china[np.random.RandomState(seed).randint(0, len(china), 3072)]
    ours, _ = kmeans_plusplus(sample, 1024, random_state=seed)
    theirs, _ = skc.kmeans_plusplus(sample, 1024, random_state=seed)
    # The same points; among copies of one colour, not always the same row.
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("terms", ["kept", "scored"])
def test_kmeans_plusplus_near_ties_with_weights(digits, terms, monkeypatch):
    _terms(monkeypatch, terms)
    w = np.random.RandomState(0).randint(1, 4, len(digits)).astype(float)
    ours, _ = kmeans_plusplus(digits, 200, sample_weight=w, random_state=0)
    theirs, _ = skc.kmeans_plusplus(digits, 200, sample_weight=w, random_state=0)
    np.testing.assert_array_equal(ours, theirs)


def _float32_cases():
    r = np.random.RandomState(0)
    # Values on a 0.1 grid: candidates whose potentials tie in decimal
    # arithmetic, ranked by scikit-learn's float32 rounding.
    grid = np.round(r.randn(400, 4), 1)
    # Many rows: draws land near a row's edge of the float32 running sum.
    many = r.randn(150_000, 6) * 3 + r.randint(0, 5, (150_000, 1))
    return [(grid, None, 17), (grid, r.randint(0, 5, 400), 17), (many, r.rand(150_000), 40)]


@pytest.mark.parametrize("case", range(3))
def test_kmeans_plusplus_float32_takes_sklearns_float32_steps(case):
    X, w, k = _float32_cases()[case]
    X = X.astype(np.float32)
    for seed in range(4):
        ours, our_idx = kmeans_plusplus(X, k, sample_weight=w, random_state=seed)
        theirs, their_idx = skc.kmeans_plusplus(X, k, sample_weight=w, random_state=seed)
        np.testing.assert_array_equal(our_idx, their_idx)
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == np.float32


def test_kmeans_plusplus_float32_china(china):
    X = china.astype(np.float32)
    ours, our_idx = kmeans_plusplus(X, 64, random_state=0)
    theirs, their_idx = skc.kmeans_plusplus(X, 64, random_state=0)
    np.testing.assert_array_equal(our_idx, their_idx)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("shape", [(1, 3), (5000, 3), (3000, 17)])
def test_upcast_distances_to_row_are_sklearns_bits(shape):
    from sklearn.metrics.pairwise import euclidean_distances

    # 5,000 x 3 and 3,000 x 17 take several of scikit-learn's float64 batches.
    X = np.random.RandomState(1).normal(size=shape).astype(np.float32)
    norms = seeding._squared_norms_float64(X)
    row = shape[0] // 2
    expected = euclidean_distances(X[row : row + 1], X, squared=True)[0]
    ours = seeding._upcast_distances_to_row(X, row, norms)
    assert ours.dtype == np.float32
    assert np.array_equal(ours, expected)


@pytest.mark.parametrize("n_rows", [1, 2, 10])
def test_gemm_sq_distances_are_sklearns_bits(china, n_rows):
    from sklearn.metrics.pairwise import euclidean_distances

    X = china[::50]
    norms = np.einsum("ij,ij->i", X, X)
    C = X[7 : 7 + n_rows]
    expected = euclidean_distances(C, X, Y_norm_squared=norms, squared=True)
    assert np.array_equal(seeding._gemm_sq_distances(C, X, norms), expected)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_parity_default_fit(digits, init):
    ours, theirs = _fit_both(digits, 10, init=init, random_state=3)
    _assert_same_fit(ours, theirs)


def test_parity_n_init_and_sample_weight(blobs):
    w = np.random.default_rng(0).uniform(0.1, 3, size=len(blobs))
    ours = KMeans(5, n_init=4, random_state=0).fit(blobs, sample_weight=w)
    theirs = skc.KMeans(5, n_init=4, random_state=0).fit(blobs, sample_weight=w)
    _assert_same_fit(ours, theirs)


def test_parity_float32(digits):
    X = digits.astype(np.float32)
    init, _ = skc.kmeans_plusplus(X, 10, random_state=0)
    ours, theirs = _fit_both(X, 10, init=init, n_init=1)
    assert ours.cluster_centers_.dtype == np.float32
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, atol=1e-3)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-5)
    assert np.mean(ours.labels_ == theirs.labels_) > 0.999


def test_parity_predict_transform_score(china):
    init, _ = skc.kmeans_plusplus(china, 16, random_state=0)
    ours, theirs = _fit_both(china, 16, init=init, n_init=1)
    sample = china[::7]
    np.testing.assert_array_equal(ours.predict(sample), theirs.predict(sample))
    np.testing.assert_allclose(ours.transform(sample), theirs.transform(sample), atol=1e-7)
    assert ours.score(sample) == pytest.approx(theirs.score(sample), rel=1e-10)


def test_parity_callable_init(blobs):
    def init(X, n_clusters, random_state):
        return X[random_state.choice(len(X), n_clusters, replace=False)]

    ours, theirs = _fit_both(blobs, 3, init=init, random_state=0)
    _assert_same_fit(ours, theirs)


def test_k_means_function(blobs):
    centers, labels, inertia, n_iter = k_means(blobs, 4, random_state=0, return_n_iter=True)
    theirs = skc.k_means(blobs, 4, random_state=0, return_n_iter=True)
    np.testing.assert_allclose(centers, theirs[0], atol=1e-10)
    np.testing.assert_array_equal(labels, theirs[1])
    assert inertia == pytest.approx(theirs[2])
    assert n_iter == theirs[3]
    assert len(k_means(blobs, 4, random_state=0)) == 3


def test_docstring_examples_match_sklearn():
    X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    centers, indices = kmeans_plusplus(X, n_clusters=2, random_state=0)
    np.testing.assert_array_equal(centers, [[10, 2], [1, 0]])
    np.testing.assert_array_equal(indices, [3, 2])
    km = KMeans(n_clusters=2, random_state=0).fit(X)
    np.testing.assert_array_equal(km.labels_, [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(km.predict([[0, 0], [12, 3]]), [1, 0])


# --- semantics -----------------------------------------------------------------


def test_empty_cluster_relocation_matches_sklearn():
    # Centre 2 starts far from every point, so it is empty after one step and
    # must be relocated to the farthest point, as scikit-learn does.
    X = np.array([[0.0], [0.5], [1.0], [10.0], [10.5], [11.0], [30.0]])
    init = np.array([[0.0], [10.0], [100.0]])
    ours, theirs = _fit_both(X, 3, init=init, n_init=1)
    _assert_same_fit(ours, theirs)


def test_fewer_distinct_points_than_clusters_warns_like_sklearn():
    X = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5)
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(2\) found smaller"):
        ours = KMeans(3, random_state=0, n_init=1).fit(X)
    with pytest.warns(ConvergenceWarning):
        theirs = skc.KMeans(3, random_state=0, n_init=1).fit(X)
    _assert_same_fit(ours, theirs)


def test_max_iter_relabels_to_final_centers(digits):
    init, _ = skc.kmeans_plusplus(digits, 10, random_state=0)
    ours, theirs = _fit_both(digits, 10, init=init, n_init=1, max_iter=2)
    _assert_same_fit(ours, theirs)
    assert ours.n_iter_ == 2
    np.testing.assert_array_equal(ours.labels_, ours.predict(digits))


def test_tol_zero_and_large_tol(blobs):
    for tol in (0.0, 10.0):
        ours, theirs = _fit_both(blobs, 6, random_state=1, tol=tol)
        _assert_same_fit(ours, theirs)


def test_verbose_output_matches_sklearn(blobs, capsys):
    KMeans(4, random_state=0, verbose=1).fit(blobs)
    ours = capsys.readouterr().out
    skc.KMeans(4, random_state=0, verbose=1).fit(blobs)
    theirs = capsys.readouterr().out
    assert ours.splitlines()[0] == theirs.splitlines()[0] == "Initialization complete"
    assert re.sub(r"[-0-9.e+]+", "#", ours) == re.sub(r"[-0-9.e+]+", "#", theirs)


@pytest.mark.parametrize("algorithm", ["elkan", "hamerly", "yinyang"])
@pytest.mark.parametrize("k", [10, 40, 70])
def test_every_algorithm_gives_lloyd_results(digits, algorithm, k):
    a = KMeans(k, random_state=0, algorithm=algorithm).fit(digits)
    b = KMeans(k, random_state=0, algorithm="lloyd").fit(digits)
    _assert_same_fit(a, b, atol=0)
    assert a.inertia_ == b.inertia_


def test_every_algorithm_matches_sklearn_lloyd(digits):
    init = digits[:40]
    theirs = skc.KMeans(40, init=init, n_init=1, algorithm="lloyd").fit(digits)
    for algorithm in ("auto", "elkan", "hamerly", "yinyang"):
        _assert_same_fit(KMeans(40, init=init, n_init=1, algorithm=algorithm).fit(digits), theirs)


def test_elkan_single_cluster_warns_and_runs_lloyd(digits):
    with pytest.warns(RuntimeWarning, match="doesn't make sense for a single cluster"):
        a = KMeans(1, algorithm="elkan").fit(digits)
    _assert_same_fit(a, KMeans(1, algorithm="lloyd").fit(digits), atol=0)


def test_auto_is_the_default_and_picks_by_shape():
    assert KMeans().algorithm == "auto"
    assert exact.choose_algorithm(273_280, 3, 64) == "hamerly"
    assert exact.choose_algorithm(273_280, 3, 8) == "lloyd"
    assert exact.choose_algorithm(1797, 64, 256) == "lloyd"
    assert exact.choose_algorithm(1797, 64, 40) == "hamerly"  # the parity test above covers auto
    assert exact.choose_algorithm(273_280, 3, 1024) == "hamerly"
    assert exact.choose_algorithm(273_280, 3, 32) == "lloyd"
    # Up to 16 features brute force wins below 64 clusters (Lloyd scores in float32 first).
    assert exact.choose_algorithm(100_000, 8, 32) == "lloyd"
    assert exact.choose_algorithm(100_000, 16, 32) == "lloyd"
    assert exact.choose_algorithm(100_000, 8, 64) == "hamerly"
    assert exact.choose_algorithm(100_000, 32, 32) == "hamerly"
    # There, Hamerly's iterations start once at most 1% of the labels change; above, after the first.
    assert exact.handover_share(16) == 0.01
    assert exact.handover_share(17) == 1.0
    assert exact.choose_algorithm(100_000, 16, 256) == "yinyang"
    assert exact.choose_algorithm(100_000, 8, 512) == "hamerly"  # eight features: Hamerly throughout
    assert exact.choose_algorithm(100_000, 16, 128) == "hamerly"
    assert exact.choose_algorithm(100_000, 32, 128) == "hamerly"
    assert exact.choose_algorithm(100_000, 64, 128) == "hamerly"
    assert exact.choose_algorithm(100_000, 128, 128) == "yinyang"
    assert exact.choose_algorithm(100_000, 128, 100) == "hamerly"  # the bench's high-d case


def test_explicit_init_with_n_init_warns(blobs):
    init = blobs[:3]
    with pytest.warns(RuntimeWarning, match="performing only one init in KMeans instead of n_init=5"):
        km = KMeans(3, init=init, n_init=5).fit(blobs)
    assert km.n_iter_ >= 1


# --- invariances -----------------------------------------------------------


def test_negative_weights_match_sklearn():
    # Negative sample weights are accepted, as by scikit-learn; a cluster of
    # negative-weight rows is not empty, and the clustering is scikit-learn's.
    rng = np.random.default_rng(7)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    sizes = (60, 60, 20)
    X = np.concatenate([c + rng.normal(scale=0.5, size=(m, 2)) for c, m in zip(centres, sizes, strict=True)])
    w = np.ones(len(X))
    w[120:] = -0.5
    ours = KMeans(3, init=centres, n_init=1).fit(X, sample_weight=w)
    theirs = skc.KMeans(3, init=centres, n_init=1).fit(X, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10, atol=1e-12)
    assert ours.n_iter_ == theirs.n_iter_


def test_unit_weights_equal_no_weights(digits):
    a = KMeans(10, random_state=0).fit(digits)
    b = KMeans(10, random_state=0).fit(digits, sample_weight=np.ones(len(digits)))
    _assert_same_fit(a, b, atol=0)


def test_integer_weight_equals_repeated_rows(blobs):
    rng = np.random.default_rng(0)
    repeats = rng.integers(1, 4, size=len(blobs))
    init = blobs[:4]
    a = KMeans(4, init=init).fit(blobs, sample_weight=repeats)
    b = KMeans(4, init=init).fit(np.repeat(blobs, repeats, axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-10)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-10)
    np.testing.assert_array_equal(np.repeat(a.labels_, repeats), b.labels_)


def test_c_and_fortran_order_agree(digits):
    a = KMeans(10, random_state=0).fit(digits)
    b = KMeans(10, random_state=0).fit(np.asfortranarray(digits))
    _assert_same_fit(a, b, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(blobs, dtype):
    X = blobs.astype(dtype)
    km = KMeans(4, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == dtype
    assert km.transform(X).dtype == dtype
    assert isinstance(km.inertia_, float)
    assert km.predict(X).dtype == np.int32


def test_integer_input_becomes_float64():
    X = np.array([[0, 0], [1, 1], [10, 10], [11, 11]])
    km = KMeans(2, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == np.float64


def test_predict_in_other_dtype(digits):
    km = KMeans(10, random_state=0).fit(digits)
    labels32 = km.predict(digits.astype(np.float32))
    assert np.mean(labels32 == km.labels_) > 0.999
    assert km.transform(digits.astype(np.float32)).dtype == np.float64


def test_inputs_never_mutated(digits):
    X = digits.copy()
    w = np.linspace(0.5, 2, len(X))
    init = X[:10].copy()
    for params in ({}, {"init": init}):
        km = KMeans(10, random_state=0, **params).fit(X, sample_weight=w)
        km.predict(X)
        km.transform(X)
        km.score(X, sample_weight=w)
    np.testing.assert_array_equal(X, digits)
    np.testing.assert_array_equal(w, np.linspace(0.5, 2, len(X)))
    np.testing.assert_array_equal(init, digits[:10])


def test_copy_x_false_restores_data(digits):
    X = digits.copy()
    a = KMeans(10, random_state=0, copy_x=False).fit(X)
    b = KMeans(10, random_state=0).fit(digits)
    np.testing.assert_allclose(X, digits, atol=1e-12)
    _assert_same_fit(a, b)


def test_fit_predict_and_fit_transform(blobs):
    km = KMeans(4, random_state=0)
    np.testing.assert_array_equal(km.fit_predict(blobs), KMeans(4, random_state=0).fit(blobs).labels_)
    np.testing.assert_allclose(KMeans(4, random_state=0).fit_transform(blobs), km.transform(blobs))


# --- the scikit-learn ecosystem ------------------------------------------------


def test_clone_pickle_pipeline_gridsearch(blobs):
    km = KMeans(4, random_state=0).fit(blobs)
    restored = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(restored.predict(blobs), km.predict(blobs))
    assert clone(km).get_params() == km.get_params()
    pipe = make_pipeline(StandardScaler(), KMeans(4, random_state=0)).fit(blobs)
    assert pipe.predict(blobs).shape == (len(blobs),)
    search = GridSearchCV(KMeans(random_state=0), {"n_clusters": [2, 4, 6]}, cv=3).fit(blobs)
    assert search.best_params_["n_clusters"] in (2, 4, 6)


def test_feature_names_and_set_output(blobs):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(blobs, columns=["a", "b"])
    km = KMeans(3, random_state=0).set_output(transform="pandas").fit(df)
    np.testing.assert_array_equal(km.feature_names_in_, ["a", "b"])
    out = km.transform(df)
    assert list(out.columns) == ["kmeans0", "kmeans1", "kmeans2"]
    np.testing.assert_array_equal(km.get_feature_names_out(), ["kmeans0", "kmeans1", "kmeans2"])


def test_public_names():
    estimators = ["KMeans", "MiniBatchKMeans", "k_means", "kmeans_plusplus"]
    others = ["Quantized", "quantize", "CompileReport", "compile", "sweep_n_clusters"]
    assert sorted(fastkm.__all__) == sorted([*estimators, *others])
    # One documented difference: algorithm defaults to "auto" (scikit-learn: "lloyd").
    assert KMeans().get_params() == {**skc.KMeans().get_params(), "algorithm": "auto"}


# --- bad input gets scikit-learn's errors ---------------------------------------

X_OK = np.random.default_rng(0).normal(size=(20, 3))


def _with(value, row=0):
    X = X_OK.copy().astype(type(value) if isinstance(value, complex) else float)
    X[row, 0] = value
    return X


BAD_FIT = {
    "nan": (lambda: _with(np.nan), {}),
    "inf": (lambda: _with(np.inf), {}),
    "empty": (lambda: np.empty((0, 3)), {}),
    "1-d": (lambda: X_OK[:, 0], {}),
    "3-d": (lambda: X_OK.reshape(20, 3, 1), {}),
    "k > n": (lambda: X_OK[:3], {}),
    "complex": (lambda: X_OK + 1j, {}),
    "bad init rows": (lambda: X_OK, {"init": X_OK[:2]}),
    "bad init cols": (lambda: X_OK, {"init": X_OK[:4, :2]}),
    "zero weights": (lambda: X_OK, {"sample_weight": np.zeros(20)}),
    "weights length": (lambda: X_OK, {"sample_weight": np.ones(19)}),
    "bad n_clusters": (lambda: X_OK, {"n_clusters": 0}),
    "bad n_init": (lambda: X_OK, {"n_init": "many"}),
    "bad algorithm": (lambda: X_OK, {"algorithm": "full"}),
    "bad init string": (lambda: X_OK, {"init": "kmeans++"}),
    "bad tol": (lambda: X_OK, {"tol": -1.0}),
}


@pytest.mark.parametrize("case", list(BAD_FIT))
def test_fit_errors_match_sklearn(case):
    make_X, params = BAD_FIT[case]
    params = dict(params)
    sample_weight = params.pop("sample_weight", None)
    n_clusters = params.pop("n_clusters", 4)
    params.setdefault("n_init", 1)

    def fit(cls):
        return lambda: cls(n_clusters, **params).fit(make_X(), sample_weight=sample_weight)

    ours, theirs = error_of(fit(KMeans)), error_of(fit(skc.KMeans))
    assert theirs[0] is not None
    if case == "bad algorithm":
        # The message lists the options, and fastkm has two more.
        assert ours[0] is theirs[0]
        expected = r"The 'algorithm' parameter of KMeans must be a str among \{.*\}\. Got 'full' instead\."
        assert re.fullmatch(expected, ours[1])
        assert all(f"'{a}'" in ours[1] for a in ("auto", "lloyd", "elkan", "hamerly", "yinyang"))
        return
    assert ours == theirs


def test_predict_errors_match_sklearn():
    ours_fitted = KMeans(4, random_state=0).fit(X_OK)
    theirs_fitted = skc.KMeans(4, random_state=0).fit(X_OK)
    bad_inputs = (X_OK[:, :2], _with(np.nan), _with(np.inf), _with(-np.inf, row=19), np.empty((0, 3)))
    for bad in bad_inputs:
        for method in ("predict", "transform", "score"):
            ours = error_of(getattr(ours_fitted, method), bad)
            theirs = error_of(getattr(theirs_fitted, method), bad)
            assert theirs[0] is not None
            assert ours == theirs, (method, bad.shape)


@pytest.mark.parametrize("n_features", [3, 9, 20])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predict_finds_non_finite_anywhere(n_features, dtype):
    # predict checks finiteness inside its labelling pass: every row and
    # column of every chunk must be seen, narrow and wide rows alike (20
    # float64 features: rows scored as they lie, ``row_major``).
    X = np.random.default_rng(1).normal(size=(3000, n_features)).astype(dtype)
    ours = KMeans(5, random_state=0).fit(X)
    theirs = skc.KMeans(5, random_state=0).fit(X)
    for row, col, value in [(0, 0, np.nan), (2999, n_features - 1, np.inf), (1234, 1, -np.inf)]:
        bad = X.copy()
        bad[row, col] = value
        assert error_of(ours.predict, bad) == error_of(theirs.predict, bad)
        assert error_of(ours.predict, bad)[0] is ValueError


def test_predict_takes_finite_rows_whose_distances_overflow():
    # Rows scored as they lie are probed for NaN and infinity only where no
    # score is finite: a finite row that overflows is probed and passes.
    X = np.random.default_rng(2).normal(size=(600, 20))
    ours = KMeans(5, random_state=0).fit(X)
    theirs = skc.KMeans(5, random_state=0).fit(X)
    big = X.copy()
    big[[7, 300, 599]] = 1e308
    assert error_of(ours.predict, big) == error_of(theirs.predict, big) == (None, None)
    np.testing.assert_array_equal(ours.predict(big)[:7], theirs.predict(big)[:7])


def test_read_only_data_without_copy_gets_sklearns_error():
    X = X_OK.copy()
    X.flags.writeable = False
    ours = error_of(KMeans(4, copy_x=False, n_init=1, random_state=0).fit, X)
    theirs = error_of(skc.KMeans(4, copy_x=False, n_init=1, random_state=0).fit, X)
    assert theirs[0] is not None
    assert ours == theirs
    # With the default copy, read-only data is fine.
    KMeans(4, n_init=1, random_state=0).fit(X)


def test_unfitted_predict():
    with pytest.raises(NotFittedError):
        KMeans().predict(X_OK)


def test_failed_fit_leaves_no_half_written_state():
    km = KMeans(4, random_state=0)
    with pytest.raises(ValueError):
        km.fit(_with(np.nan))
    assert not hasattr(km, "cluster_centers_")
    assert not hasattr(km, "n_features_in_")
    with pytest.raises(NotFittedError):
        km.predict(X_OK)
    fitted = KMeans(4, random_state=0).fit(X_OK)
    before = fitted.cluster_centers_.copy()
    with pytest.raises(ValueError):
        fitted.fit(_with(np.inf))
    np.testing.assert_array_equal(fitted.cluster_centers_, before)


def test_kmeans_plusplus_errors_match_sklearn():
    cases = [
        (X_OK[:3], 4, {}),
        (X_OK, 4, {"x_squared_norms": np.ones(5)}),
        (X_OK, 0, {}),
        (X_OK, 4, {"n_local_trials": 0}),
    ]
    for X, k, params in cases:
        ours = error_of(kmeans_plusplus, X, k, **params)
        theirs = error_of(skc.kmeans_plusplus, X, k, **params)
        assert theirs[0] is not None
        assert ours[0] is theirs[0]
        assert ours[1].replace("fastkm._kmeans.", "") == theirs[1].replace("sklearn.cluster._kmeans.", "")


# --- read-only data: the compiled kernels of writable data -------------------


def _n_compiled():
    import sys

    from fastkm._kernels._jit import LazyKernel
    from fastkm._kernels._linking import Kernel

    # A kernel's dispatcher, once made, takes its place in its module.
    found = [
        obj._dispatcher if isinstance(obj, LazyKernel) else obj
        for name, module in list(sys.modules.items())
        if name.startswith("fastkm._kernels.")
        for obj in vars(module).values()
    ]
    kernels = {id(obj): obj for obj in found if isinstance(obj, Kernel)}
    return sum(len(kernel.signatures) for kernel in kernels.values())


def test_read_only_data_runs_the_kernels_compiled_for_writable_data(tmp_path):
    from fastkm import MiniBatchKMeans, datasets

    X = datasets.digits()
    expected = KMeans(10, random_state=0).fit(X)
    expected_mb = MiniBatchKMeans(10, random_state=0).fit(X)
    for model in (expected, expected_mb):
        model.predict(X), model.transform(X), model.score(X)
    compiled = _n_compiled()
    np.save(tmp_path / "X.npy", X)
    frozen = X.copy()
    frozen.flags.writeable = False
    # A read-only memory map, as joblib hands large arrays to its workers.
    for data in (np.load(tmp_path / "X.npy", mmap_mode="r"), frozen):
        model = KMeans(10, random_state=0).fit(data)
        np.testing.assert_array_equal(model.labels_, expected.labels_)
        np.testing.assert_array_equal(model.cluster_centers_, expected.cluster_centers_)
        np.testing.assert_array_equal(model.predict(data), expected.labels_)
        np.testing.assert_array_equal(model.transform(data), expected.transform(X))
        mb = MiniBatchKMeans(10, random_state=0).fit(data)
        np.testing.assert_array_equal(mb.cluster_centers_, expected_mb.cluster_centers_)
    assert _n_compiled() == compiled
    np.testing.assert_array_equal(X, np.load(tmp_path / "X.npy"))
    # Other numba code still sees read-only arrays as read-only.
    import numba

    @numba.njit
    def write(a):
        a[0, 0] = 1.0

    with pytest.raises(numba.core.errors.TypingError, match="readonly"):
        write(frozen)


def test_partial_fit_on_a_read_only_model_updates_copies():
    from fastkm import MiniBatchKMeans, datasets

    X = datasets.digits()
    frozen, model = (MiniBatchKMeans(10, random_state=0).partial_fit(X[:600]) for _ in range(2))
    centers = frozen.cluster_centers_.copy()
    for array in (frozen.cluster_centers_, frozen._counts):
        array.flags.writeable = False
    frozen.partial_fit(X[600:1200])
    model.partial_fit(X[600:1200])
    np.testing.assert_array_equal(frozen.cluster_centers_, model.cluster_centers_)
    assert not np.array_equal(frozen.cluster_centers_, centers)


@pytest.mark.parametrize("n_samples", [300, 2000])  # a whole small run; a tiled one
@pytest.mark.parametrize("max_iter", [10**20, 2**63 + 5])
def test_max_iter_past_int64_runs_as_scikit_learn(n_samples, max_iter):
    # Compiled runs take whether their slice ends the fit, not max_iter itself.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, 5)) + rng.integers(0, 4, size=(n_samples, 1)) * 3
    init = X[:4].copy()
    ours = KMeans(4, init=init, n_init=1, max_iter=max_iter).fit(X)
    theirs = skc.KMeans(4, init=init, n_init=1, max_iter=max_iter).fit(X)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.inertia_, theirs.inertia_, rtol=1e-12)
