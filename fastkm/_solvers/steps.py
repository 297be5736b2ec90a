"""One iteration of each exact algorithm, with the buffers it keeps between iterations.

A step is made from the rows, their weights and the initial centres
(``step_for`` picks the class). An iteration is two halves:

- ``block(first, centers)``, the per-block entry: the rows' new labels (in
  place) and, per row group, the corrections for the rows whose label
  changed (``lloyd.accumulate_changes``: the weighted row sums, the weights,
  and the count of rows of non-zero weight) and the labels changed. It
  reads this step's rows and the centres, so a block of rows, anywhere,
  gives its share of an iteration;
- ``finish_blocks``, the reduction: the blocks' group partials added to
  the centre sums in block order, then group order (never in the order
  threads or workers finish), the new centres and the total shift
  (``lloyd.finish_iteration``). The inertia of a block is
  ``predict.total_inertia`` on its rows, summed in block order too.

Calling a step runs both halves on its own rows as one block; on at most
``SUMS_AS_SCIKIT_LEARN`` rows of the data's own (not merged distinct rows)
the second half makes the sums afresh as scikit-learn does instead. A
brute-force step on few rows, or on a tiled copy with little work an
iteration, runs its iterations in compiled slices (``run``). After the
centres are final, ``centers_moved`` does the bookkeeping (the bounds'
drifts; the call does it itself unless a cluster was left empty, whose
relocation comes first); ``relabel`` labels every row after a non-strict
stop (the step's sums then no longer match its labels: it is done).

Run on several blocks (``tests/test_blocks.py`` does it in one process),
each block is a step made on its rows with ``x_max``, a bound on the squared
norm of all the data's rows (the bounds' rounding margin covers every
centre); the weights must be non-negative everywhere (``lloyd_single``
falls back to Lloyd's otherwise); the caller keeps the one ``sums`` it
passes to ``finish_blocks`` (the blocks' own stay unused) and, once the
centres are final (after any relocation), calls every block's
``centers_moved`` before the next ``block``.

The buffers every step keeps are one ``Buffers`` object, so a class states
only what its algorithm or its data layout adds: ``LloydStep`` is brute force
(``SparseLloydStep`` on CSR rows, ``MixedLloydStep`` scored in float32
first, ``StreamedLloydStep`` on rows read for one iteration);
``HamerlyStep``, ``ElkanStep`` and ``YinyangStep`` skip what their bounds
rule out (the bound tests are kernels: ``_kernels/bounds.py``,
``elkan.py`` and ``yinyang.py``).
"""

import dataclasses

import numpy as np

from .._kernels import bounds, elkan, lloyd, lloyd_run, mixed, small_lloyd, sparse, yinyang
from .._kernels._jit import SERIAL_WORK
from .._kernels.tiles import tile_bytes
from .._validation import is_sparse
from . import layout
from .layout import (
    csr_n_groups,
    csr_parts,
    n_groups_for,
    no_tiles,
    squared_norms,
    tile_storage,
    tiled_copy_storage,
)
from .predict import assign


@dataclasses.dataclass
class Buffers:
    """What every exact step keeps from one iteration to the next.

    labels : (n_rows,) int32, each row's centre (-1 before the first iteration)
    group_partials : (n_groups, n_clusters, n_features + 2) float64, a row
        group's corrections to the centre sums, weights and counts
    group_changed : (n_groups,) int64, labels a group changed
    sums : (n_clusters, n_features + 2), the centre sums, kept up to date
        from the rows whose label changed (see ``lloyd.accumulate_changes``);
        a step run as one of several blocks leaves it to the caller, and a
        step that makes its sums as scikit-learn (``sums_as_scikit_learn``)
        leaves it unused
    weights : (n_clusters,), dtype of the rows, each centre's total weight
    """

    labels: np.ndarray
    group_partials: np.ndarray
    group_changed: np.ndarray
    sums: np.ndarray
    weights: np.ndarray

    @classmethod
    def new(cls, n_rows, n_groups, n_clusters, n_features, dtype):
        return cls(
            labels=np.full(n_rows, -1, dtype=np.int32),
            group_partials=np.empty((n_groups, n_clusters, n_features + 2)),
            group_changed=np.empty(n_groups, dtype=np.int64),
            sums=np.zeros((n_clusters, n_features + 2)),
            weights=np.empty(n_clusters, dtype=dtype),
        )

    def partials(self):
        """The arguments every per-block kernel ends with: what it writes for each row group."""
        return self.group_partials, self.group_changed


