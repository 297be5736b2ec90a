"""K-means solvers: the loops, the seeding and the labelling the estimators call.

Arrays arrive validated (C-contiguous float32/float64, weights of the same
dtype). The solvers allocate buffers and call kernels; they know nothing of
estimators, which import from this face only. The rooms:

- ``layout``: row groups, CSR parts, squared norms, the tiled copy's budget;
- ``centering``: centring X on its means, the absolute tolerance;
- ``seeding``: k-means++ and the other initialisations;
- ``distinct``: duplicate rows merged before Lloyd's loop;
- ``steps``: one iteration of each exact algorithm and the buffers it keeps:
  the per-block entry (``block``) and the reduction in block order (``finish_blocks``);
- ``exact``: KMeans's loop (n_init runs, convergence, empty-cluster
  relocation, ``algorithm="auto"``);
- ``minibatch``: MiniBatchKMeans's initialisation, loop and partial_fit step;
- ``predict``: labels, inertia and distances against fixed centres.
"""

from .centering import center_data, tolerance
from .exact import kmeans_fit, uses_bounds
from .layout import row_squared_norms
from .minibatch import minibatch_fit, minibatch_init, minibatch_partial_step, reassign_due, subset_centroids
from .predict import euclidean_distances, labels_inertia, predict_labels
from .seeding import kmeans_plusplus

__all__ = [
    "center_data",
    "euclidean_distances",
    "kmeans_fit",
    "kmeans_plusplus",
    "labels_inertia",
    "minibatch_fit",
    "minibatch_init",
    "minibatch_partial_step",
    "predict_labels",
    "reassign_due",
    "row_squared_norms",
    "subset_centroids",
    "tolerance",
    "uses_bounds",
]
