"""Lloyd's loop over the blocks of a dask array (``exact.lloyd_single``'s, run block by block).

``single_run`` is one run from given centres: every block's state lives on
a worker (``_states``: the rows and step persisted, or the labels alone
while the rows stream from their source), each iteration's shares are reduced in
block order and the centres made by ``lloyd.finish_iteration``; an empty
cluster gets one of the farthest rows (``relocate``). ``same_clustering`` is
scikit-learn's test between two runs, from the blocks' label pairs.
"""

import operator

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


class KeptStates:
    """The blocks' states kept on the workers (``_states.BlockState``), changed in place.

    Every task on a state runs on its worker (``pinned``) and names the
    version it expects: a state made again elsewhere raises ``LostBlockState``.
    """

    def __init__(self, runner, rows, weights, centers, algorithm, x_max):
        self.runner = runner
        each = [(w,) for w in weights]
        self.states = runner.spread(_states.BlockState, rows, centers, algorithm, x_max, each=each)
        runner.wait(self.states)
        self.version = 0

    def _pinned(self, func, *args, each=None):
        return self.runner.pinned(func, self.states, *args, each=each)

    def step(self, centers):
        """Each block's share of the iteration from ``centers``."""
        shares = self._pinned(_states.step_block, centers, self.version)
        self.version += 1
        return shares

    def relabel(self, centers):
        """Every row labelled against ``centers``; returns what later tasks wait for."""
        done = self._pinned(_states.relabel_state, centers, self.version)
        self.version += 1
        return done

    def labels(self, done):
        return self._pinned(_states.state_labels, self.version, each=[(d,) for d in done])

    def inertia(self, done, centers):
        return self._pinned(_states.state_inertia, centers, self.version, each=[(d,) for d in done])

    def farthest(self, offsets, centers, n):
        each = [(offset,) for offset in offsets]
        return self._pinned(_states.state_farthest, centers, n, self.version, each=each)

    def clear(self):
        self.states.clear()  # the workers' copies of X, its tiles and the bounds go with them


class StreamedStates:
    """The blocks of X computed from its source for every pass; their labels are futures, new each pass.

    A pass submits, block by block, the block's computation and the task
    that reads it, so the scheduler runs each block's reader soon after it
    (dask's root-task queueing keeps a worker to a block or two at a time).
    Plain dask tasks: the scheduler may move one, or run it again after a
    worker is lost (from the previous labels), with the same answer.
    """

    def __init__(self, runner, blocks, means):
        self.runner, self.blocks, self.means = runner, blocks, means
        self.label_blocks = [None] * len(blocks.rows)
        self.relabelled_inertias = None  # the blocks' inertias, from the relabel's read

    def _each(self, func, *args, each=None):
        each = [()] * len(self.label_blocks) if each is None else each
        runner, out = self.runner, []
        for labels, rows, weights, own in zip(
            self.label_blocks, self.blocks.rows, self.blocks.weights, each, strict=True
        ):
            rows, weights = runner.blocks([rows])[0], runner.blocks([weights])[0]
            out.append(runner.submit(func, labels, rows, weights, self.means, *own, *args))
        return out

    def step(self, centers):
        pairs = self._each(_states.streamed_step, centers)
        self.label_blocks = [self.runner.submit(operator.getitem, pair, 0) for pair in pairs]
        return [self.runner.submit(operator.getitem, pair, 1) for pair in pairs]

    def relabel(self, centers):
        pairs = self._each(_states.streamed_relabel, centers)
        self.label_blocks = [self.runner.submit(operator.getitem, pair, 0) for pair in pairs]
        self.relabelled_inertias = [self.runner.submit(operator.getitem, pair, 1) for pair in pairs]
        return self.label_blocks

    def labels(self, done):
        return list(self.label_blocks)

    def inertia(self, done, centers):
        # After a relabel (against these same final centres) its read gave them.
        if self.relabelled_inertias is not None:
            return self.relabelled_inertias
        return self._each(_states.streamed_inertia, centers)

    def farthest(self, offsets, centers, n):
        return self._each(_states.streamed_farthest, centers, n, each=[(offset,) for offset in offsets])

    def clear(self):
        self.label_blocks = []
        self.relabelled_inertias = None


def relocate(runner, states, offsets, centers_old, sums, weights, n_empty):
    """Give each empty cluster one of the rows farthest from its centre, in place.

    The candidates are the farthest rows of each block, merged farthest first,
    ties to the lower row index. One process pairs empty clusters with the
    farthest rows in numpy's argpartition order: with two or more clusters
    empty at once, or tied distances, the pairing (so the labels' numbering)
    can differ from fastkm.KMeans's.
    """
    empty = np.flatnonzero(weights == 0)
    parts = states.farthest(offsets[:-1], centers_old, n_empty)
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

    ``place_states(centers_init)`` gives the blocks' states (``KeptStates``
    or ``StreamedStates``). Returns the label blocks (futures on a cluster),
    the inertia, the centres and the iterations run.
    """
    n_clusters, n_features = centers_init.shape
    centers = np.array(centers_init, order="C")
    new_centers = np.empty_like(centers)
    sums = np.zeros((n_clusters, n_features + 2))
    weights = np.empty(n_clusters, dtype=centers.dtype)
    states = place_states(centers)
    strict = False
    try:
        for i in range(max_iter):
            shares = states.step(centers)
            partials, n_changed = runner.gather(runner.tree(_blocks.combine, shares))
            n_changed, n_empty, shift = lloyd.finish_iteration(
                partials[None], np.array([n_changed], dtype=np.int64), sums, centers, new_centers, weights
            )
            if n_empty:
                # new_centers holds the sums: relocate, then average, as in one process.
                relocate(runner, states, offsets, centers, new_centers, weights, n_empty)
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
        done = states.relabel(centers) if not strict else [None] * len(offsets[:-1])
        label_blocks = states.labels(done)
        inertia = float(runner.gather(runner.tree(_blocks.add, states.inertia(done, centers))))
        runner.wait(label_blocks)
    except _states.LostBlockState as error:
        raise RuntimeError(
            f"A worker holding blocks of X was lost during the fit, at iteration {i}; the blocks' "
            "states cannot be rebuilt mid-run. Fit again."
        ) from error
    finally:
        states.clear()
    return label_blocks, inertia, centers, i + 1