def finish_blocks(blocks, sums, centers, new_centers, weights):
    """The reduction after the per-block entries: the blocks' partials into the centre sums.

    blocks : the ``Buffers`` of each block's step, in block order
    sums : (n_clusters, n_features + 2) float64 INOUT, the centre sums of the
        labels before (zeros before the first iteration)
    centers, new_centers, weights : as ``lloyd.finish_iteration``

    Groups are added block by block, each block's in group order, so the
    result depends on the blocks' order alone. Returns ``(n_changed,
    n_empty, center_shift)``; with an empty cluster ``new_centers`` holds the
    sums (see ``lloyd.finish_iteration``): the caller relocates, averages,
    then calls each block's ``centers_moved``.
    """
    if len(blocks) == 1:
        group_partials, group_changed = blocks[0].partials()
    else:
        group_partials = np.concatenate([block.group_partials for block in blocks])
        group_changed = np.concatenate([block.group_changed for block in blocks])
    return lloyd.finish_iteration(group_partials, group_changed, sums, centers, new_centers, weights)


# scikit-learn makes its centre sums afresh every iteration, in the data's
# dtype: one partial per 256-row chunk (``small_lloyd.chunked_sums``) on each of its
# OpenMP threads, added up in the order the threads finish. Up to two chunks
# that order cannot change a bit (0 + a + b == 0 + b + a), so on two or more
# threads its sums are a function of the rows alone; up to this many rows
# fastkm makes them the same way, and so follows scikit-learn through the
# ties its rounding decides (identical rows whose mean is not quite the row,
# a row equidistant from two centres in exact arithmetic). On one thread
# scikit-learn sums two chunks as one; beyond two chunks its sums depend on
# its thread count and timing, and fastkm keeps its own (float64 sums,
# corrected by the rows that change label).
SUMS_AS_SCIKIT_LEARN = 2 * 256

# Up to this many multiply-adds an iteration (n_rows x n_clusters x
# n_features), brute force on rows kept in tiles runs its iterations in
# compiled slices (``lloyd_run.run``): there the Python round of an
# iteration costs a third of its arithmetic (digits, k=10: 1.2 million).
WHOLE_RUN_WORK = 1 << 22


