"""fastkm.dask.KMeans on X larger than its workers' memory: a .npy stack on disk, streamed.

Writes (once; kept for the next run with ``--keep``) make_blobs-like data,
by default 250,000,000 x 16 float32 (16 GB) in chunks of 2,000,000 rows, as
a .npy stack, then fits it on ``LocalCluster(2 workers x 1 thread)`` with a
memory limit of 3 GB a worker: 5 iterations from rows strided through X.
Reports the fit's time, whether X was streamed, and each worker's peak
resident memory (the kernel's high-water mark, reset before the fit)
against its limit. Not part of CI: it needs ``2 x`` the data's size in free
disk and takes minutes.

    python benchmarks/dask_out_of_core.py [--rows 250000000] [--path DIR] [--keep]
"""

import argparse
import contextlib
import io
import os
import pathlib
import shutil
import sys
import time

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

from fastkm.dask import KMeans
from fastkm.dask._cluster import _workers_of


def _blob_chunk(block, n_features, centers, block_info=None):
    """One chunk of make_blobs-like rows (unit spread around ``centers``), seeded by its position."""
    (start, stop), _ = block_info[None]["array-location"]
    rng = np.random.default_rng(start)
    rows = stop - start
    X = rng.standard_normal((rows, n_features), dtype=np.float32)
    X += centers[rng.integers(len(centers), size=rows)]
    return X


def write_stack(path, n_rows, n_features, chunk_rows, n_centers):
    """The data as a .npy stack at ``path`` (written with this process's threads)."""
    centers = np.random.default_rng(0).uniform(-10, 10, (n_centers, n_features)).astype(np.float32)
    template = da.empty((n_rows, n_features), chunks=(chunk_rows, n_features), dtype=np.float32)
    X = template.map_blocks(_blob_chunk, n_features, centers, dtype=np.float32)
    with dask.config.set(scheduler="threads"):
        da.to_npy_stack(path, X)


def _reset_peak():
    # Writing 5 to clear_refs resets the process's resident high-water mark (VmHWM).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--chunk-rows", type=int, default=2_000_000)
    parser.add_argument("--clusters", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--memory-limit", default="3GB", help="each worker's")
    parser.add_argument(
        "--path", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "fastkm-out-of-core")
    )
    parser.add_argument("--keep", action="store_true", help="keep the stack for the next run")
    args = parser.parse_args(argv)
    path = pathlib.Path(args.path)
    shape = (args.rows, args.features)
    if not (path / "info").exists() or da.from_npy_stack(path).shape != shape:
        shutil.rmtree(path, ignore_errors=True)
        start = time.perf_counter()
        write_stack(path, args.rows, args.features, args.chunk_rows, args.clusters)
        print(f"wrote {path}: {time.perf_counter() - start:.0f} s")
    try:
        X = da.from_npy_stack(path, mmap_mode="r")
        print(
            f"X: {X.shape[0]:,} x {X.shape[1]} {X.dtype}, {X.nbytes / 1e9:.1f} GB in {X.numblocks[0]} chunks"
        )
        init = X[np.linspace(0, X.shape[0] - 1, args.clusters).astype(np.int64)].compute()
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                memory_limit=args.memory_limit,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            limits = {w: i["memory_limit"] for w, i in _workers_of(client).items()}
            print(f"workers: {len(limits)} x 1 thread, {sum(limits.values()) / 1e9:.1f} GB of memory in all")
            client.run(_reset_peak)
            model = KMeans(args.clusters, init=init, max_iter=args.iterations, tol=0, verbose=1)
            out = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(out):
                model.fit(X)
            seconds = time.perf_counter() - start
            peaks = client.run(_peak_bytes)
        streamed = "does not fit in the workers' memory" in out.getvalue()
        print(f"fit: {seconds:.0f} s, {model.n_iter_} iterations, streamed: {streamed}")
        print(f"inertia {model.inertia_:.6g}")
        under = True
        for worker, peak in sorted(peaks.items()):
            limit = limits[worker]
            under &= peak < limit
            print(
                f"  {worker}: peak resident {peak / 1e9:.2f} GB of {limit / 1e9:.2f} GB ({peak / limit:.0%})"
            )
        print("every worker under its limit" if under else "A WORKER WENT OVER ITS LIMIT")
        return 0 if (under and streamed and model.n_iter_ == args.iterations) else 1
    finally:
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
