"""What a worker keeps for one block of X across a fit, and the tasks that change it.

A fit gives each block a state on one worker, and every later task on it
runs there (``_cluster.Workers.pinned``), changing it in place:

- ``BlockState``: the block's rows persisted on the worker, and its step
  (``_solvers.steps``, the exact algorithm's per-block entry, with its
  tiled copy and bounds);
- ``StreamedState``: for X larger than the workers' memory, only the
  block's labels; each pass reads the rows from X's source
  (``BlockSource``, the block's own task graph) and lets them go.

Each iteration runs ``step_block``: the state's block from the new centres
and the block's share (its partials summed in group order, the labels
changed). The version counts the changes made to a state; a state that is
not the version the driver expects, or not on its own worker (a worker was
lost and the state made again, or a task was moved), raises
``LostBlockState``.
"""

import numpy as np
from dask.local import get_sync

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


class _State:
    """A version and a home worker: what every block state checks before it answers."""

    def __init__(self):
        self.version = 0
        self.home = _worker_address()

    def check(self, version):
        if self.version != version or _worker_address() != self.home:
            raise LostBlockState(
                f"A block's state is at version {self.version} on {self.home}, the fit expected "
                f"{version} on {_worker_address()}: the worker holding it was lost during the fit."
            )


class BlockState(_State):
    """A block's rows and step, kept on the worker holding the rows."""

    def __init__(self, X, sample_weight, centers_init, algorithm, x_max):
        super().__init__()
        X = np.ascontiguousarray(X)
        self.step = steps.step_for(X, weights_of(X, sample_weight), centers_init, algorithm, x_max)
        self.centers = None

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


class BlockSource:
    """Where a streamed block is read from: its rows' and weights' task graphs, culled to the block.

    ``rows`` and ``weights`` are one-block dask ``Delayed`` objects (weights
    may be None); ``means`` are subtracted from the rows as they are read.
    """

    def __init__(self, rows, weights, means):
        self.parts = [_culled(rows), None if weights is None else _culled(weights)]
        self.means = means

    def read(self):
        """The block's centred rows (C-contiguous) and its weights, in the rows' dtype."""
        rows, weights = (None if part is None else get_sync(*part) for part in self.parts)
        rows = np.ascontiguousarray(center_block(np.asarray(rows), self.means))
        return rows, weights_of(rows, weights)


def _culled(block):
    key = block.key
    return dict(block.__dask_graph__().cull({key})), key


class StreamedState(_State):
    """A block's labels alone: its rows are read from their source for every pass (Lloyd's step)."""

    def __init__(self, source, n_rows):
        super().__init__()
        self.source = source
        self.labels = np.full(n_rows, -1, dtype=np.int32)

    def rows(self):
        return self.source.read()

    def block(self, centers):
        rows, weights = self.source.read()
        step = steps.StreamedLloydStep(rows, weights, centers, self.labels)
        step.block(False, centers)
        return step.buffers.partials()

    def relabel(self, centers):
        rows, _ = self.source.read()
        n_groups = steps.LloydStep.row_groups(rows, len(centers))
        predict.assign(rows, centers, self.labels, n_groups)


def step_block(state, centers, version):
    """One iteration's share of a block: its state's ``block`` from ``centers`` (in place).

    Returns ``(partials, n_changed)``: the corrections to the centre sums,
    weights and counts (n_clusters, n_features + 2), float64, summed over the
    block's row groups in group order, and the labels changed.
    """
    worker_threads()
    state.check(version)
    partials, changed = state.block(centers)
    state.version += 1
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