class LloydStep:
    """One brute-force iteration: every distance, every time.

    Keeps X in tiles (a feature-major copy, made by the first iteration) when
    within ``layout.TILED_COPY_BUDGET``.
    """

    def __init__(self, rows, sample_weight, centers_init, x_max=None):
        # x_max: a bound on the squared norm of all the data's rows (``rows``
        # or the data they are a block of); None: measure ``rows``'. Used by the bound
        # steps only (``_bounds_state``): their rounding margin must cover
        # every centre, and centres are means of all the rows.
        n_rows, n_features = rows.shape
        n_clusters = len(centers_init)
        self.rows, self.sample_weight, self.x_max = rows, sample_weight, x_max
        self.sums_as_scikit_learn = n_rows <= SUMS_AS_SCIKIT_LEARN
        self._shifts = np.empty(n_clusters, dtype=rows.dtype)
        # Brute force on few rows and little work (a serial fit anyway): whole
        # runs reading X in place (``small_lloyd.run``). Not for the
        # subclasses, whose iterations do more than this.
        self.runs_whole = (
            type(self) is LloydStep
            and self.sums_as_scikit_learn
            and n_rows * n_clusters * n_features < SERIAL_WORK
        )
        self.n_groups = self.row_groups(rows, n_clusters)
        self.tiles = self._tiles()
        self.buffers = Buffers.new(n_rows, self.n_groups, n_clusters, n_features, rows.dtype)
        if not self.sums_as_scikit_learn and type(self) in (LloydStep, MixedLloydStep):
            # Rows kept in tiles, little work an iteration: whole too (``lloyd_run``).
            work = n_rows * n_clusters * n_features
            self.runs_whole = self.tiles.shape[0] > 0 and work <= WHOLE_RUN_WORK

    @staticmethod
    def row_groups(rows, n_clusters):
        """The row groups this step cuts ``rows`` into (a function of their shape alone)."""
        n_rows, n_features = rows.shape
        return n_groups_for(n_rows, n_clusters, n_features)

    def _tiles(self):
        # Called by __init__ before a subclass's own attributes: reads rows,
        # n_groups and runs_whole only. A whole small run reads X in place.
        return no_tiles(self.rows) if self.runs_whole else tile_storage(self.rows, self.n_groups)

    @property
    def labels(self):
        return self.buffers.labels

    @property
    def weights(self):
        return self.buffers.weights

    def _inputs(self, first, centers):
        """The arguments every dense per-block kernel starts with."""
        return self.rows, self.tiles, first, self.sample_weight, centers, squared_norms(centers)

    def block(self, first, centers):
        """The per-block entry: label the rows against ``centers``, each row group's partials.

        ``first`` on the first iteration (fills the tiled copy; the labels
        are all -1). Writes the labels and ``buffers.partials()``.
        """
        lloyd.assign_labels(*self._inputs(first, centers), self.labels, *self.buffers.partials())

    def __call__(self, first, centers, new_centers):
        """One iteration from ``centers``: new centres (or, with an empty cluster, their sums).

        Returns the labels changed, the clusters left empty and the total
        squared shift of the centres (see ``lloyd.finish_iteration``). On
        at most ``SUMS_AS_SCIKIT_LEARN`` rows the sums are made afresh as
        scikit-learn makes them, and the shift is scikit-learn's too
        (``center_shift``).
        """
        self.block(first, centers)
        buffers = self.buffers
        if not self.sums_as_scikit_learn:
            result = finish_blocks([buffers], buffers.sums, centers, new_centers, buffers.weights)
        else:
            sources = self._row_source(), self.sample_weight, self.labels, buffers.group_changed
            outputs = new_centers, self.weights, self._shifts
            result = small_lloyd.finish_as_scikit_learn(*sources, centers, *outputs)
        if result[1] == 0:
            self.centers_moved(centers, new_centers)
        return result

    def on_merged_rows(self):
        """This step, made on distinct rows with their copies' weights merged (``distinct_rows``).

        scikit-learn sums every copy of a row: merged rows cannot follow
        its sums, nor run whole (a whole run labels only the merged rows).
        """
        if self.runs_whole:
            reads_in_place = self.sums_as_scikit_learn
            self.runs_whole = False
            if reads_in_place:
                self.tiles = self._tiles()  # the tiled copy a run step by step keeps
        self.sums_as_scikit_learn = False
        return self

    def _row_source(self):
        """The rows as the kernels take them (dense, or CSR's parts)."""
        return self.rows

    def run(self, start, stop, last_slice, tol, centers, new_centers):
        """Iterations ``start .. stop - 1`` in one call, if ``runs_whole``; ``last_slice``: to ``max_iter``.

        ``small_lloyd.run`` on rows whose sums are made as scikit-learn's,
        ``lloyd_run.run`` on rows kept in tiles. Returns ``(i, n_changed,
        status, inertia)``: the last iteration run, the labels it changed,
        ``small_lloyd``'s ``RAN_OUT``, ``STRICT``, ``WITHIN_TOL`` or
        ``EMPTY``, and the fit's inertia if the run ended the fit (the rows
        then labelled against the last centres, as ``relabel`` would), else
        NaN. The last centres are in ``centers``; after ``EMPTY``,
        iteration ``i``'s centres, and ``new_centers`` holds its sums, as a
        call of this step would leave them.
        """
        b = self.buffers
        # Plain scalars: tol may be a numpy scalar.
        start, stop, last_slice, tol = int(start), int(stop), bool(last_slice), float(tol)
        if self.sums_as_scikit_learn:
            inputs = self.rows, self.sample_weight, centers, new_centers, b.labels, b.weights
            return small_lloyd.run(*inputs, self._shifts, start, stop, last_slice, tol, self.n_groups)
        buffers = b.labels, b.group_partials, b.group_changed, b.sums, b.weights
        inputs = self.rows, self.tiles, self.sample_weight, centers, new_centers, self._tile_norms()
        return lloyd_run.run(*inputs, buffers, start, stop, last_slice, tol)

    def _tile_norms(self):
        """The tiles' largest row norms a step keeps with them (``MixedLloydStep``); none here."""
        return np.empty(0)

    def center_shift(self, centers, new_centers):
        """The total squared shift from ``centers`` to ``new_centers``, the loop's convergence test.

        With ``sums_as_scikit_learn``, scikit-learn's, bit for bit
        (``small_lloyd.center_shift_as_scikit_learn``), so the test against
        ``tol`` rounds as scikit-learn's does.
        """
        if not self.sums_as_scikit_learn:
            return lloyd.center_shift_total(centers, new_centers)
        return small_lloyd.center_shift_as_scikit_learn(centers, new_centers, self._shifts)

    def centers_moved(self, centers, new_centers):
        """Record the move from ``centers`` to the final ``new_centers`` (bounds' drift; Lloyd has none)."""

    def relabel(self, centers):
        """Label every row against ``centers`` (after a non-strict convergence)."""
        assign(self.rows, centers, self.labels, self.n_groups, self.tiles)

    def _handed_to(self, step):
        """``step``, made to go on from this step's labels, centre sums and weights.

        Both cut the same rows into the same row groups, so ``step`` takes
        this step's buffers as they are, and its way of making the sums (a
        step on merged rows, ``on_merged_rows``, keeps its own).
        """
        step.buffers = self.buffers
        step.sums_as_scikit_learn = self.sums_as_scikit_learn
        return step


