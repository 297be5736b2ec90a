"""The per-block entry: an iteration run block by block, reduced in block order, gives Lloyd's.

A distributed solver holds the rows in blocks; each block's step labels its
rows and writes its partials (``Step.block``), and ``steps.finish_blocks``
adds them up in block order. Here the blocks live in one process, and the
result is compared with one run over all the rows (``exact.lloyd_single``).
"""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.cluster

from fastkm import datasets
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


@pytest.mark.parametrize("algorithm", ["lloyd", "yinyang"])
def test_one_block_is_the_run_bit_for_bit(algorithm):
    # A single block is what lloyd_single steps: the same arrays, bit for bit.
    X, w = _data(np.float64, weighted=True, sparse=False)
    centers_init, _ = sklearn.cluster.kmeans_plusplus(X, 10, sample_weight=w, random_state=2)
    expected = exact.lloyd_single(X, w, centers_init, tol=0.0, algorithm=algorithm)
    labels, centers, n_iter, _ = _blocked_run(X, w, centers_init, algorithm, [0, len(X)])
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(centers, expected[2])
    assert n_iter == expected[3]


def test_block_partials_are_the_changed_rows_moves():
    # A block's partials against a plain numpy account of the rows that moved.
    X, w = _data(np.float64, weighted=True, sparse=False)
    X = X[700:1101]
    rng = np.random.default_rng(4)
    centers = X[rng.choice(len(X), 10, replace=False)]
    step = steps.step_for(X, w[700:1101], centers, "lloyd")
    step.block(True, centers)
    before = step.labels.copy()
    moved_centers = centers + rng.normal(scale=2.0, size=centers.shape)
    step.block(False, moved_centers)
    after = step.labels
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
