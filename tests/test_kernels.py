"""Kernels against the plain numpy reference."""

import numpy as np
import pytest
import scipy.sparse
import sklearn.cluster
from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense, lloyd_iter_chunked_sparse

from fastkm import KMeans, _solvers, datasets
from fastkm._kernels import lloyd, minibatch, mixed, small_lloyd, stats
from fastkm._kernels._jit import CHUNK
from fastkm._kernels.tiles import gather_tile, load_tile, new_tile, padded_centers, tile_center_scores
from fastkm._solvers import exact, layout, steps

from . import reference

SHAPES = [(1, 1, 1), (7, 1, 3), (300, 2, 4), (1000, 3, 16), (777, 4, 5), (513, 5, 7), (1797, 64, 10)]


def _data(rng, n, d, k, dtype):
    X = rng.normal(size=(n, d)).astype(dtype)
    centers = X[rng.choice(n, size=k, replace=False)] + rng.normal(scale=0.1, size=(k, d))
    return X, centers.astype(dtype)


@pytest.mark.parametrize("n, d, k", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_assign_matches_reference(rng, n, d, k, dtype):
    X, centers = _data(rng, n, d, k, dtype)
    labels, finite = _solvers.predict_labels(X, centers)
    assert finite
    expected = reference.assign(X, centers)
    dist = reference.squared_distances(X, centers)
    # Any disagreement must be a near-tie at the data type's precision.
    eps = np.finfo(dtype).eps * 64 * (1 + np.abs(dist).max())
    rows = np.arange(n)
    assert np.all(dist[rows, labels] - dist[rows, expected] <= eps)
    if dtype == np.float64:
        assert np.array_equal(labels, expected)


def _iteration(X, w, centers, n_groups, labels=None, tiled=False, sums=None):
    n, d = X.shape
    k = len(centers)
    labels = np.full(n, -1, dtype=np.int32) if labels is None else labels
    new_centers = np.empty((k, d), dtype=X.dtype)
    weights = np.empty(k, dtype=X.dtype)
    tiles = layout.tile_storage(X, n_groups) if tiled else layout.no_tiles(X)
    group_partials, group_changed = np.empty((n_groups, k, d + 2)), np.empty(n_groups, dtype=np.int64)
    norms = np.einsum("ij,ij->i", centers, centers)
    n_labelled, _ = lloyd.assign_labels(
        X, tiles, tiled, w, centers, norms, labels, group_partials, group_changed
    )
    sums = np.zeros((k, d + 2)) if sums is None else sums
    n_changed, n_empty, shift = lloyd.finish_iteration(
        group_partials, group_changed, sums, centers, new_centers, weights
    )
    assert n_changed == n_labelled
    return labels, new_centers, weights, n_changed, n_empty, shift


@pytest.mark.parametrize("n, d, k", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("tiled", [False, True], ids=["reads-X", "tiled-copy"])
def test_assign_then_finish_matches_reference(rng, n, d, k, dtype, tiled):
    X, centers = _data(rng, n, d, k, dtype)
    w = rng.uniform(0.5, 2, size=n).astype(dtype)
    n_groups = layout.n_groups_for(n, k, d)
    labels, new_centers, weights, n_changed, n_empty, shift = _iteration(X, w, centers, n_groups, tiled=tiled)
    assert n_changed == n
    exp_sums, exp_weights = reference.weighted_means(X.astype(np.float64), labels, w.astype(np.float64), k)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(weights, exp_weights, rtol=rtol)
    assert n_empty == np.sum(exp_weights == 0)
    if n_empty:
        # Left as sums for the caller to relocate.
        np.testing.assert_allclose(new_centers, exp_sums, rtol=rtol, atol=rtol * np.abs(exp_sums).max())
    else:
        exp_means = exp_sums / exp_weights[:, None]
        np.testing.assert_allclose(new_centers, exp_means, rtol=rtol, atol=rtol * np.abs(exp_means).max())
        exp_shift = ((exp_means - centers.astype(np.float64)) ** 2).sum()
        assert shift == pytest.approx(exp_shift, rel=1e-3 if dtype == np.float32 else 1e-8, abs=1e-6)
    # A second pass with the same centres changes no label.
    assert _iteration(X, w, centers, n_groups, labels, tiled=tiled)[3] == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sums_follow_relabelled_rows(rng, dtype):
    # The centre sums are corrected only for rows that change label; after
    # several iterations from unrelated centres they must equal fresh sums.
    X, centers = _data(rng, 3000, 5, 12, dtype)
    w = rng.uniform(0, 2, size=len(X)).astype(dtype)
    w[:100] = 0  # zero-weight rows move between clusters without weight
    n_groups = layout.n_groups_for(*X.shape, 12)
    labels = np.full(len(X), -1, dtype=np.int32)
    sums = np.zeros((12, X.shape[1] + 2))
    for seed in range(4):
        moved = centers + np.random.default_rng(seed).normal(scale=0.5, size=centers.shape).astype(dtype)
        _, new_centers, _, n_changed, n_empty, _ = _iteration(X, w, moved, n_groups, labels, sums=sums)
        assert n_changed > 0
    exp_sums, exp_weights = reference.weighted_means(X.astype(np.float64), labels, w.astype(np.float64), 12)
    np.testing.assert_allclose(sums[:, :-2], exp_sums, rtol=1e-9, atol=1e-9 * np.abs(exp_sums).max())
    np.testing.assert_allclose(sums[:, -2], exp_weights, rtol=1e-9)
    np.testing.assert_array_equal(sums[:, -1], np.bincount(labels[w > 0], minlength=12))
    if n_empty == 0:
        exp_means = (exp_sums / exp_weights[:, None]).astype(dtype)
        np.testing.assert_allclose(new_centers, exp_means, rtol=1e-5 if dtype == np.float32 else 1e-10)


def test_emptied_cluster_sums_are_exactly_zero(rng):
    # Rows that leave a cluster take their weight with them; once no row of
    # positive weight is left, the cluster's sums are exactly zero again.
    X, centers = _data(rng, 500, 3, 3, np.float64)
    w = rng.uniform(0.1, 1.0, size=len(X))
    labels = np.full(len(X), -1, dtype=np.int32)
    sums = np.zeros((3, 5))
    _iteration(X, w, centers, 4, labels, sums=sums)
    far = centers.copy()
    far[2] = 1e6
    _, _, weights, _, n_empty, _ = _iteration(X, w, far, 4, labels, sums=sums)
    assert n_empty == 1 and weights[2] == 0
    assert np.all(sums[2] == 0)


def test_assign_then_finish_reports_empty_clusters(rng):
    X, centers = _data(rng, 400, 3, 4, np.float64)
    centers[3] = 1e6  # nobody's nearest
    labels, sums, weights, _, n_empty, shift = _iteration(X, np.ones(len(X)), centers, 4)
    assert n_empty == 1 and weights[3] == 0 and shift == 0
    exp_sums, _ = reference.weighted_means(X, labels, np.ones(len(X)), 4)
    np.testing.assert_allclose(sums[:3], exp_sums[:3], rtol=1e-12)


@pytest.mark.parametrize("n", [1, 37, 256, 257, 300, 512, 700])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_finish_as_scikit_learn_matches_its_lloyd_iteration(rng, n, dtype, sparse):
    # scikit-learn's own iteration from the same centres: its labels, then
    # fastkm's sums, means and shift from those labels, bit for bit. Its sums
    # are a function of the rows alone where each chunk has a thread (two
    # threads, up to two chunks; one thread, one chunk); the numpy reference
    # (chunk partials added in chunk order) holds at every size.
    d = int(rng.integers(1, 10))
    k = min(n, 5)
    X = (rng.normal(size=(n, d)) * rng.choice([0.1, 1.0, 10.0], size=d)).astype(dtype)
    X[rng.random(size=X.shape) < (0.6 if sparse else 0.0)] = 0
    w = (rng.integers(0, 4, size=n) * rng.uniform(0.5, 2, size=n)).astype(dtype)
    X[:k, 0] = 0.11 + 0.37 * np.arange(k)  # k distinct rows, none of them zero,
    w[:k] = 1  # each the centre of its own, of weight: no cluster is left empty
    centers = X[:k].copy()
    labels = np.empty(n, dtype=np.int32)
    iteration = lloyd_iter_chunked_sparse if sparse else lloyd_iter_chunked_dense
    rows = scipy.sparse.csr_matrix(X) if sparse else X
    source = layout.csr_parts(rows) if sparse else rows
    for threads in (1, 2):
        exp_centers, exp_weights = np.empty_like(centers), np.empty(k, dtype=dtype)
        exp_shifts = np.empty(k, dtype=dtype)
        iteration(rows, w, centers, exp_centers, exp_weights, labels, exp_shifts, threads)
        np.testing.assert_array_equal(labels, reference.assign(X, centers))
        new_centers, weights, shifts = (
            np.empty_like(centers),
            np.empty(k, dtype=dtype),
            np.empty(k, dtype=dtype),
        )
        changed = np.array([3], dtype=np.int64)
        result = small_lloyd.finish_as_scikit_learn(
            source, w, labels, changed, centers, new_centers, weights, shifts
        )
        if n <= CHUNK or (threads == 2 and n <= 2 * CHUNK):
            np.testing.assert_array_equal(weights, exp_weights)
            np.testing.assert_array_equal(new_centers, exp_centers)
            assert result == (3, 0, float((exp_shifts**2).sum()))
    ref_sums, ref_weights = reference.chunked_sums(X, w, labels, k)
    np.testing.assert_array_equal(weights, ref_weights)
    lloyd.average_centers(ref_sums, ref_weights)  # scikit-learn's means of them
    np.testing.assert_array_equal(new_centers, ref_sums)


def _weights_init_tol(r, seed, X, k):
    """Random weights (zeros among them), an init and a tol.

    Every third seed's init is copies of one row: clusters left empty.
    """
    n = len(X)
    w = (r.integers(0, 3, size=n) * r.uniform(0.5, 2, size=n)).astype(X.dtype)
    w[0] = 1
    if seed % 3 == 0:
        init = np.repeat(X[:1], k, axis=0)
    else:
        init = X[r.choice(n, k, replace=False)]
    return w, init, [0.0, 1e-4, 1e-1][seed // 3 % 3]


def _whole_against_loop(monkeypatch, setting, runs_whole, X, w, init, max_iter, tol):
    """Fit run whole and step by step: the same bits (labels, centres, inertia, n_iter) and relocations.

    ``setting``: ``(name, on, off)``, the ``steps`` constant that lets the
    step run whole (``on``) or not; ``runs_whole``, whether it must then.
    Returns the step made with ``on`` and the relocations of its fit.
    """
    name, on, off = setting
    relocations = []
    relocate = exact._relocate_empty_clusters
    monkeypatch.setattr(exact, "_relocate_empty_clusters", lambda *a: relocations.append(1) or relocate(*a))
    runs, counted, made = [], [], []
    for whole in (True, False):
        monkeypatch.setattr(steps, name, on if whole else off)
        step = steps.step_for(X, w, init, "lloyd")
        assert step.runs_whole == (whole and runs_whole)
        made.append(step)
        relocations.clear()
        runs.append(exact.lloyd_single(X, w, init, max_iter=max_iter, tol=tol))
        counted.append(len(relocations))
    (labels, inertia, centers, n_iter), (labels2, inertia2, centers2, n_iter2) = runs
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(centers, centers2)
    assert (inertia, n_iter) == (inertia2, n_iter2)
    assert counted[0] == counted[1]
    return made[0], counted[0]


def test_whole_small_runs_take_the_loops_steps(monkeypatch):
    # A fit on few rows runs in one compiled call (small_lloyd.run), with
    # the relocation of empty clusters between calls; iteration by iteration
    # in Python it must give the same bits: labels, centres, n_iter, inertia.
    whole_runs, relocated_runs = 0, 0
    for seed in range(60):
        r = np.random.default_rng(seed)
        n, d = int(r.integers(2, 513)), int(r.integers(1, 9))
        k = int(r.integers(1, min(n, 12) + 1))
        dtype = [np.float64, np.float32][seed % 2]
        X = np.round(r.normal(size=(n, d)), int(r.integers(0, 3))).astype(dtype)
        w, init, tol = _weights_init_tol(r, seed, X, k)
        max_iter = int(r.integers(1, 30))
        setting = ("SERIAL_WORK", 1 << 16, 0)
        small = n * k * d < 1 << 16
        step, relocated = _whole_against_loop(monkeypatch, setting, small, X, w, init, max_iter, tol)
        whole_runs += step.runs_whole
        relocated_runs += relocated > 0
    # Most cases run whole, and some relocate between compiled calls.
    assert whole_runs >= 40 and relocated_runs >= 10


def test_whole_tiled_runs_take_the_loops_steps(monkeypatch):
    # Past 512 rows, brute force on tiled rows runs its iterations in compiled
    # slices (lloyd_run.run), plain or float32 first; iteration by iteration
    # in Python it must give the same bits, through relocations and slices.
    kinds, relocated_runs = set(), 0
    for seed in range(40):
        r = np.random.default_rng(seed)
        n, d = int(r.integers(513, 3000)), int(r.integers(1, 70))
        k = int(r.integers(1, 16))
        dtype = [np.float64, np.float32][seed % 2]
        X = r.normal(size=(n, d)) + r.integers(0, 3, size=(n, 1))
        X = np.round(X, int(r.integers(0, 3))).astype(dtype)
        w, init, tol = _weights_init_tol(r, seed, X, k)
        max_iter = int(r.integers(1, 90))
        monkeypatch.setattr(exact, "_RUN_SLICE", int(r.choice([1, 3, 64])))
        setting = ("WHOLE_RUN_WORK", 1 << 22, -1)
        step, relocated = _whole_against_loop(monkeypatch, setting, True, X, w, init, max_iter, tol)
        kinds.add(type(step).__name__)
        relocated_runs += relocated > 0
    assert kinds == {"LloydStep", "MixedLloydStep"} and relocated_runs >= 5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_sum_adds_as_numpy(rng, dtype):
    for n in [*range(0, 300), 1000, 1031, 4096, 100_003]:
        values = (rng.random(n) ** 3 * 10.0 ** rng.integers(-8, 8, n)).astype(dtype)
        assert stats.numpy_sum(values) == values.sum(), n


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_minibatch_squared_shift_is_numpys(rng, dtype):
    for k, d in [(1, 1), (3, 7), (20, 20), (100, 3), (64, 33)]:
        old = rng.normal(size=(k, d)).astype(dtype)
        new = (old + rng.normal(scale=1e-3, size=(k, d))).astype(dtype)
        assert minibatch._squared_shift(old.copy(), new) == np.sum((new - old) ** 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inertia_and_distances(rng, dtype):
    X, centers = _data(rng, 2000, 6, 9, dtype)
    w = rng.uniform(0, 3, size=len(X)).astype(dtype)
    labels, inertia = _solvers.labels_inertia(X, w, centers)
    assert inertia == pytest.approx(reference.inertia(X, centers, labels, w), rel=1e-6)
    distances = _solvers.euclidean_distances(X, centers)
    assert distances.dtype == dtype
    np.testing.assert_allclose(
        distances,
        np.sqrt(reference.squared_distances(X, centers)),
        rtol=1e-5 if dtype == np.float32 else 1e-12,
    )


def test_grouping_does_not_change_results(rng):
    # The partition into groups is a function of the shape; any grouping gives
    # the same labels and (to rounding) the same centres.
    X, centers = _data(rng, 5000, 3, 8, np.float64)
    w = np.ones(len(X))
    results = [_iteration(X, w, centers, n_groups, tiled=True) for n_groups in (1, 3, 20)]
    results.append(_iteration(X, w, centers, 7))
    for labels, new_centers, weights, *_ in results[1:]:
        assert np.array_equal(labels, results[0][0])
        np.testing.assert_allclose(new_centers, results[0][1], rtol=1e-12)
        np.testing.assert_array_equal(weights, results[0][2])


def test_tiles_for_a_grouping_counted_in_python_as_the_kernels_count_them():
    # n_tiles (Python) sizes the tiled copy that the kernels fill, tiles_per_group per group.
    for n_groups in (1, 2, 7, 8, 64):
        for n_samples in (1, 15, 16, 17, 255, 256, 257, 1797, 273_280):
            per_group = lloyd.tiles_per_group(n_groups, n_samples)
            assert lloyd.n_tiles(n_groups, n_samples) == n_groups * per_group
            bounds = [lloyd.group_bounds(g, n_groups, n_samples) for g in range(n_groups)]
            assert bounds[-1][1] == n_samples
            assert max(stop - start for start, stop in bounds) <= per_group * CHUNK


@pytest.mark.parametrize("d", [1, 3, 4, 5, 7, 8, 9, 16, 17, 24, 33, 64])
@pytest.mark.parametrize(
    "x_dtype, tile_dtype", [(np.float64, np.float64), (np.float64, np.float32), (np.float32, np.float32)]
)
def test_load_tile_transposes_and_probes(rng, d, x_dtype, tile_dtype):
    # Each of load_tile's paths (narrow rows, rows of a cache line, longer
    # rows), with row counts that leave remainders, and a strided X.
    X = rng.normal(size=(600, d)).astype(x_dtype)
    for source in (X, np.repeat(X, 2, axis=1)[:, ::2]):
        for start, stop in ((0, 256), (300, 313), (599, 600)):
            tile = new_tile(d, tile_dtype)
            assert load_tile(source, start, stop, tile) == 0
            n_rows = stop - start
            np.testing.assert_array_equal(tile[:d, :n_rows], X[start:stop].T.astype(tile_dtype))
            assert not tile[d:].any()
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[310, d - 1] = bad
        assert np.isnan(load_tile(Y, 300, 313, new_tile(d, tile_dtype)))
        assert load_tile(Y, 0, 256, new_tile(d, tile_dtype)) == 0


@pytest.mark.parametrize("d", [3, 8, 16, 17, 64])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gather_tile_transposes_the_rows_asked(rng, d, dtype):
    X = rng.normal(size=(600, d)).astype(dtype)
    for n_rows in (0, 5, 8, 19, 256):
        rows = np.sort(rng.choice(256, n_rows, replace=False)).astype(np.int64)
        tile = new_tile(d, np.float32)
        gather_tile(X, 300, rows, n_rows, tile)
        np.testing.assert_array_equal(tile[:d, :n_rows], X[300 + rows].T.astype(np.float32))
        assert not tile[d:].any()


def test_lloyd_single_matches_reference(rng):
    X, centers = _data(rng, 3000, 4, 6, np.float64)
    labels, inertia, out_centers, _ = exact.lloyd_single(X, np.ones(len(X)), centers, tol=0)
    exp_labels, exp_centers = reference.lloyd(X, centers)
    assert np.array_equal(labels, exp_labels)
    np.testing.assert_allclose(out_centers, exp_centers, rtol=1e-12, atol=1e-12)
    assert inertia == pytest.approx(reference.inertia(X, out_centers, labels), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_plusplus_kernel(rng, dtype):
    X = rng.normal(size=(4000, 5)).astype(dtype)
    norms = np.einsum("ij,ij->i", X, X)
    centers, indices = _solvers.kmeans_plusplus(
        X, 20, norms, np.ones(len(X), dtype=dtype), np.random.RandomState(0)
    )
    assert centers.dtype == dtype
    assert len(set(indices.tolist())) == 20
    np.testing.assert_array_equal(centers, X[indices])
    # Greedy seeding beats uniformly random seeds on average by a wide margin.
    random_pot = np.mean(
        [reference.kmeans_plusplus_potential(X, X[rng.choice(len(X), 20, replace=False)]) for _ in range(5)]
    )
    assert reference.kmeans_plusplus_potential(X, centers) < 0.9 * random_pot


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_kept_or_scored_again_change_nothing(rng, monkeypatch, weighted):
    # Small X keeps the candidates' terms and reads the chosen one's; larger
    # X scores the chosen centre again (in the draws and the next pass); X
    # may be kept in tiles across the passes or read in each. All four give
    # the same centres, scikit-learn's.
    from sklearn.cluster import kmeans_plusplus as sklearn_kmeans_plusplus

    from fastkm._solvers import layout, seeding

    X = rng.normal(size=(3000, 24)) * rng.uniform(0.5, 3, size=24)
    norms = np.einsum("ij,ij->i", X, X)
    w = rng.integers(0, 4, len(X)).astype(float) if weighted else np.ones(len(X))
    runs = []
    for kept_budget, tiles_budget in [(1 << 20, 1 << 30), (0, 1 << 30), (1 << 20, 0), (0, 0)]:
        with monkeypatch.context() as patch:
            patch.setattr(seeding, "KEPT_TERMS_BUDGET", kept_budget)
            patch.setattr(layout, "TILED_COPY_BUDGET", tiles_budget)
            runs.append(_solvers.kmeans_plusplus(X, 40, norms, w, np.random.RandomState(2)))
    for centers, indices in runs[1:]:
        np.testing.assert_array_equal(indices, runs[0][1])
        np.testing.assert_array_equal(centers, runs[0][0])
    theirs = sklearn_kmeans_plusplus(X, 40, sample_weight=w, x_squared_norms=norms, random_state=2)
    np.testing.assert_array_equal(runs[0][1], theirs[1])


def test_kmeans_plusplus_zero_weight_rows_never_chosen(rng):
    X = rng.normal(size=(500, 3))
    w = np.ones(len(X))
    w[::2] = 0
    norms = np.einsum("ij,ij->i", X, X)
    _, indices = _solvers.kmeans_plusplus(X, 30, norms, w, np.random.RandomState(1))
    assert np.all(indices % 2 == 1)


@pytest.mark.parametrize("n, d", [(1, 1), (500, 1), (2, 2), (1797, 64), (20001, 3), (9000, 17)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("parallel", [False, True])
def test_center_data_matches_numpy_bits(rng, n, d, dtype, parallel, monkeypatch):
    # Large X is centred by both threads, its deviations summed after
    # (centered_rows, column_squares): the bits of the one serial pass.
    from sklearn.cluster._kmeans import _tolerance

    from fastkm._solvers import centering

    monkeypatch.setattr(centering, "PARALLEL_CENTRING", 0 if parallel else 1 << 62)

    X = (rng.normal(size=(n, d)) * rng.uniform(0.1, 500, size=d) + rng.uniform(-90, 90, size=d)).astype(dtype)
    expected_tol = _tolerance(X, 1e-4)
    expected_mean = X.mean(axis=0)
    expected_X = X - expected_mean
    original = X.copy()
    centred, means, tol, x_max = _solvers.center_data(X, 1e-4, in_place=False)
    np.testing.assert_array_equal(X, original)
    np.testing.assert_array_equal(centred, expected_X)
    largest = np.einsum("ij,ij->i", expected_X.astype(np.float64), expected_X.astype(np.float64)).max()
    if d >= 2:
        # A bound on every centred row's squared norm, and a close one.
        assert largest <= x_max <= largest * (1 + 1e-12)
    else:
        assert x_max is None
    centred, means, tol, x_max = _solvers.center_data(X, 1e-4)
    assert centred is X
    assert means.dtype == dtype
    np.testing.assert_array_equal(means, expected_mean)
    np.testing.assert_array_equal(X, expected_X)
    assert tol == expected_tol
    assert _solvers.center_data(X.copy(), 0)[2] == 0
    assert _solvers.center_data(X.copy(), 1e-4, measure_rows=False)[3] is None


@pytest.mark.parametrize("fold", ["none", "scored", "kept"])
def test_draw_is_searchsorted_of_the_cumulative_masses(rng, fold):
    # k-means++'s draw: the first row whose running mass reaches the target,
    # whole chunks skipped by their sums, clipped to the last row. With a
    # pending centre the masses are those of closest lowered to its
    # distances: scored on the fly, or read from the kept terms.
    from fastkm._kernels.init import _draw, _draw_buffers
    from fastkm._kernels.tiles import padded_centers

    X = rng.normal(size=(768, 5))
    norms = np.einsum("ij,ij->i", X, X)
    closest = rng.uniform(0, 40, len(X))
    w = rng.integers(0, 3, len(X)).astype(float)
    centre = X[17:18].copy()
    dist = np.maximum(norms - 2 * X @ centre[0] + norms[17], 0)
    lowered = np.minimum(closest, dist)
    masses = w * (closest if fold == "none" else lowered)
    chunk_mass = np.add.reduceat(masses, [0, 256, 512])
    cumsum = np.cumsum(masses)
    no_tiles = np.empty((0, 0, 0))
    kept = np.stack([closest, lowered]) if fold == "kept" else np.empty((0, 0))
    # The centre as the kernel prepares it, its norm, and its row of kept.
    pending = (padded_centers(centre, np.float64), norms[17:18], 1)
    buffers = _draw_buffers(X, no_tiles, closest)
    total = cumsum[-1]
    for target in (0.0, 1e-9, 0.5, total / 3, total / 2, total * 0.999, total, total * 1.5):
        args = (X, no_tiles, norms, w, closest, chunk_mass, target, pending, fold != "none", kept)
        got = _draw(*args, buffers, np.empty(256))
        assert got == min(np.searchsorted(cumsum, target), len(X) - 1), target


# --- Lloyd scored in float32, checked (mixed.py) ---------------------------------


def _lloyd_both_ways(monkeypatch, X, w, init, **kwargs):
    """lloyd_single with float32 scoring first (whatever the size), and without; both results."""
    with monkeypatch.context() as patch:
        patch.setattr(steps, "FLOAT32_FIRST_WORK", 0)
        assert steps.scores_in_float32(X, layout.n_groups_for(len(X), len(init), X.shape[1]), len(init))
        mixed_run = exact.lloyd_single(X, w, init, algorithm="lloyd", **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(steps, "scores_in_float32", lambda X, n_groups, n_clusters: False)
        plain_run = exact.lloyd_single(X, w, init, algorithm="lloyd", **kwargs)
    return mixed_run, plain_run


def _assert_same_bits(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[2], b[2])
    assert a[1] == b[1] and a[3] == b[3]


def test_float32_scoring_gives_lloyd_bits(monkeypatch):
    rng = np.random.default_rng(21)
    for case in range(50):
        n, d, k = int(rng.choice([50, 700, 3000])), int(rng.choice([2, 5, 16, 64])), int(rng.integers(1, 40))
        kind = case % 5
        if kind == 4:  # float32 overflow: every score from about 1e18 on
            X = rng.normal(size=(n, d)) * 10.0 ** rng.choice([18, 19, 20, 40])
        elif kind == 0:  # integer data: exact ties between centres
            X = rng.integers(0, 4, size=(n, d)).astype(np.float64)
        elif kind == 1:  # far from the origin: large scores, wide rounding bounds
            X = rng.normal(size=(n, d)) + 1e4 * rng.integers(0, 3, size=(n, 1))
        elif kind == 2:  # tiny values: float32 underflows
            X = rng.normal(size=(n, d)) * 1e-39
        else:
            X = rng.normal(size=(n, d))
        init = X[rng.choice(n, k, replace=k > n)].copy()
        if k > 1 and case % 3 == 0:
            init[1] = init[0]  # duplicate centres: every score ties
        w = rng.choice([0.5, 1.0, 2.0], n) if case % 2 else np.ones(n)
        _assert_same_bits(*_lloyd_both_ways(monkeypatch, X, w, init, tol=float(rng.choice([0.0, 1e-4]))))


def test_float32_scoring_matches_sklearn_on_digits():
    X = datasets.digits()
    init, _ = sklearn.cluster.kmeans_plusplus(X, 10, random_state=0)
    assert steps.scores_in_float32(X, layout.n_groups_for(len(X), 10, X.shape[1]), 10)
    ours = KMeans(10, init=init, n_init=1).fit(X)
    theirs = sklearn.cluster.KMeans(10, init=init, n_init=1).fit(X)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-12, atol=1e-12)
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("n_features", [16, 64, 300])
def test_mixed_error_scale_bounds_float32_scores(n_features):
    """Twice a float32 score's error, and a float64 one's, stay within a + b ||x||."""
    rng = np.random.default_rng(n_features)
    X = rng.normal(size=(400, n_features)) * rng.choice([1e-3, 1.0, 1e3], size=(400, 1))
    centers = rng.normal(size=(12, n_features)) * 2
    a, b, x_limit = mixed.mixed_error_scale(np.einsum("ij,ij->i", centers, centers), n_features)
    assert x_limit > np.linalg.norm(X, axis=1).max()
    exact = (centers.astype(np.longdouble) ** 2).sum(axis=1) - 2 * (
        X.astype(np.longdouble) @ centers.astype(np.longdouble).T
    )
    tiles = np.zeros((1, n_features, 264), dtype=np.float32)
    padded = padded_centers(centers, np.float32)
    norms32 = (centers**2).sum(axis=1).astype(np.float32)
    worst = 0.0
    for start in range(0, 400, 200):
        tile = tiles[0]
        tile[:n_features, :200] = X[start : start + 200].T
        for j in range(12):
            out = np.empty(264, dtype=np.float32)
            tile_center_scores(tile, 200, padded, norms32, j, out)
            err = np.abs(out[:200].astype(np.longdouble) - exact[start : start + 200, j])
            allowed = (a + b * np.linalg.norm(X[start : start + 200], axis=1)) / 2
            worst = max(worst, float(np.max(err / allowed)))
    assert worst < 1.0


def test_float32_scoring_near_overflow(monkeypatch):
    """Scores past float32's range are rescored, not taken from an infinite gap."""
    X = np.array([[1.5e19, 0.0], [0.0, 1.0], [2e19, 0.0], [1.0, 0.0]])
    init = np.array([[0.0, 0.0], [2e19, 0.0]])
    mixed_run, plain_run = _lloyd_both_ways(monkeypatch, X, np.ones(4), init, max_iter=1)
    np.testing.assert_array_equal(plain_run[0], [1, 0, 1, 0])
    _assert_same_bits(mixed_run, plain_run)