class StreamedLloydStep(LloydStep):
    """Lloyd's per-block entry on rows read for this one iteration (a block streamed from disk).

    Scores X as it is (no tiled copy: the rows are read once); ``labels``
    are the block's from the last iteration, updated in place.
    """

    def __init__(self, rows, sample_weight, centers_init, labels):
        super().__init__(rows, sample_weight, centers_init)
        self.buffers.labels = labels

    def _tiles(self):
        return no_tiles(self.rows)


class SparseLloydStep(LloydStep):
    """Lloyd's iteration on CSR rows (``sparse.assign_labels``); fewer row groups if it pays."""

    def __init__(self, rows, sample_weight, centers_init, x_max=None):
        super().__init__(rows, sample_weight, centers_init, x_max)
        self.parts = csr_parts(rows)

    @staticmethod
    def row_groups(rows, n_clusters):
        return csr_n_groups(rows, n_clusters, LloydStep.row_groups(rows, n_clusters))

    def _tiles(self):
        return None

    def _row_source(self):
        return self.parts

    def block(self, first, centers):
        inputs = self.parts, self.sample_weight, centers, squared_norms(centers)
        sparse.assign_labels(*inputs, self.labels, *self.buffers.partials())


# Below this many multiply-adds an iteration (n_samples x n_clusters x
# n_features), Lloyd scores in float64 alone: the float32 pass's set-up (its
# centres, norms and rounding bound, each iteration) costs more than it saves.
# The seeds' blobs (300 x 2, k=4): a fit 146 to 132 us; digits k=10 (1.2
# million) stays float32-first (764 us against 792).
FLOAT32_FIRST_WORK = 1 << 16


