"""Duplicate rows merged: Lloyd's loop runs on X's distinct rows when that pays.

Copies of a row share a label, so the iterates on the distinct rows,
weighted by their copies' total weight, are those on X (colour data:
china.jpg's 273,280 pixels hold 96,615 colours).
"""

import typing

import numpy as np

from .._kernels import unique

# Collapsing duplicates is tried from this many rows, on a strided sample of
# _DUPLICATES_SAMPLE rows first: the full pass costs about 20-120 ns a row,
# a few brute-force iterations' worth, and data without duplicates (most
# continuous data) should not pay it.
_DUPLICATES_MIN_ROWS = 1 << 14
_DUPLICATES_SAMPLE = 1 << 12
# A sample with fewer duplicates than this share is not worth the full pass...
_SAMPLE_DUPLICATES_MIN = 1 / 32
# ... and a full pass that leaves more than this share of the rows is dropped.
_DISTINCT_MAX = 0.8


class DistinctRows(typing.NamedTuple):
    """X's distinct rows, their merged weights, and which one each row of X is."""

    X: np.ndarray
    sample_weight: np.ndarray
    inverse: np.ndarray


def distinct_rows(X, sample_weight):
    """X's distinct rows if duplicates make a real share of X, else None.

    Lloyd's iterates on the distinct rows, weighted by the total weight of
    their copies, are those on X (copies share a label), up to the rounding of
    the sums. Colour data is where this pays: china.jpg's 273,280 pixels hold
    96,615 colours.
    """
    n_samples = X.shape[0]
    if not _DUPLICATES_MIN_ROWS <= n_samples < 2**31:
        return None
    bits = X.view(np.uint64 if X.dtype == np.float64 else np.uint32)
    distinct = np.empty_like(bits)
    inverse = np.empty(n_samples, dtype=np.int64)
    sample = np.ascontiguousarray(bits[:: n_samples // _DUPLICATES_SAMPLE][:_DUPLICATES_SAMPLE])
    n_sample_distinct = unique.distinct_rows(sample, distinct, inverse)
    if n_sample_distinct > (1 - _SAMPLE_DUPLICATES_MIN) * len(sample):
        return None
    n_distinct = unique.distinct_rows(bits, distinct, inverse)
    if n_distinct > _DISTINCT_MAX * n_samples:
        return None
    weights = np.empty(n_distinct, dtype=sample_weight.dtype)
    unique.merged_weights(inverse, sample_weight, weights)
    return DistinctRows(distinct[:n_distinct].view(X.dtype), weights, inverse)
