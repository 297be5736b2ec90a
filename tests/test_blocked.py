"""The register-blocked routines (``blocked.py``, ``row_major.py``) against the chains they replace.

The reference is one centre at a time: ``tile_center_scores``'s scores (the
sequential FMA chain over features) with the running minimum taken in
numpy, and ``chain_dots`` for the dot products. ``argmin_row_major`` reads
the rows as they lie, not a tile, and must give the tile's bits.
"""

import os
import platform
import subprocess
import sys

import numba
import numpy as np
import pytest

from fastkm._kernels._jit import CHUNK
from fastkm._kernels.row_major import argmin_row_major, transposed_centers
from fastkm._kernels.tiles import (
    _blocks_fit,
    chain_dots,
    load_tile,
    new_scores,
    new_tile,
    padded_centers,
    prefetch_offset,
    squared_norms,
    tile_argmin,
    tile_center_scores,
    tile_stack,
    tile_top2,
    wide_dots,
)


def _case(seed):
    """A random tile's rows and centres; integer values (exact ties) every third case."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(rng.choice(["float32", "float64"]))
    n_features = int(rng.integers(5, 80))
    # Every fourth case past three vectors of centres: argmin_row_major's
    # blocks of four vectors, and its pair and single tails.
    n_clusters = int(rng.integers(1, 24) if seed % 4 else rng.integers(24, 72))
    # Around whole vectors and blocks of both widths, and anywhere.
    sizes = [1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, int(rng.integers(1, 257))]
    n_rows = int(rng.choice(sizes))
    if seed % 3 == 0:
        X = rng.integers(0, 3, (n_rows, n_features)).astype(dtype)
    else:
        X = rng.standard_normal((n_rows, n_features)).astype(dtype)
    if seed % 2:  # centres on rows: exact ties between copies
        centers = X[rng.integers(0, n_rows, n_clusters)].astype(np.float64)
    else:
        centers = rng.standard_normal((n_clusters, n_features))
    return X, centers


def _tile(X):
    """The rows in a tile of their own, spare columns holding NaN (never seen in the results)."""
    n_rows, n_features = X.shape
    tile = new_tile(n_features, X.dtype)
    tile[:, n_rows:] = np.nan
    load_tile(X, 0, n_rows, tile)
    assert _blocks_fit(tile, n_rows)
    return tile


def _dot_targets(centers):
    """The centres ``wide_dots`` is asked for: out of order, repeated."""
    k = len(centers)
    return (k - 1, 0, k // 2, k - 1)


@numba.njit
def _argmin_row_major(X, start, n_rows, centers_t, norms, best, labels):
    argmin_row_major(X, start, n_rows, centers_t, norms, best, labels)


def _rows_argmin(X, centers, norms):
    """``argmin_row_major`` on the rows of X, read from the middle of a larger array."""
    n_rows = len(X)
    around = np.full((n_rows + 5, X.shape[1]), np.nan, dtype=X.dtype)
    around[3 : 3 + n_rows] = X
    centers_t, norms_t = transposed_centers(centers, norms, X.dtype)
    best = np.full(CHUNK + 8, -7, dtype=X.dtype)
    labels = np.full(CHUNK + 8, -7, dtype=np.int32)
    _argmin_row_major(around, 3, n_rows, centers_t, norms_t, best, labels)
    return best, labels


def _blocked(tile, X, centers):
    n_rows, n_features = X.shape
    padded = padded_centers(centers, X.dtype)
    norms = squared_norms(padded, X.dtype)
    best = np.full(CHUNK + 8, -7, dtype=X.dtype)  # rows past n_rows must stay as they are
    second = best.copy()
    labels = np.full(CHUNK + 8, -7, dtype=np.int32)
    out = {}
    # A tile of a kept stack prefetches the next one as it is scored (none
    # lies past this tile: a prefetch cannot fault, and must change nothing).
    ahead = tile.size
    tile_argmin(tile, n_rows, n_features, padded, norms, new_scores(X.dtype), best, labels, ahead)
    out["argmin"] = best.copy(), labels.copy()
    out["rows"] = _rows_argmin(X, centers, norms)
    tile_top2(tile, n_rows, n_features, padded, norms, new_scores(X.dtype), best, second, labels, 0)
    out["top2"] = best.copy(), second.copy(), labels.copy()
    dots = np.full((4, CHUNK + 16), -7.0)
    wide_dots(tile, n_rows, padded_centers(centers, np.float64), _dot_targets(centers), dots, ahead)
    out["dots"] = (dots,)
    return out


def _reference(tile, X, centers):
    n_rows = len(X)
    padded = padded_centers(centers, X.dtype)
    norms = squared_norms(padded, X.dtype)
    scores = np.empty((len(centers), CHUNK + 16), dtype=X.dtype)
    for j in range(len(centers)):
        tile_center_scores(tile, n_rows, padded, norms, j, scores[j])
    scores = scores[:, :n_rows]
    labels = np.full(CHUNK + 8, -7, dtype=np.int32)
    labels[:n_rows] = scores.argmin(axis=0)  # the first of equal scores
    best = np.full(CHUNK + 8, -7, dtype=X.dtype)
    best[:n_rows] = scores.min(axis=0)
    second = np.full(CHUNK + 8, -7, dtype=X.dtype)
    second[:n_rows] = np.sort(scores, axis=0)[1] if len(centers) > 1 else np.inf
    dots = np.full((4, CHUNK + 16), -7.0)
    chain_dots(tile, n_rows, padded_centers(centers, np.float64), _dot_targets(centers), dots)
    return {"argmin": (best, labels), "rows": (best, labels), "top2": (best, second, labels), "dots": (dots,)}


def _assert_same_bits(got, want):
    for name, arrays in want.items():
        for a, b in zip(got[name], arrays, strict=True):
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8), err_msg=name)


@pytest.mark.parametrize("seed", range(120))
def test_blocked_routines_give_the_one_centre_chains_bits(seed):
    X, centers = _case(seed)
    tile = _tile(X)
    _assert_same_bits(_blocked(tile, X, centers), _reference(tile, X, centers))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_clusters", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13])
def test_blocked_labels_match_numpy_with_ties(dtype, n_clusters):
    rng = np.random.default_rng(n_clusters)
    X = rng.integers(0, 3, (CHUNK - 3, 9)).astype(dtype)
    centers = rng.integers(0, 3, (n_clusters, 9)).astype(np.float64)
    centers[-1] = centers[0]  # a later copy never wins
    out = _blocked(_tile(X), X, centers)
    scores = (centers**2).sum(axis=1)[None, :] - 2 * X.astype(np.float64) @ centers.T
    want = scores.argmin(axis=1)
    n = len(X)
    np.testing.assert_array_equal(out["argmin"][1][:n], want)
    np.testing.assert_array_equal(out["rows"][1][:n], want)
    np.testing.assert_array_equal(out["top2"][2][:n], want)
    ordered = np.sort(scores, axis=1)
    np.testing.assert_array_equal(out["top2"][0][:n], ordered[:, 0])
    second = ordered[:, 1] if n_clusters > 1 else np.full(n, np.inf)
    np.testing.assert_array_equal(out["top2"][1][:n], second)


def test_float32_tile_against_float64_centres_is_upcast():
    """k-means++ scores a float32 tile against float64 candidates: the float64 products of the same values."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 33)).astype(np.float32)
    centers = rng.standard_normal((4, 33))
    dots = np.empty((4, CHUNK + 16))
    wide_dots(_tile(X), len(X), padded_centers(centers, np.float64), (0, 1, 2, 3), dots, 0)
    np.testing.assert_allclose(dots[:, : len(X)], centers @ X.astype(np.float64).T, rtol=1e-12, atol=1e-12)