def scores_in_float32(X, n_groups, n_clusters):
    """Whether Lloyd's iterations on X score in float32 first (``MixedLloydStep``).

    For float64 data whose float32 tiles fit the budget, from
    ``FLOAT32_FIRST_WORK`` multiply-adds an iteration. Measured on make_blobs
    (100,000 samples, k = 8-30): 1.1-1.25x faster at d=3, 1.15-1.5x at d=8-16;
    digits k=10 1.3x, k=64 1.4x.
    """
    if X.dtype != np.float64 or X.shape[0] * X.shape[1] * n_clusters < FLOAT32_FIRST_WORK:
        return False
    n_tiles = lloyd.n_tiles(n_groups, X.shape[0])
    return n_tiles * tile_bytes(X.shape[1], np.float32) <= layout.TILED_COPY_BUDGET


class MixedLloydStep(LloydStep):
    """Lloyd's iteration on float64 data, scored in float32 and checked (same labels).

    Keeps a float32 copy of X in tiles and each tile's largest row norm,
    both made by the first iteration.
    """

    def __init__(self, rows, sample_weight, centers_init, x_max=None):
        super().__init__(rows, sample_weight, centers_init, x_max)
        self.tile_norms = np.empty(self.tiles.shape[0])  # written with the tiles

    def _tiles(self):
        n_tiles = lloyd.n_tiles(self.n_groups, self.rows.shape[0])
        return tiled_copy_storage(n_tiles, self.rows.shape[1], np.float32)

    # No bounds (see mixed.mixed_block); BoundingLloydStep asks for them.
    bounds = (np.empty(0), np.empty(0), np.empty(0), 0.0)

    def block(self, first, centers):
        inputs = self._inputs(first, centers)
        mixed.mixed_block(*inputs, self.tile_norms, self.labels, self.bounds, *self.buffers.partials())

    def relabel(self, centers):
        """Label every row against ``centers`` (reads X: the tiles are float32)."""
        assign(self.rows, centers, self.labels, self.n_groups)

    def _tile_norms(self):
        return self.tile_norms


class BoundingLloydStep(MixedLloydStep):
    """``algorithm="auto"``'s brute force before Hamerly's: Lloyd's iterations, scored in float32.

    The float32 scores of an iteration give every row's Hamerly bounds on
    the way (see ``mixed.mixed_block``), so ``to_hamerly`` carries on with
    Hamerly's iterations without a full pass of their own to set the bounds
    up. The iteration after one that changed at most ``handover`` of the
    labels (a share of the rows) sets the bounds, and ``bounded`` then tells
    the caller to hand over. With ``handover`` 1, the first iteration does:
    a run that ends within an iteration or two costs what brute force
    costs, a longer one what the bounds cost; X is read as it is (no tiled
    copy for one iteration; nor does Hamerly's). With less, where a
    brute-force iteration is cheap, the early iterations (many labels
    changing, which the bounds would rescore) stay brute force on a float32
    copy of X in tiles, as ``MixedLloydStep``'s.
    """

    def __init__(self, rows, sample_weight, centers_init, x_max=None, handover=1.0):
        # Read by _tiles, which the base class calls.
        self.handover = handover
        super().__init__(rows, sample_weight, centers_init, x_max)
        self.state = _bounds_state(rows, centers_init, x_max)
        margin = float(self.state[bounds.SCALARS, bounds.MARGIN])
        n_rows = rows.shape[0]
        self.bounds = (np.empty(n_rows), np.empty(n_rows), self.state[bounds.HALF_SEP], margin)
        # This iteration sets the bounds; the last one did.
        self.bounding, self.bounded = handover >= 1.0, False

    def _tiles(self):
        if self.handover < 1.0:
            return super()._tiles()
        return np.empty((0, 0, 0), dtype=np.float32)

    def block(self, first, centers):
        inputs = self._inputs(first, centers)
        found = self.bounds if self.bounding else MixedLloydStep.bounds
        mixed.mixed_block(*inputs, self.tile_norms, self.labels, found, *self.buffers.partials())

    def __call__(self, first, centers, new_centers):
        result = super().__call__(first, centers, new_centers)
        self.bounded = self.bounding
        self.bounding = result[0] <= self.handover * self.rows.shape[0]
        return result

    def to_hamerly(self, centers, new_centers):
        """The Hamerly step that carries on after this iteration, from ``centers`` to ``new_centers``.

        It takes the labels, the centre sums and the bounds, so its
        corrections go on from the same sums (every algorithm goes through
        the same labels: the same bits).
        """
        self.state[bounds.SCALARS, bounds.FIRST] = 0.0
        step = self._handed_to(
            HamerlyStep(self.rows, self.sample_weight, centers, self.x_max, state=self.state)
        )
        step.key, step.lower_key = self.bounds[0], self.bounds[1]
        step.centers_moved(centers, new_centers)
        return step


