"""One iteration of each exact algorithm, with the buffers it keeps between iterations.

A step is made from the rows, their weights and the initial centres, and
called once per iteration; ``after_relocation`` fixes its bounds after an
empty cluster was given a point, ``relabel`` labels every row after a
non-strict stop. ``LloydStep`` is brute force (``SparseLloydStep`` on CSR
rows, ``MixedLloydStep`` scored in float32 first); ``HamerlyStep``,
``ElkanStep`` and ``YinyangStep`` skip what their bounds rule out (the bound
tests are in ``_kernels/bounds.py``, ``elkan.py`` and ``yinyang.py``).
"""

import numpy as np

from .._kernels import bounds, elkan, lloyd, mixed, sparse, yinyang
from .._kernels.tiles import tile_stack
from . import layout
from .layout import csr_parts, squared_norms, tiled_copy_storage
from .predict import assign


class LloydStep:
    """One brute-force iteration: every distance, every time.

    Holds what persists across iterations: the labels, the centre sums (see
    ``lloyd.accumulate_changes``) and the per-group scratch.
    """

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        n_clusters, n_features = centers_init.shape
        self.X, self.tiles, self.sample_weight, self.labels = X, tiles, sample_weight, labels
        self.group_partials = np.empty((n_groups, n_clusters, n_features + 2))
        self.group_changed = np.empty(n_groups, dtype=np.int64)
        self.sums = np.zeros((n_clusters, n_features + 2))
        self.weights = np.empty(n_clusters, dtype=X.dtype)

    def __call__(self, first, centers, new_centers):
        return lloyd.lloyd_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            squared_norms(centers),
            self.labels,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )

    def after_relocation(self, centers, new_centers):
        pass

    def relabel(self, centers):
        """Label every row against ``centers`` (after a non-strict convergence)."""
        assign(self.X, centers, self.labels, len(self.group_changed), self.tiles)


class SparseLloydStep(LloydStep):
    """Lloyd's iteration on CSR rows (``sparse.lloyd_iteration``)."""

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        self.parts = csr_parts(X)

    def __call__(self, first, centers, new_centers):
        return sparse.lloyd_iteration(
            self.parts,
            self.sample_weight,
            centers,
            squared_norms(centers),
            self.labels,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )


def scores_in_float32(X, n_groups):
    """Whether Lloyd's iterations on X score in float32 first (``MixedLloydStep``).

    For float64 data whose float32 tiles fit the budget. Measured on make_blobs
    (100,000 samples, k = 8-30): 1.1-1.25x faster at d=3, 1.15-1.5x at d=8-16;
    digits k=10 1.3x, k=64 1.4x.
    """
    if X.dtype != np.float64:
        return False
    n_tiles = lloyd.n_tiles(n_groups, X.shape[0])
    return n_tiles * tile_stack(1, X.shape[1], np.float32).nbytes <= layout.TILED_COPY_BUDGET


class MixedLloydStep(LloydStep):
    """Lloyd's iteration on float64 data, scored in float32 and checked (same labels).

    Keeps a float32 copy of X in tiles and every row's norm, both made by the
    first iteration.
    """

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        self.tiles = tiled_copy_storage(lloyd.n_tiles(n_groups, X.shape[0]), X.shape[1], np.float32)
        self.row_norms = np.empty(X.shape[0])  # written with the tiles

    def __call__(self, first, centers, new_centers):
        return mixed.mixed_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            squared_norms(centers),
            self.row_norms,
            self.labels,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )

    def relabel(self, centers):
        """Label every row against ``centers`` (reads X: the tiles are float32)."""
        assign(self.X, centers, self.labels, len(self.group_changed))


def _bounds_state(X, centers_init):
    """A new state for the bound-based steps, with the run's rounding margin.

    The margin is twice a bound on the rounding error of a score comparison
    (see _kernels/bounds.py). With non-negative weights (lloyd_single sees to it),
    centres after the first iteration are means of rows: their norms are
    bounded by the rows'.
    """
    n_samples, n_features = X.shape
    # Twice a score comparison's rounding: the other half covers the rounding
    # of the exact distances the bounds' tests compute.
    gamma = max(8 * (n_features + 4) * float(np.finfo(X.dtype).eps), 1e-12)
    x_max = float(squared_norms(X).max()) if n_samples else 0.0
    c_max = float(squared_norms(centers_init).max())
    return bounds.new_state(len(centers_init), gamma * (x_max + max(x_max, c_max)))


class HamerlyStep(LloydStep):
    """One Hamerly iteration: per-row bounds, O(n) memory."""

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        self.key = np.empty(X.shape[0])
        self.lower_key = np.empty(X.shape[0])
        self.state = _bounds_state(X, centers_init)

    def __call__(self, first, centers, new_centers):
        return bounds.hamerly_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            squared_norms(centers),
            self.state,
            self.labels,
            self.key,
            self.lower_key,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )

    def after_relocation(self, centers, new_centers):
        bounds.record_drift(centers, new_centers, self.state)

    def relabel(self, centers):
        """Label every row against ``centers``: one more step, its centres unused."""
        self(False, centers, np.empty_like(centers))


class ElkanStep(HamerlyStep):
    """One Elkan iteration: a lower bound per row and centre, O(n k) memory."""

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        n_clusters = len(centers_init)
        self.lower = np.empty((X.shape[0], n_clusters))
        self.center_dist = np.empty((n_clusters, n_clusters))

    def __call__(self, first, centers, new_centers):
        return elkan.elkan_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            squared_norms(centers),
            self.state,
            self.center_dist,
            self.labels,
            self.key,
            self.lower_key,
            self.lower,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )


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

    def __init__(self, X, tiles, sample_weight, labels, n_groups, centers_init):
        super().__init__(X, tiles, sample_weight, labels, n_groups, centers_init)
        self.center_group = center_groups(centers_init)
        self.order = np.argsort(self.center_group, kind="stable").astype(np.int64)
        sizes = np.bincount(self.center_group)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.group_drift = np.zeros(len(sizes))
        self.key = np.empty(X.shape[0])
        self.group_lower = np.empty((len(sizes), X.shape[0]))
        self.state = _bounds_state(X, centers_init)

    def __call__(self, first, centers, new_centers):
        return yinyang.yinyang_iteration(
            self.X,
            self.tiles,
            first,
            self.sample_weight,
            centers,
            squared_norms(centers),
            self.state,
            self.center_group,
            self.order,
            self.offsets,
            self.group_drift,
            self.labels,
            self.key,
            self.group_lower,
            self.group_partials,
            self.group_changed,
            self.sums,
            new_centers,
            self.weights,
        )

    def after_relocation(self, centers, new_centers):
        yinyang.record_drifts(centers, new_centers, self.state, self.center_group, self.group_drift)

    def relabel(self, centers):
        """Label every row against ``centers``: one more step, its centres unused."""
        self(False, centers, np.empty_like(centers))


STEPS = {"lloyd": LloydStep, "elkan": ElkanStep, "hamerly": HamerlyStep, "yinyang": YinyangStep}