def test_prefetch_offset_is_one_tile_for_large_kept_stacks_only():
    """The next tile is fetched ahead for big stacks and few centres, not while filling nor past the last."""
    big = tile_stack(300, 16, np.float32)  # 5.2 MB
    tile = big.shape[1] * big.shape[2]
    assert prefetch_offset(big, 32, False, True) == tile
    assert prefetch_offset(big, 64, False, True) == tile
    assert prefetch_offset(big, 65, False, True) == 0  # scoring outlasts the hardware's prefetching
    assert prefetch_offset(big, 32, True, True) == 0  # being filled
    assert prefetch_offset(big, 32, False, False) == 0  # the pass's last tile
    assert prefetch_offset(tile_stack(100, 16, np.float32), 32, False, True) == 0  # stays in L2
    assert prefetch_offset(np.empty((0, 0, 0), np.float32), 32, False, True) == 0  # no kept tiles


_AVX2_ONLY = (
    "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fxsr,+lzcnt,+mmx,+movbe,+popcnt,"
    "+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave"
)

_IN_CHILD = """
import sys
import numpy as np
from fastkm._kernels.tiles import _blocks_fit
from tests.test_blocked import _blocked, _case, _tile
assert _blocks_fit(np.empty((8, 8), np.float32), 8)  # eight float32 lanes, not sixteen
results = {}
for seed in range(24):
    X, centers = _case(seed)
    for name, arrays in _blocked(_tile(X), X, centers).items():
        for q, array in enumerate(arrays):
            results[f"{seed}-{name}-{q}"] = array
np.savez(sys.argv[1], **results)
"""


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 feature sets")
def test_256_bit_vectors_give_the_same_bits(tmp_path):
    """The routines compiled for an AVX2-only CPU (eight float32 lanes, half the blocks) agree bit for bit."""
    env = {
        **os.environ,
        "NUMBA_CPU_NAME": "haswell",
        "NUMBA_CPU_FEATURES": _AVX2_ONLY,
        "FASTKM_CACHE_DIR": str(tmp_path / "cache"),
        "FASTKM_COMPILE": "wait",
    }
    path = tmp_path / "avx2.npz"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", _IN_CHILD, str(path)], env=env, cwd=root, check=True, timeout=600)
    child = np.load(path)
    for seed in range(24):
        X, centers = _case(seed)
        for name, arrays in _blocked(_tile(X), X, centers).items():
            for q, array in enumerate(arrays):
                got = child[f"{seed}-{name}-{q}"]
                message = f"seed {seed}, {name}"
                np.testing.assert_array_equal(got.view(np.uint8), array.view(np.uint8), err_msg=message)