def _bounds_state(X, centers_init, x_max=None):
    """A new state for the bound-based steps, with the run's rounding margin.

    The margin is twice a bound on the rounding error of a score comparison
    (see _kernels/bounds.py). With non-negative weights (lloyd_single sees to it),
    centres after the first iteration are means of rows: their norms are
    bounded by the rows'. ``x_max`` bounds every row's squared norm (all
    the data's rows when X is a block of them, whose weights are all
    non-negative too); without it X's own rows are measured, a pass over X.
    """
    n_samples, n_features = X.shape
    # Twice a score comparison's rounding: the other half covers the rounding
    # of the exact distances the bounds' tests compute.
    gamma = max(8 * (n_features + 4) * float(np.finfo(X.dtype).eps), 1e-12)
    if x_max is None:
        x_max = float(squared_norms(X).max()) if n_samples else 0.0
    c_max = float(squared_norms(centers_init).max())
    return bounds.new_state(len(centers_init), gamma * (x_max + max(x_max, c_max)))


class HamerlyStep(LloydStep):
    """One Hamerly iteration: per-row bounds, O(n) memory.

    Keeps no copy of X: the first iteration reads it chunk by chunk, the
    later ones gather the few rows their bounds leave undecided from X
    itself (each row's values side by side), which measured 0-22% faster
    than gathering them from a tiled copy, and spares the copy.
    """

    def __init__(self, rows, sample_weight, centers_init, x_max=None, state=None):
        super().__init__(rows, sample_weight, centers_init, x_max)
        self.key = np.empty(rows.shape[0])
        self.lower_key = np.empty(rows.shape[0])
        # A state handed over (BoundingLloydStep.to_hamerly) keeps its margin.
        self.state = _bounds_state(rows, centers_init, x_max) if state is None else state

    def _tiles(self):
        return no_tiles(self.rows)

    def block(self, first, centers):
        bound = self.state, self.labels, self.key, self.lower_key
        bounds.hamerly_block(*self._inputs(first, centers), *bound, *self.buffers.partials())

    def centers_moved(self, centers, new_centers):
        bounds.record_drift(centers, new_centers, self.state)

    def relabel(self, centers):
        """Label every row against ``centers``: one more block, its partials unused."""
        self.block(False, centers)


class ElkanStep(HamerlyStep):
    """One Elkan iteration: a lower bound per row and centre, O(n k) memory.

    Reads X in tiles only once: no copy is kept for it (as Hamerly's).
    """

    def __init__(self, rows, sample_weight, centers_init, x_max=None):
        super().__init__(rows, sample_weight, centers_init, x_max)
        n_clusters = len(centers_init)
        self.lower = np.empty((rows.shape[0], n_clusters))
        self.center_dist = np.empty((n_clusters, n_clusters))

    def block(self, first, centers):
        bound = self.state, self.center_dist, self.labels, self.key, self.lower_key, self.lower
        elkan.elkan_block(*self._inputs(first, centers), *bound, *self.buffers.partials())


# Yinyang's centre groups: about this many centres each. Ding et al. suggest
# ten; here a group's bookkeeping per row costs about as much as scoring a
# dozen centres, and 32 measured faster than 10 or 20 on every shape tried.
_CENTERS_PER_GROUP = 32
# At most this many groups: the bounds take n_samples x groups float64.
_MAX_CENTER_GROUPS = 32


