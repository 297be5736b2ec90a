"""Kernels loaded from numba's cache in a fresh process run (no missing symbols).

numba records, per cached function, that loading it must start the threading
layer first; a serial kernel calling a parallel one can be cached without that
record when the parallel one came from the cache. This replays such a history
in a private cache directory: fastkm must start the threads itself.
"""

import os
import subprocess
import sys

_DATA = "import numpy as np; X = np.random.default_rng(0).normal(size=(500, 5));"
_STEPS = [
    # 1: compiles the parallel labelling kernels (predict).
    _DATA + "from fastkm import KMeans; KMeans(3, n_init=1, random_state=0).fit(X).predict(X)",
    # 2: compiles the mini-batch loop against the cached parallel kernels.
    _DATA + "from fastkm import MiniBatchKMeans; MiniBatchKMeans(3, random_state=0).fit(X)",
    # 3: a fresh process whose first kernel is the cached mini-batch loop.
    _DATA + "from fastkm import _solvers; _solvers.minibatch_fit("
    "X, np.ones(500), X[:3].copy(), 100, 5, 0.0, 10, 0.01, np.random.RandomState(0))",
]


def test_cached_kernels_load_in_any_order(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    for code in _STEPS:
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
