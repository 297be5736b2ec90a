"""The per-block entry: an iteration run block by block, reduced in block order, gives Lloyd's.

A distributed solver would hold the rows in blocks; each block's step labels
its rows and writes its partials (a step's ``block``), and
``steps.finish_blocks`` adds them up in block order. Here the blocks live in
one process, and the result is compared with one run over all the rows
(``exact.lloyd_single``). Empty clusters and non-strict stops are the
single run's business (tests/test_kmeans.py); these runs have neither.
"""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.cluster

from fastkm import _solvers, datasets
from fastkm._kernels import bounds, lloyd
from fastkm._solvers import exact, layout, predict, steps

# Uneven blocks, one smaller than k.
EDGES = [0, 5, 700, 1101, 1797]


def _blocked_run(X, w, centers_init, algorithm, edges):
    """Lloyd's loop to strict convergence, a step per block of rows."""
    x_max = float(layout.row_squared_norms(X).max())
    spans = list(itertools.pairwise(edges))
    centers = np.array(centers_init, dtype=X.dtype)
    blocks = [steps.step_for(X[a:b], w[a:b], centers, algorithm, x_max) for a, b in spans]
    k, d = centers.shape
    sums, weights, new_centers = np.zeros((k, d + 2)), np.empty(k, dtype=X.dtype), np.empty_like(centers)
    for i in range(300):
        for step in blocks:
            step.block(i == 0, centers)
        n_changed, n_empty, _ = steps.finish_blocks(
            [step.buffers for step in blocks], sums, centers, new_centers, weights
        )
        assert n_empty == 0
        for step in blocks:
            step.centers_moved(centers, new_centers)
        centers, new_centers = new_centers, centers
        if n_changed == 0:
            break
    labels = np.concatenate([step.labels for step in blocks])
    inertia = sum(predict.total_inertia(X[a:b], w[a:b], centers, labels[a:b]) for a, b in spans)
    return labels, centers, i + 1, inertia


def _data(dtype, weighted, sparse):
    X = datasets.digits().astype(dtype)
    rng = np.random.default_rng(3)
    w = rng.uniform(0.5, 2.0, len(X)).astype(dtype) if weighted else np.ones(len(X), dtype=dtype)
    return (sp.csr_matrix(X) if sparse else X), w


@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly", "elkan", "yinyang"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True], ids=["unit", "weighted"])
def test_blocks_give_lloyds_iterates(algorithm, dtype, weighted):
    X, w = _data(dtype, weighted, sparse=False)
    centers_init, _ = sklearn.cluster.kmeans_plusplus(X, 10, sample_weight=w, random_state=0)
    expected = exact.lloyd_single(X, w, centers_init, tol=0.0, algorithm=algorithm)
    labels, centers, n_iter, inertia = _blocked_run(X, w, centers_init, algorithm, EDGES)
    np.testing.assert_array_equal(labels, expected[0])
    assert n_iter == expected[3] > 5
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(centers, expected[2], rtol=rtol, atol=rtol * np.abs(expected[2]).max())
    np.testing.assert_allclose(inertia, expected[1], rtol=rtol)


def test_sparse_blocks_give_lloyds_iterates():
    X, w = _data(np.float64, weighted=True, sparse=True)
    centers_init, _ = sklearn.cluster.kmeans_plusplus(X, 10, sample_weight=w, random_state=1)
    expected = exact.lloyd_single(X, w, centers_init, tol=0.0)
    labels, centers, n_iter, inertia = _blocked_run(X, w, centers_init, "lloyd", EDGES)
    np.testing.assert_array_equal(labels, expected[0])
    assert n_iter == expected[3] > 5
    np.testing.assert_allclose(centers, expected[2], rtol=1e-10, atol=1e-10 * np.abs(expected[2]).max())
    np.testing.assert_allclose(inertia, expected[1], rtol=1e-10)


