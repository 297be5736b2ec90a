"""What a worker keeps for one block of X across a fit, and the tasks that change it.

A fit gives each block a state on one worker, and every later task on it
runs there (``_cluster.Workers.pinned``), changing it in place:

- ``BlockState``: the block's rows persisted on the worker, and its step
  (``_solvers.steps``, the exact algorithm's per-block entry, with its
  tiled copy and bounds);
Each iteration runs ``step_block``: the state's block from the new centres
and the block's share (its partials summed in group order, the labels
changed). The version counts the changes made to a state; a state that is
not the version the driver expects, or not on its own worker (a worker was
lost and the state made again, or a task was moved), raises
``LostBlockState``.

X larger than the workers' memory is streamed instead: a block keeps only
its labels, a new array each pass (``streamed_step`` and the others take
the last labels and return new ones: plain dask tasks, which the scheduler
may move or run again), and every pass computes the block from X's source
(``_solver.StreamedStates``), centres it and lets it go.
"""

import numpy as np

from .._solvers import predict, steps
from ._blocks import center_block, farthest_rows, weights_of, worker_threads


class LostBlockState(RuntimeError):
    """A block's state is not the one the fit left: its worker was lost, or it was copied."""


def _worker_address():
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


class BlockState:
    """A block's rows and step, kept on the worker holding the rows, and its version."""

    def __init__(self, X, sample_weight, centers_init, algorithm, x_max):
        X = np.ascontiguousarray(X)
        self.step = steps.step_for(X, weights_of(X, sample_weight), centers_init, algorithm, x_max)
        self.centers = None
        self.version = 0
        self.home = _worker_address()

    def check(self, version):
        if self.version != version or _worker_address() != self.home:
            raise LostBlockState(
                f"A block's state is at version {self.version} on {self.home}, the fit expected "
                f"{version} on {_worker_address()}: the worker holding it was lost during the fit."
            )

    def __sizeof__(self):
        # What the scheduler weighs before moving it: the block's arrays, not
        # the object's few bytes (so it is never judged cheap to copy).
        return sum(value.nbytes for value in vars(self.step).values() if isinstance(value, np.ndarray)) + sum(
            value.nbytes for value in vars(self.step.buffers).values()
        )

    @property
    def labels(self):
        return self.step.labels

    def rows(self):
        """The block's rows and weights."""
        return self.step.rows, self.step.sample_weight

    def _moved_to(self, centers):
        # Record the move from the last centres to ``centers`` (the bounds' drift).
        first = self.centers is None
        if not first:
            self.step.centers_moved(self.centers, centers)
        self.centers = np.array(centers)
        return first

    def block(self, centers):
        """The step's ``block`` from ``centers``; returns its partials."""
        first = self._moved_to(centers)
        self.step.block(first, centers)
        return self.step.buffers.partials()

    def relabel(self, centers):
        self._moved_to(centers)
        self.step.relabel(centers)


def _centred(X, sample_weight, means):
    """A streamed block's centred rows (C-contiguous) and its weights, in the rows' dtype."""
    rows = np.ascontiguousarray(center_block(np.asarray(X), means))
    return rows, weights_of(rows, sample_weight)


def step_block(state, centers, version):
    """One iteration's share of a block: its state's ``block`` from ``centers`` (in place).

    Returns ``(partials, n_changed)``: the corrections to the centre sums,
    weights and counts (n_clusters, n_features + 2), float64, summed over the
    block's row groups in group order, and the labels changed.
    """
    worker_threads()
    state.check(version)
    share = _share(*state.block(centers))
    state.version += 1
    return share


def _share(partials, changed):
    total = np.zeros(partials.shape[1:])
    for group in partials:  # group order
        total += group
    return total, int(changed.sum())


def relabel_state(state, centers, version):
    """Label the block's rows against the final centres (after a non-strict stop)."""
    worker_threads()
    state.check(version)
    state.relabel(centers)
    state.version += 1
    return True


def state_labels(state, done, version):
    """The block's labels (a copy); ``done`` orders it after a relabel."""
    state.check(version)
    return state.labels.copy()


def state_inertia(state, done, centers, version):
    """The block's weighted squared distances to its rows' centres, summed."""
    worker_threads()
    state.check(version)
    rows, weights = state.rows()
    return predict.total_inertia(rows, weights, centers, state.labels)


def state_farthest(state, offset, centers, n, version):
    """``_blocks.farthest_rows`` of the block's rows and labels."""
    state.check(version)
    rows, weights = state.rows()
    return farthest_rows(rows, weights, centers, state.labels, n, offset)


def streamed_step(labels, X, sample_weight, means, centers):
    """One iteration's share of a streamed block (see ``step_block``), and its new labels.

    ``X`` and ``sample_weight``: the block as read from its source, centred
    here by ``means``. ``labels``: the block's from the last iteration (None
    before the first), not changed: each pass makes a new array, so a task
    run again (its worker lost) gives the same answer.
    """
    worker_threads()
    rows, weights = _centred(X, sample_weight, means)
    labels = np.full(len(rows), -1, dtype=np.int32) if labels is None else labels.copy()
    step = steps.StreamedLloydStep(rows, weights, centers, labels)
    step.block(False, centers)
    return labels, _share(*step.buffers.partials())


def streamed_relabel(labels, X, sample_weight, means, centers):
    """A streamed block's labels against the final centres (a new array), and its inertia.

    The inertia comes from the same read of the block: out of core, a pass
    over X saved.
    """
    worker_threads()
    rows, weights = _centred(X, sample_weight, means)
    labels = labels.copy()
    predict.assign(rows, centers, labels, steps.LloydStep.row_groups(rows, len(centers)))
    return labels, predict.total_inertia(rows, weights, centers, labels)


def streamed_inertia(labels, X, sample_weight, means, centers):
    """``state_inertia`` of a streamed block."""
    worker_threads()
    rows, weights = _centred(X, sample_weight, means)
    return predict.total_inertia(rows, weights, centers, labels)


def streamed_farthest(labels, X, sample_weight, means, offset, centers, n):
    """``state_farthest`` of a streamed block."""
    rows, weights = _centred(X, sample_weight, means)
    return farthest_rows(rows, weights, centers, labels, n, offset)