def center_groups(centers, n_iter=5):
    """Yinyang's grouping: a few k-means iterations on the centres themselves.

    Groups of nearby centres drift together, which keeps their bounds tight.
    Deterministic (numpy on k rows, from evenly spaced centres); empty groups
    are dropped. Only the speed depends on it, never the result.

    Returns each centre's group, numbered 0 to n_groups - 1.
    """
    n_clusters = centers.shape[0]
    n_center_groups = min(max(1, n_clusters // _CENTERS_PER_GROUP), _MAX_CENTER_GROUPS)
    C = np.asarray(centers, dtype=np.float64)
    group = np.zeros(n_clusters, dtype=np.int64)
    if n_center_groups > 1:
        means = C[np.linspace(0, n_clusters - 1, n_center_groups).astype(np.int64)]
        for _ in range(n_iter):
            distances = ((C[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
            group = distances.argmin(axis=1)
            for g in np.unique(group):
                means[g] = C[group == g].mean(axis=0)
    return np.unique(group, return_inverse=True)[1].astype(np.int64)


class YinyangStep(LloydStep):
    """One Yinyang iteration: a lower bound per row and group of centres."""

    def __init__(self, rows, sample_weight, centers_init, x_max=None):
        super().__init__(rows, sample_weight, centers_init, x_max)
        self.center_group = center_groups(centers_init)
        self.order = np.argsort(self.center_group, kind="stable").astype(np.int64)
        sizes = np.bincount(self.center_group)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.group_drift = np.zeros(len(sizes))
        self.key = np.empty(rows.shape[0])
        self.group_lower = np.empty((len(sizes), rows.shape[0]))
        self.state = _bounds_state(rows, centers_init, x_max)

    def block(self, first, centers):
        groups = self.center_group, self.order, self.offsets, self.group_drift
        bound = self.state, *groups, self.labels, self.key, self.group_lower
        yinyang.yinyang_block(*self._inputs(first, centers), *bound, *self.buffers.partials())

    def _tiles(self):
        # As Hamerly's: the rows the bounds leave undecided are read from X itself.
        return no_tiles(self.rows)

    def centers_moved(self, centers, new_centers):
        yinyang.record_drifts(centers, new_centers, self.state, self.center_group, self.group_drift)

    def relabel(self, centers):
        """Label every row against ``centers``: one more block, its partials unused."""
        self.block(False, centers)


STEPS = {
    "lloyd": LloydStep,
    "elkan": ElkanStep,
    "hamerly": HamerlyStep,
    "yinyang": YinyangStep,
}


def step_for(rows, sample_weight, centers_init, algorithm, x_max=None, handover=1.0):
    """The step that runs ``algorithm`` on ``rows``.

    ``algorithm`` is "lloyd", "elkan", "hamerly", "yinyang", or
    "lloyd-then-hamerly" (``BoundingLloydStep``, which hands over to Hamerly's
    after the first iteration that changed at most ``handover`` of the labels,
    a share of the rows; on float64 data, else Hamerly's).

    CSR rows take one kernel whatever the algorithm (every algorithm gives
    Lloyd's iterates); Lloyd's on float64 data scores in float32 first where
    its tiles fit (``scores_in_float32``). ``x_max``, if given, bounds the
    squared norm of every row of the data (``rows``, or the data they are one
    block of, whose weights must then all be non-negative), to within a
    rounding: the largest as numpy's einsum gives it will do, the margin
    built on it being twice what the score comparisons need.
    """
    if is_sparse(rows):
        return SparseLloydStep(rows, sample_weight, centers_init, x_max)
    n_groups = MixedLloydStep.row_groups(rows, len(centers_init))
    if algorithm == "lloyd" and scores_in_float32(rows, n_groups, len(centers_init)):
        return MixedLloydStep(rows, sample_weight, centers_init, x_max)
    if algorithm == "lloyd-then-hamerly":
        if rows.dtype != np.float64:
            return HamerlyStep(rows, sample_weight, centers_init, x_max)  # the float32 scores are the data's
        return BoundingLloydStep(rows, sample_weight, centers_init, x_max, handover)
    return STEPS[algorithm](rows, sample_weight, centers_init, x_max)