@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly", "elkan", "yinyang"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocks_cut_at_the_row_groups_give_the_run_bit_for_bit(algorithm, dtype):
    # Blocks that are the single run's row groups add the same partials in
    # the same order: block order, then group order, is the run's group
    # order, so the centres are the same bits (in another order they are not:
    # the next test).
    X, w = _data(dtype, weighted=True, sparse=False)
    n, d = X.shape
    n_groups = layout.n_groups_for(n, 10, d)
    edges = [lloyd.group_bounds.__wrapped__(g, n_groups, n)[0] for g in range(n_groups)] + [n]
    assert len(edges) > 2
    assert all(layout.n_groups_for(b - a, 10, d) == 1 for a, b in itertools.pairwise(edges))
    centers_init, _ = sklearn.cluster.kmeans_plusplus(X, 10, sample_weight=w, random_state=2)
    expected = exact.lloyd_single(X, w, centers_init, tol=0.0, algorithm=algorithm)
    labels, centers, n_iter, _ = _blocked_run(X, w, centers_init, algorithm, edges)
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(centers, expected[2])
    assert n_iter == expected[3]


def _buffers(partials, changed):
    partials = np.asarray(partials, dtype=np.float64).reshape(len(partials), 1, 3)
    return steps.Buffers(
        labels=np.empty(0, dtype=np.int32),
        group_partials=partials,
        group_changed=np.asarray(changed, dtype=np.int64),
        sums=np.zeros((1, 3)),
        weights=np.empty(1),
    )


def test_finish_blocks_adds_in_block_then_group_order():
    # Partials whose float64 sum depends on the order they are added in.
    first = _buffers([[1e16, 1.0, 1.0], [1.0, 1.0, 1.0]], [2, 1])
    second = _buffers([[-1e16, 1.0, 1.0]], [4])
    centers, new_centers, weights = np.zeros((1, 1)), np.empty((1, 1)), np.empty(1)

    def finish(blocks):
        sums = np.zeros((1, 3))
        result = steps.finish_blocks(blocks, sums, centers, new_centers, weights)
        return result, sums[0, 0]

    (n_changed, n_empty, _), in_order = finish([first, second])
    assert (n_changed, n_empty) == (7, 0)
    assert in_order == (1e16 + 1.0) - 1e16  # 1e16 + 1 rounds to 1e16: 0.0
    assert finish([second, first])[1] == (-1e16 + 1e16) + 1.0
    np.testing.assert_array_equal(weights, [3.0])


def test_a_blocks_margin_covers_every_row():
    # The bounds' rounding margin of a block of small rows grows to cover
    # centres as far out as the data's largest row (x_max): given x_max,
    # every block gets the single run's margin, measured or not.
    X, w = _data(np.float64, weighted=False, sparse=False)
    norms = layout.row_squared_norms(X)
    x_max = float(norms.max())
    small, large = np.flatnonzero(norms < x_max / 4)[:50], np.flatnonzero(norms == x_max)[:1]
    centers = X[:10].copy()

    def margin(rows, **kwargs):
        step = steps.step_for(np.ascontiguousarray(X[rows]), w[rows], centers, "hamerly", **kwargs)
        return step.state[bounds.SCALARS, bounds.MARGIN]

    whole = margin(np.arange(len(X)))
    assert margin(small) < margin(small, x_max=x_max) == whole
    assert margin(np.concatenate([small, large])) == whole
    assert margin(np.arange(len(X)), x_max=x_max) == whole


@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly", "elkan", "yinyang"])
def test_block_partials_are_the_changed_rows_moves(algorithm):
    # A block's partials against a plain numpy account of the rows that moved.
    X, w = _data(np.float64, weighted=True, sparse=False)
    X = X[700:1101]
    rng = np.random.default_rng(4)
    centers = X[rng.choice(len(X), 10, replace=False)]
    step = steps.step_for(X, w[700:1101], centers, algorithm)
    step.block(True, centers)
    before = step.labels.copy()
    moved_centers = centers + rng.normal(scale=2.0, size=centers.shape)
    step.centers_moved(centers, moved_centers)
    step.block(False, moved_centers)
    after = step.labels
    np.testing.assert_array_equal(after, _solvers.predict_labels(X, moved_centers)[0])
    changed = before != after
    assert 0 < changed.sum() < len(X)
    expected = np.zeros((10, X.shape[1] + 2))
    for r in np.flatnonzero(changed):
        for label, sign in ((before[r], -1.0), (after[r], 1.0)):
            expected[label, :-2] += sign * w[700 + r] * X[r]
            expected[label, -2] += sign * w[700 + r]
            expected[label, -1] += sign
    group_partials, group_changed = step.buffers.partials()
    assert group_changed.sum() == changed.sum()
    np.testing.assert_allclose(group_partials.sum(axis=0), expected, atol=1e-9)
