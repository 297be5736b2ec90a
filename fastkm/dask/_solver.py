"""Lloyd's loop over the blocks of a dask array (``exact.lloyd_single``'s, run block by block).

``single_run`` is one run from given centres: every block's state lives on
a worker (``_states``: the rows and step persisted, or the labels alone
while the rows stream from their source), each iteration's shares are reduced in
block order and the centres made by ``lloyd.finish_iteration``; an empty
cluster gets one of the farthest rows (``relocate``). ``same_clustering`` is
scikit-learn's test between two runs, from the blocks' label pairs.
"""

import numpy as np

from .._kernels import lloyd
from . import _blocks, _states


def same_clustering(runner, labels1, labels2, n_clusters):
    """``exact.is_same_clustering`` over the blocks: every label of one run maps to one of the other."""
    pairs = [
        runner.submit(_blocks.label_pairs, a, b, n_clusters) for a, b in zip(labels1, labels2, strict=True)
    ]
    pairs = np.unique(np.concatenate(runner.gather(pairs)))
    return bool(np.unique(pairs // n_clusters).size == pairs.size)


def relocate(runner, states, offsets, centers_old, sums, weights, n_empty, iteration):
    """Give each empty cluster one of the rows farthest from its centre, in place.

    The candidates are the farthest rows of each block, merged farthest first,
    ties to the lower row index. One process pairs empty clusters with the
    farthest rows in numpy's argpartition order: with two or more clusters
    empty at once, or tied distances, the pairing (so the labels' numbering)
    can differ from fastkm.KMeans's.
    """
    empty = np.flatnonzero(weights == 0)
    each = [(offset,) for offset in offsets[:-1]]
    parts = runner.pinned(_states.state_farthest, states, centers_old, n_empty, iteration, each=each)
    far = runner.gather(runner.tree(_blocks.merge_farthest, parts, n_empty))
    distances, _, rows, row_weights, row_labels = far
    if distances.size == 0 or distances.max() == 0:
        return
    for new_cluster, row, weight, old_cluster in zip(empty, rows, row_weights, row_labels, strict=False):
        sums[old_cluster] -= row * weight
        sums[new_cluster] = row * weight
        weights[new_cluster] = weight
        weights[old_cluster] -= weight


def single_run(runner, place_states, offsets, centers_init, max_iter, tol, verbose):
    """One run of Lloyd's iterations over the blocks (see ``exact.lloyd_single``).

    ``place_states(centers_init)`` puts every block's state on a worker
    (``_states``). Returns the label blocks (futures on a cluster), the
    inertia, the centres and the iterations run.
    """
    n_clusters, n_features = centers_init.shape
    centers = np.array(centers_init, order="C")
    new_centers = np.empty_like(centers)
    sums = np.zeros((n_clusters, n_features + 2))
    weights = np.empty(n_clusters, dtype=centers.dtype)
    states = place_states(centers)
    runner.wait(states)
    strict = False
    try:
        for i in range(max_iter):
            # A state's version counts its iterations (then the relabel).
            shares = runner.pinned(_states.step_block, states, centers, i)
            partials, n_changed = runner.gather(runner.tree(_blocks.combine, shares))
            n_changed, n_empty, shift = lloyd.finish_iteration(
                partials[None], np.array([n_changed], dtype=np.int64), sums, centers, new_centers, weights
            )
            if n_empty:
                # new_centers holds the sums: relocate, then average, as in one process.
                relocate(runner, states, offsets, centers, new_centers, weights, n_empty, i + 1)
                lloyd.average_centers(new_centers, weights)
                shift = lloyd.center_shift_total(centers, new_centers)
            centers, new_centers = new_centers, centers
            if verbose:
                print(f"Iteration {i}: {n_changed} labels changed, centre shift {shift}.")
            if n_changed == 0:
                strict = True
                break
            if shift <= tol:
                break
        version = i + 1
        done = [None] * len(states)
        if not strict:
            done = runner.pinned(_states.relabel_state, states, centers, version)
            version += 1
        each = [(d,) for d in done]
        label_blocks = runner.pinned(_states.state_labels, states, version, each=each)
        inertias = runner.pinned(_states.state_inertia, states, centers, version, each=each)
        inertia = float(runner.gather(runner.tree(_blocks.add, inertias)))
        runner.wait(label_blocks)
    except _states.LostBlockState as error:
        raise RuntimeError(
            f"A worker holding blocks of X was lost during the fit, at iteration {i}; the blocks' "
            "states cannot be rebuilt mid-run. Fit again."
        ) from error
    finally:
        states.clear()  # the workers' copies of X, its tiles and the bounds go with them
    return label_blocks, inertia, centers, i + 1
