"""The Dask case of ``fastkm bench``: seconds per iteration on a LocalCluster.

``fastkm.dask.KMeans`` on a ``LocalCluster(n_workers=2,
threads_per_worker=1)``, against ``fastkm.KMeans`` in the client's process
on the same data and the same cores (the workers idle meanwhile), and
against dask-ml's KMeans when it is installed (from the same initial
centres: its k-means++ fails beside scikit-learn 1.9, an init array runs).
The data: blobs (eight groups along the first axis, Gaussian noise
elsewhere) as float32 in row chunks, persisted on the workers; the initial
centres are rows strided through X. An iteration's time is the difference
between fits of ``long`` and ``short`` iterations (``tol=0``, each checked to
run them all) over the iterations between, so what a fit costs before its
first iteration cancels out (it varies by a second from fit to fit on 10M
rows, hence 30 iterations between). The libraries take turns within each
round.
"""

import importlib.util
import time

import numpy as np

from .measure import Measurement

# The measurements' names: fastkm.dask and fastkm in one process (each with
# algorithm="auto", and with "lloyd"), and dask-ml.
DASK = "fastkm.dask"
ONE_PROCESS = "fastkm"
DASK_ML = "dask-ml"
LLOYD = " lloyd"


def missing():
    """What the case needs and is not installed (the ``dask`` extra), or None."""
    for module in ("dask", "distributed"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'fastkm[dask]')"
    return None


def versions():
    """The Dask libraries' versions, as one line: ``dask 2025.1.0, distributed ..., dask-ml ...``."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("dask", "distributed", "dask-ml"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def has_dask_ml():
    return importlib.util.find_spec("dask_ml") is not None


def blobs(rows, features, chunks, seed=0):
    """The case's data: a float32 dask array in ``chunks`` row chunks (persist it)."""
    import dask.array as da

    rs = da.random.RandomState(seed)
    step = -(-rows // chunks)
    noise = rs.standard_normal((rows, features), chunks=(step, features))
    groups = rs.randint(0, 8, size=(rows, 1), chunks=(step, 1)) * 3.0
    return (noise + groups).astype(np.float32)


def per_iteration(fit, short, long):
    """Seconds per iteration: fits of ``long`` and ``short`` iterations, differenced."""
    start = time.perf_counter()
    first = fit(short)
    middle = time.perf_counter()
    second = fit(long)
    end = time.perf_counter()
    # Every fit must run all its iterations, or the difference means nothing.
    if (first.n_iter_, second.n_iter_) != (short, long):
        raise RuntimeError(f"fits of {short} and {long} iterations ran {first.n_iter_} and {second.n_iter_}")
    return ((end - middle) - (middle - start)) / (long - short), second


def measure(rows, features, chunks, k, *, rounds=3, workers=2, short=1, long=31, dask_ml_long=4):
    """Seconds per iteration of each library, by name: ``Measurement`` s (times: one per round).

    A measurement's inertia and n_iter are its last long fit's.
    """
    import distributed

    import fastkm
    from fastkm.dask import KMeans as DaskKMeans

    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        # This client answers every fit here, whatever other client this
        # process (or this context) had made current before.
        client.as_current(),
    ):
        X = blobs(rows, features, chunks).persist()
        distributed.wait(X)
        X_local = X.compute()
        init = X_local[:: max(1, rows // k)][:k].copy()

        def on_cluster(algorithm):
            return lambda n: DaskKMeans(k, init=init, max_iter=n, tol=0, algorithm=algorithm).fit(X)

        def in_process(algorithm):
            return lambda n: fastkm.KMeans(
                k, init=init, n_init=1, max_iter=n, tol=0, algorithm=algorithm
            ).fit(X_local)

        fits = {
            DASK: on_cluster("auto"),
            ONE_PROCESS: in_process("auto"),
            DASK + LLOYD: on_cluster("lloyd"),
            ONE_PROCESS + LLOYD: in_process("lloyd"),
        }
        if has_dask_ml():
            from dask_ml.cluster import KMeans as DaskMLKMeans

            fits[DASK_ML] = lambda n: DaskMLKMeans(k, init=init, max_iter=n, tol=0).fit(X)
        for fit in fits.values():
            fit(short)  # kernels loaded on every worker, dask-ml's imports made
        results = {name: Measurement() for name in fits}
        for _ in range(rounds):
            for name, fit in fits.items():
                seconds, model = per_iteration(fit, short, dask_ml_long if name == DASK_ML else long)
                results[name].times.append(seconds)
                results[name].inertia, results[name].n_iter = float(model.inertia_), int(model.n_iter_)
    return results
