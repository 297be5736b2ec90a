"""KMeans and MiniBatchKMeans on scipy.sparse CSR input: against scikit-learn and dense fits."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.cluster as skc
from sklearn.exceptions import ConvergenceWarning

from fastkm import KMeans, MiniBatchKMeans, kmeans_plusplus
from fastkm._kernels import sparse
from fastkm._solvers import layout

from . import reference


def _csr(n=600, d=40, density=0.1, dtype=np.float64, seed=0):
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float64)
    # A few empty rows and one duplicated row, as real sparse data has.
    X = sp.vstack([X, sp.csr_matrix((3, d)), X[:1]]).tocsr()
    return X.astype(dtype)


def _fit_both(X, k, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(k, **params).fit(X), skc.KMeans(k, **params).fit(X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_from_same_init_matches_sklearn(dtype):
    X = _csr(dtype=dtype)
    init = X[:7].toarray()
    ours, theirs = _fit_both(X, 7, init=init, n_init=1)
    assert np.array_equal(ours.labels_, theirs.labels_)
    assert ours.n_iter_ == theirs.n_iter_
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, atol=tol)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=tol)
    assert ours.cluster_centers_.dtype == dtype and isinstance(ours.cluster_centers_, np.ndarray)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_fit_with_seeded_init_matches_sklearn(init):
    X = _csr()
    ours, theirs = _fit_both(X, 6, init=init, n_init=2, random_state=3)
    assert np.array_equal(ours.labels_, theirs.labels_)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-10)


def test_kmeans_plusplus_on_csr_picks_sklearns_points():
    X = _csr()
    ours, idx = kmeans_plusplus(X, 12, random_state=0)
    theirs, their_idx = skc.kmeans_plusplus(X, 12, random_state=0)
    np.testing.assert_array_equal(idx, their_idx)
    np.testing.assert_array_equal(ours, theirs)
    assert isinstance(ours, np.ndarray)


def test_sparse_and_dense_fits_agree():
    X = _csr()
    w = np.random.default_rng(0).uniform(0.5, 2, X.shape[0])
    from_sparse = KMeans(5, random_state=0).fit(X, sample_weight=w)
    from_dense = KMeans(5, random_state=0).fit(X.toarray(), sample_weight=w)
    assert np.array_equal(from_sparse.labels_, from_dense.labels_)
    np.testing.assert_allclose(from_sparse.cluster_centers_, from_dense.cluster_centers_, atol=1e-12)
    assert from_sparse.inertia_ == pytest.approx(from_dense.inertia_, rel=1e-10)


def test_train_on_one_form_predict_on_the_other():
    X = _csr()
    dense_model = KMeans(5, random_state=0).fit(X.toarray())
    sparse_model = KMeans(5, random_state=0).fit(X)
    for model in (dense_model, sparse_model):
        np.testing.assert_array_equal(model.predict(X), model.predict(X.toarray()))
        np.testing.assert_allclose(model.transform(X), model.transform(X.toarray()), atol=1e-12)
        assert model.score(X) == pytest.approx(model.score(X.toarray()), rel=1e-12)


@pytest.mark.parametrize("form", [sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.coo_array, sp.lil_matrix])
def test_sparse_formats_are_accepted(form):
    X = _csr()
    init = X[:4].toarray()
    ours = KMeans(4, init=init, n_init=1).fit(form(X))
    theirs = skc.KMeans(4, init=init, n_init=1).fit(form(X))
    assert np.array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_array_equal(ours.predict(form(X)), theirs.predict(form(X)))


def test_predict_transform_score_match_sklearn():
    X = _csr()
    ours, theirs = _fit_both(X, 6, random_state=1)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=1e-10, atol=1e-12)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-10)


def test_empty_cluster_relocation_matches_sklearn():
    # Three far-apart points and an init with a centre nobody is nearest to.
    X = sp.csr_matrix(np.array([[0, 0, 1.0], [0, 0, 1.1], [5, 0, 0], [0, 9, 0], [0, 9.5, 0]]))
    init = np.array([[0, 0, 1.0], [5, 0, 0], [100, 100, 100]])
    ours, theirs = _fit_both(X, 3, init=init, n_init=1)
    assert np.array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, atol=1e-12)


def test_unsorted_indices_and_explicit_zeros():
    X = _csr(n=200, d=15)
    dense = X.toarray()
    # Reverse each row's stored order and store an explicit zero.
    data, indices = X.data.copy(), X.indices.copy()
    for r in range(X.shape[0]):
        lo, hi = X.indptr[r], X.indptr[r + 1]
        data[lo:hi], indices[lo:hi] = data[lo:hi][::-1], indices[lo:hi][::-1]
    shuffled = sp.csr_matrix((data, indices, X.indptr.copy()), shape=X.shape)
    shuffled.has_sorted_indices = False
    init = dense[:4]
    a = KMeans(4, init=init, n_init=1).fit(shuffled)
    b = KMeans(4, init=init, n_init=1).fit(dense)
    assert np.array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, atol=1e-12)


def test_kernels_against_numpy_reference():
    X = _csr(n=300, d=25)
    dense = X.toarray()
    centers = np.random.default_rng(1).normal(size=(6, 25))
    parts = layout.csr_parts(X)
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    center_norms = np.einsum("ij,ij->i", centers, centers)
    sparse.assign_labels(
        parts, np.empty(0), centers, center_norms, labels, np.empty((3, 0, 0)), np.empty(3, np.int64)
    )
    distances = ((dense[:, None, :] - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, distances.argmin(axis=1))
    norms = np.empty(X.shape[0])
    sparse.row_sq_norms(parts, norms)
    np.testing.assert_allclose(norms, (dense**2).sum(1), rtol=1e-14)
    w = np.ones(X.shape[0])
    inertia = sparse.inertia(parts, w, centers, labels, np.empty(4))
    assert inertia == pytest.approx(reference.inertia(dense, centers, labels, w), rel=1e-12)


def test_nan_in_sparse_data_gets_sklearns_error():
    X = _csr()
    X.data[3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        KMeans(3).fit(X)
    model = KMeans(3, random_state=0).fit(_csr())
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict(X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_minibatch_fit_matches_sklearn_step_for_step(dtype, init):
    X = _csr(n=2000, d=60, dtype=dtype)
    params = dict(init=init, n_init=2, batch_size=100, random_state=0)
    ours = MiniBatchKMeans(6, **params).fit(X)
    theirs = skc.MiniBatchKMeans(6, **params).fit(X)
    assert ours.n_steps_ == theirs.n_steps_
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=0, atol=1e-12)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_minibatch_partial_fit_and_weights_match_sklearn():
    X = _csr(n=1200, d=40)
    w = np.random.default_rng(0).uniform(0.5, 2, X.shape[0])
    ours, theirs = MiniBatchKMeans(5, random_state=0), skc.MiniBatchKMeans(5, random_state=0)
    for start in range(0, X.shape[0], 300):
        rows = slice(start, start + 300)
        ours.partial_fit(X[rows], sample_weight=w[rows])
        theirs.partial_fit(X[rows], sample_weight=w[rows])
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_minibatch_sparse_and_dense_fits_agree():
    X = _csr(n=1500, d=30)
    from_sparse = MiniBatchKMeans(4, batch_size=64, random_state=2).fit(X)
    from_dense = MiniBatchKMeans(4, batch_size=64, random_state=2).fit(X.toarray())
    assert from_sparse.n_steps_ == from_dense.n_steps_
    np.testing.assert_allclose(from_sparse.cluster_centers_, from_dense.cluster_centers_, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(from_sparse.labels_, from_dense.labels_)


def test_minibatch_reassigns_starved_centres_from_sparse_rows():
    # Far too many centres for the data: starved centres are restarted on
    # batch rows (copied from CSR), as in scikit-learn.
    X = _csr(n=400, d=20)
    params = dict(batch_size=50, reassignment_ratio=0.5, max_iter=3, random_state=0, n_init=1)
    ours = MiniBatchKMeans(30, **params).fit(X)
    theirs = skc.MiniBatchKMeans(30, **params).fit(X)
    assert ours.n_steps_ == theirs.n_steps_
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=0, atol=1e-12)


def test_duplicate_entries_mean_their_sum():
    # Row 0 stores column 1 twice (1 + 2): the matrix means [[0, 3], ...].
    data = np.array([1.0, 2.0, 5.0, 2.0, 0.5])
    indices = np.array([1, 1, 0, 1, 0], dtype=np.int32)
    X = sp.csr_matrix((data, indices, np.array([0, 2, 3, 4, 5], dtype=np.int32)), shape=(4, 2))
    dense = X.toarray()
    centers, idx = kmeans_plusplus(X, 3, random_state=0)
    np.testing.assert_array_equal(centers, dense[idx])
    ours = KMeans(2, random_state=0).fit(X)
    reference = KMeans(2, random_state=0).fit(dense)
    np.testing.assert_array_equal(ours.labels_, reference.labels_)
    assert ours.inertia_ == pytest.approx(reference.inertia_, rel=1e-12)
    np.testing.assert_allclose(ours.transform(X), reference.transform(dense), atol=1e-12)
    assert X.nnz == 5  # the caller's matrix is left as it was


def test_kmeans_plusplus_takes_int64_indices_as_sklearn():
    X = _csr(n=300, d=20)
    wide = sp.csr_matrix((X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)), shape=X.shape)
    _, idx = kmeans_plusplus(wide, 5, random_state=0)
    _, their_idx = skc.kmeans_plusplus(wide, 5, random_state=0)
    np.testing.assert_array_equal(idx, their_idx)


_EXACT_AFTER_A_FIT = """
import numpy as np, scipy.sparse as sp
from fastkm import KMeans
from fastkm._kernels import sparse
from fastkm._solvers import layout
# A fit compiles row_dots first, as a callee of fastmath kernels.
KMeans(3, random_state=0, n_init=1).fit(sp.random(200, 6, density=0.5, format="csr", random_state=1))
rng = np.random.default_rng(5)
bad = 0
for _ in range(200):
    C, x = rng.normal(size=(8, 6)), rng.normal(size=6)
    dots = np.empty(8)
    sparse.row_dots(layout.csr_parts(sp.csr_matrix(x[None])), 0, sparse.transposed(C, C.dtype), dots)
    expected = np.zeros(8)
    for k in range(6):
        expected += C[:, k] * x[k]
    bad += not np.array_equal(dots, expected)
print(bad)
"""


def test_exact_kernels_stay_exact_when_compiled_as_callees(tmp_path):
    # With fastmath left unset, numba gave row_dots the FMA and reassociation
    # of the kernel that compiled it first. A fresh cache makes that order
    # the one this process compiles in.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", _EXACT_AFTER_A_FIT], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == "0"
