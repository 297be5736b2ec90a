"""Seconds per iteration of fastkm.dask.KMeans on a LocalCluster, against one process and dask-ml.

``fastkm bench --cases dask`` runs this case (10,000,000 x 16 float32 in 16
chunks, k=32, ``LocalCluster(n_workers=2, threads_per_worker=1)``); this
script runs it at other sizes. How it is measured: ``fastkm.bench.cluster``.

    python benchmarks/dask_iterations.py                            # fastkm bench's case
    python benchmarks/dask_iterations.py --rows 2000000 --rounds 2  # a quicker look
"""

import argparse
import os

os.environ.setdefault("FASTKM_COMPILE", "wait")

import numpy as np

from fastkm.bench import cluster


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--clusters", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short", type=int, default=1)
    parser.add_argument("--long", type=int, default=31)
    parser.add_argument("--dask-ml-long", type=int, default=4, help="dask-ml's long fit (it is slow)")
    args = parser.parse_args(argv)
    if cluster.missing():
        parser.error(cluster.missing())
    if not cluster.has_dask_ml():
        print("dask-ml is not installed (pip install dask-ml): left out")
    results = cluster.measure(
        args.rows,
        args.features,
        args.chunks,
        args.clusters,
        rounds=args.rounds,
        workers=args.workers,
        short=args.short,
        long=args.long,
        dask_ml_long=args.dask_ml_long,
    )
    print(
        f"{args.rows:,} x {args.features} float32 in {args.chunks} chunks, k={args.clusters}, "
        f"{args.workers} workers x 1 thread; seconds per iteration (median of {args.rounds})"
    )
    medians = {name: float(np.median(m.times)) for name, m in results.items()}
    for name, m in results.items():
        print(f"  {name:16s} {medians[name]:8.3f} s   ({', '.join(f'{t:.3f}' for t in m.times)})")
    for suffix in ("", cluster.LLOYD):
        ratio = medians[cluster.DASK + suffix] / medians[cluster.ONE_PROCESS + suffix]
        print(f"  {cluster.DASK + suffix} / {cluster.ONE_PROCESS + suffix}: {ratio:.2f}x")
    if cluster.DASK_ML in medians:
        print(f"  dask-ml / fastkm.dask: {medians[cluster.DASK_ML] / medians[cluster.DASK]:.1f}x")


if __name__ == "__main__":
    main()
