"""fastkm against scikit-learn on the china.jpg colour-compression problem.

Fits KMeans with 64 colours from the same k-means++ init with both libraries,
after one warm-up fit (which also compiles fastkm's kernels on first use), and
prints the median time of each, the speed-up and the inertia of both.
"""

import time

import numpy as np
import sklearn.cluster

import fastkm
from fastkm import datasets


def median_time(fn, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main():
    X = datasets.china()
    init, _ = fastkm.kmeans_plusplus(X, 64, random_state=0)
    fastkm.KMeans(64, init=init).fit(X)  # warm-up: compile or load the kernels

    t_fast, ours = median_time(lambda: fastkm.KMeans(64, init=init).fit(X))
    t_sk, theirs = median_time(lambda: sklearn.cluster.KMeans(64, init=init).fit(X))
    print(f"china.jpg, {X.shape[0]:,} pixels, 64 colours, same init:")
    print(f"  scikit-learn  {t_sk:8.3f} s   inertia {theirs.inertia_:.10g}")
    print(f"  fastkm        {t_fast:8.3f} s   inertia {ours.inertia_:.10g}")
    print(
        f"  speed-up      {t_sk / t_fast:8.2f} x   same labels: "
        f"{np.array_equal(ours.labels_, theirs.labels_)}"
    )


if __name__ == "__main__":
    main()
