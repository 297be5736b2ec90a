"""Seconds per iteration of fastkm.dask.KMeans on a LocalCluster, against one process and dask-ml.

The issue's case: 10,000,000 x 16 float32 in 16 chunks, k=32, on
``LocalCluster(n_workers=2, threads_per_worker=1)``; fastkm.KMeans runs in
the client's process on the same data (the workers idle meanwhile), and
dask-ml's KMeans from the same initial centres when it is installed
(``pip install dask-ml``; it runs beside scikit-learn 1.9 from an init array,
its k-means++ does not). An iteration's time is the difference between fits
of ``--long`` and ``--short`` iterations (``tol=0``, so every fit runs them
all), over the number of iterations between: what a fit costs before its
first iteration (the column moments, the centred copy, the blocks' states)
cancels out. Libraries take turns within each round; medians over rounds.

    python benchmarks/dask_iterations.py                          # the issue's case
    python benchmarks/dask_iterations.py --rows 2000000 --rounds 2  # a quicker look
"""

import argparse
import os
import time

os.environ.setdefault("FASTKM_COMPILE", "wait")

import numpy as np


def _data(rows, features, chunks, seed):
    """Blobs: eight groups along the first axis, Gaussian noise elsewhere (a dask array, persisted)."""
    import dask.array as da

    rs = da.random.RandomState(seed)
    step = -(-rows // chunks)
    noise = rs.standard_normal((rows, features), chunks=(step, features))
    groups = rs.randint(0, 8, size=(rows, 1), chunks=(step, 1)) * 3.0
    return (noise + groups).astype(np.float32).persist()


def _per_iteration(fit, short, long):
    start = time.perf_counter()
    first = fit(short)
    middle = time.perf_counter()
    second = fit(long)
    end = time.perf_counter()
    # Every fit must run all its iterations, or the difference means nothing.
    assert (first.n_iter_, second.n_iter_) == (short, long), (first.n_iter_, second.n_iter_)
    return ((end - middle) - (middle - start)) / (long - short)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--clusters", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short", type=int, default=1)
    parser.add_argument("--long", type=int, default=11)
    parser.add_argument("--dask-ml-long", type=int, default=3, help="dask-ml's long fit (it is slow)")
    args = parser.parse_args(argv)

    import distributed

    import fastkm
    from fastkm.dask import KMeans as DaskKMeans

    try:
        from dask_ml.cluster import KMeans as DaskMLKMeans
    except ImportError:
        DaskMLKMeans = None
        print("dask-ml is not installed (pip install dask-ml): left out")

    k = args.clusters
    with (
        distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        X = _data(args.rows, args.features, args.chunks, seed=0)
        distributed.wait(X)
        X_local = X.compute()
        init = X_local[:: max(1, args.rows // k)][:k].copy()

        def ours(n, algorithm="auto"):
            return DaskKMeans(k, init=init, max_iter=n, tol=0, algorithm=algorithm).fit(X)

        def one_process(n, algorithm="auto"):
            model = fastkm.KMeans(k, init=init, n_init=1, max_iter=n, tol=0, algorithm=algorithm)
            return model.fit(X_local)

        fits = {
            "fastkm.dask": ours,
            "fastkm.dask lloyd": lambda n: ours(n, "lloyd"),
            "fastkm (one process)": one_process,
            "fastkm lloyd (one process)": lambda n: one_process(n, "lloyd"),
        }
        if DaskMLKMeans is not None:
            fits["dask-ml"] = lambda n: DaskMLKMeans(k, init=init, max_iter=n, tol=0).fit(X)
        for fit in fits.values():
            fit(1)  # kernels loaded on every worker, dask-ml's imports made
        times = {name: [] for name in fits}
        for _ in range(args.rounds):
            for name, fit in fits.items():
                long = args.dask_ml_long if name == "dask-ml" else args.long
                times[name].append(_per_iteration(fit, args.short, long))

    print(
        f"{args.rows:,} x {args.features} float32 in {args.chunks} chunks, k={k}, "
        f"{args.workers} workers x 1 thread; seconds per iteration (median of {args.rounds})"
    )
    medians = {name: float(np.median(t)) for name, t in times.items()}
    for name, median in medians.items():
        print(f"  {name:28s} {median:8.3f} s   ({', '.join(f'{t:.3f}' for t in times[name])})")
    local = medians["fastkm (one process)"]
    print(f"  fastkm.dask / one process: {medians['fastkm.dask'] / local:.2f}x (target: 1.3x at most)")
    lloyd = medians["fastkm lloyd (one process)"]
    print(f"  with algorithm='lloyd' on both: {medians['fastkm.dask lloyd'] / lloyd:.2f}x")
    if "dask-ml" in medians:
        faster = medians["dask-ml"] / medians["fastkm.dask"]
        print(f"  dask-ml / fastkm.dask: {faster:.1f}x (target: 5x at least)")


if __name__ == "__main__":
    main()
