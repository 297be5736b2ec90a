"""Dask inputs as blocks of rows: arrays, DataFrames and weights, and the tree reductions over them.

A fit sees X as ``Blocks``: one delayed numpy block per chunk of rows (the
columns merged into one chunk), their sizes and first rows, and the weights
cut the same way. ``tree`` reduces per-block results in block
order, so the result depends on the blocks alone, never on the workers.
"""

import dataclasses

import dask
import dask.array as da
import numpy as np

from .. import _validation as v
from ._cluster import FAN_IN, fold


@dataclasses.dataclass
class Blocks:
    """X as blocks of rows, with their weights."""

    rows: list  # delayed numpy blocks, in order
    weights: list  # delayed weight blocks, or None for each
    sizes: tuple
    n_features: int
    dtype: np.dtype

    @property
    def offsets(self):
        return np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    @property
    def n_samples(self):
        return int(sum(self.sizes))

    def map(self, func, *args, nout=None, weights=False):
        """``func(block[, weights], *args)`` for every block, delayed."""
        call = dask.delayed(func, pure=True, nout=nout)
        if weights:
            return [call(x, w, *args) for x, w in zip(self.rows, self.weights, strict=True)]
        return [call(x, *args) for x in self.rows]


def as_dask_array(X):
    """A dask array of X's rows: DataFrames converted, unknown chunk sizes computed, columns merged."""
    if not isinstance(X, da.Array):
        to_array = getattr(X, "to_dask_array", None)
        if to_array is None:
            raise TypeError(f"Expected a dask array or DataFrame, got {type(X).__name__}.")
        X = to_array(lengths=True)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array, got an array of {X.ndim} dimensions instead.")
    if any(np.isnan(size) for size in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if X.dtype not in v.FLOAT_DTYPES:
        X = X.astype(np.float64)
    return X


def blocks_of(X, sample_weight):
    """``Blocks`` of a dask array X (see ``as_dask_array``) and its weights."""
    n_blocks = len(X.chunks[0])
    rows = list(X.to_delayed().ravel())
    if sample_weight is None:
        weights = [None] * n_blocks
    else:
        if hasattr(sample_weight, "to_dask_array"):  # a dask Series
            sample_weight = sample_weight.to_dask_array(lengths=True)
        if not dask.is_dask_collection(sample_weight):
            sample_weight = np.asarray(sample_weight, dtype=X.dtype)
            if sample_weight.ndim == 0:  # one weight for every row, as scikit-learn takes it
                sample_weight = np.full(X.shape[0], sample_weight, dtype=X.dtype)
            if sample_weight.shape != (X.shape[0],):
                raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected ({X.shape[0]},)!")
            sample_weight = da.from_array(sample_weight, chunks=(X.chunks[0],))
        if any(np.isnan(size) for size in sample_weight.chunks[0]):
            sample_weight = sample_weight.compute_chunk_sizes()
        if sample_weight.shape != (X.shape[0],):
            raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected ({X.shape[0]},)!")
        sample_weight = sample_weight.astype(X.dtype)
        weights = list(sample_weight.rechunk((X.chunks[0],)).to_delayed().ravel())
    return Blocks(rows, weights, tuple(int(s) for s in X.chunks[0]), int(X.shape[1]), X.dtype)


def tree(func, parts, *args):
    """``parts`` (delayed) reduced by ``func(a, b, *args)`` as ``_cluster``'s runners reduce: in block order.

    Up to ``_cluster.FAN_IN`` parts a task, folded left to right.
    """
    call = dask.delayed(fold, pure=True)
    while len(parts) > 1:
        parts = [call(func, args, *parts[i : i + FAN_IN]) for i in range(0, len(parts), FAN_IN)]
    return parts[0]


def labels_array(label_blocks, sizes):
    """The blocks' labels as one dask array (they stay where they are)."""
    parts = [
        da.from_delayed(b if dask.is_dask_collection(b) else dask.delayed(b), shape=(n,), dtype=np.int32)
        for b, n in zip(label_blocks, sizes, strict=True)
    ]
    return da.concatenate(parts) if len(parts) > 1 else parts[0]
