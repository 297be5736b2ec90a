"""Input checks done at memory speed."""

import numpy as np
from numba import prange

from ._jit import parallel_kernel

# Rows checked per parallel task.
_ROWS_PER_TASK = 4096


@parallel_kernel
def all_finite(X):
    """True if X holds no NaN and no infinity.

    Adds up ``x * 0``, which is 0 for every finite x and NaN otherwise; the sum
    vectorises, unlike a per-value test.

    X : (n_samples, n_features) IN
    """
    n_samples, n_features = X.shape
    n_tasks = -(-n_samples // _ROWS_PER_TASK)
    task_probe = np.empty(n_tasks, dtype=X.dtype)
    zero = X.dtype.type(0.0)
    for t in prange(n_tasks):
        probe = zero
        for i in range(t * _ROWS_PER_TASK, min(n_samples, (t + 1) * _ROWS_PER_TASK)):
            for f in range(n_features):
                probe += X[i, f] * zero
        task_probe[t] = probe
    for t in range(n_tasks):
        if task_probe[t] != 0:
            return False
    return True
