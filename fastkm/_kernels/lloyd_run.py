"""Lloyd's iterations on rows kept in tiles, run in one call.

On a fit of digits' size an iteration's arithmetic takes about 20 us on two
threads, and the Python round of the step-by-step loop (the centres' norms
through numpy, the step's calls, the reduction's call) about 10 us more.
``run`` goes through the iterations as ``exact.lloyd_single``'s loop steps
them with a ``LloydStep`` or a ``MixedLloydStep`` (X in tiles, the float64
sums kept and corrected by the rows relabelled), and returns to Python only
at the end of the run, to relocate an empty cluster, or at the end of a
slice of iterations (``_run_whole``), so that Ctrl-C still comes soon.
"""

import numpy as np

from ._jit import kernel, kernel_for_types
from .lloyd import assign_labels, finish_iteration
from .lloyd import inertia as lloyd_inertia
from .mixed import mixed_block
from .small_lloyd import GOES_ON, RAN_OUT, STRICT, end_of_iteration, ends_the_fit
from .stats import centre_squared_norms


@kernel_for_types
def _label_rows(X, tiles, fill_tiles, sample_weight, centers, norms, tile_norms, labels, partials, changed):
    """The step's per-block kernel: float32 first for float64 rows in float32 tiles, else plain."""
    if tiles.dtype != X.dtype:

        def mixed(X, tiles, fill_tiles, sample_weight, centers, norms, tile_norms, labels, partials, changed):
            no_bounds = (np.empty(0), np.empty(0), np.empty(0), 0.0)
            inputs = X, tiles, fill_tiles, sample_weight, centers, norms, tile_norms, labels
            mixed_block(*inputs, no_bounds, partials, changed)

        return mixed

    def plain(X, tiles, fill_tiles, sample_weight, centers, norms, tile_norms, labels, partials, changed):
        assign_labels(X, tiles, fill_tiles, sample_weight, centers, norms, labels, partials, changed)

    return plain


@kernel
def run(X, tiles, sample_weight, centers, new_centers, tile_norms, buffers, start, stop, last_slice, tol):
    """Iterations ``start .. stop - 1`` of a tiled Lloyd step, as ``exact.lloyd_single`` steps them.

    Each iteration labels the rows against ``centers`` with the step's
    kernel (``lloyd.assign_labels``, or ``mixed.mixed_block`` for float64
    rows kept in float32 tiles), the centres' norms as numpy's einsum gives
    them (``stats.centre_squared_norms``), then ``lloyd.finish_iteration``;
    the new centres replace ``centers``. Iteration 0 fills the tiles. A run
    that ends the fit (``small_lloyd.ends_the_fit``) ends it as the loop
    does: the rows labelled again unless it converged strictly (the step's
    kernel once more, its partials unused), then the inertia
    (``lloyd.inertia`` on the step's row groups, as ``total_inertia``).

    X : (n, n_features) IN, C-contiguous
    tiles : the step's tiles (filled by iteration 0)
    centers : (n_clusters, n_features) INOUT, the centres, the last ones out
    new_centers : (n_clusters, n_features) scratch; after EMPTY, the sums
    tile_norms : the ``MixedLloydStep``'s tile norms (written with the tiles)
    buffers : ``(labels, group_partials, group_changed, sums, weights)``,
        the step's ``Buffers``
    start, stop : int, the iterations of this call's slice (``exact._run_whole``)
    last_slice : bool, ``stop`` is the fit's ``max_iter``
    tol : float, the absolute tolerance on the total squared shift

    Returns ``(i, n_changed, status, inertia)`` as ``small_lloyd.run``: the
    last iteration run, the labels it changed, ``RAN_OUT`` (``stop - 1``
    run), ``STRICT``, ``WITHIN_TOL`` or ``EMPTY``, and the fit's inertia if
    this run ended it (else NaN).
    """
    labels, group_partials, group_changed, sums, weights = buffers
    n_changed = np.int64(0)
    status = GOES_ON
    i = start
    while i < stop:
        norms = centre_squared_norms(centers)
        inputs = X, tiles, i == 0, sample_weight, centers, norms, tile_norms, labels
        _label_rows(*inputs, group_partials, group_changed)
        partials = group_partials, group_changed, sums
        n_changed, n_empty, shift = finish_iteration(*partials, centers, new_centers, weights)
        status = end_of_iteration(centers, new_centers, n_changed, n_empty, shift, tol)
        if status != GOES_ON:
            break
        i += 1
    if status == GOES_ON:  # through the slice
        status, i = RAN_OUT, stop - 1
    inertia = np.nan
    if ends_the_fit(status, last_slice):
        if status != STRICT:
            # One more labelling (its partials unused): from the tiles,
            # float32 first for float32 tiles, the labels X's own either way.
            norms = centre_squared_norms(centers)
            inputs = X, tiles, False, sample_weight, centers, norms, tile_norms, labels
            _label_rows(*inputs, group_partials, group_changed)
        inertia = lloyd_inertia(X, sample_weight, centers, labels, np.empty(group_changed.shape[0]))
    return i, n_changed, status, inertia
