"""The brute-force assignment kernel alone: distances per second.

Labels every row of X against k centres (``predict``'s kernel, two threads),
for low d (china.jpg's pixels, d = 3) and mid d (d = 64, digits' width),
float64 and float32. The summary reports distances (rows x centres) per
second, the figure to hold against the machine's GEMM ceiling.
"""

import numpy as np
import pytest

from fastkm import _solvers, datasets
from fastkm.bench.measure import settle

_CASES = {"china-d3": lambda: datasets.china(), "random-d64": lambda: _random_d64()}


def _random_d64():
    return np.random.default_rng(0).normal(size=(100_000, 64))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("k", [16, 64, 256])
@pytest.mark.parametrize("case", list(_CASES))
def test_assign_kernel(benchmark, case, k, dtype):
    X = np.ascontiguousarray(_CASES[case](), dtype=dtype)
    centers = X[np.random.default_rng(1).choice(len(X), k, replace=False)].copy()
    benchmark.group = f"assign kernel|{case}|{np.dtype(dtype).name}"
    benchmark.extra_info["distances"] = X.shape[0] * k
    settle()
    labels, finite = benchmark.pedantic(
        _solvers.predict_labels, args=(X, centers), rounds=20, warmup_rounds=2
    )
    assert finite and labels.shape == (X.shape[0],)
