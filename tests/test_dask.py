"""fastkm.dask.KMeans on a real scheduler: a LocalCluster of two worker processes.

Given the same initial centres it must give fastkm.KMeans's labels and
n_iter_ (centres to rounding: the blocks add their sums in another order)
for any chunking. The data are continuous (make_blobs): on integer data such
as digits, rows tied between two centres to the last bit are common, and
which side of a tie a row falls then depends on that rounding.
"""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import make_blobs

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import fastkm  # noqa: E402
from fastkm import datasets  # noqa: E402
from fastkm.dask import KMeans  # noqa: E402
from fastkm.dask._cluster import _workers_of  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(3000, n_features=5, centers=8, cluster_std=2.0, random_state=0)
    return X


def _init(X, k, seed):
    return X[np.random.default_rng(seed).choice(len(X), k, replace=False)]


def _same_fit(expected, fitted):
    np.testing.assert_array_equal(fitted.labels_.compute(), expected.labels_)
    assert fitted.n_iter_ == expected.n_iter_
    scale = np.abs(expected.cluster_centers_).max()
    np.testing.assert_allclose(fitted.cluster_centers_, expected.cluster_centers_, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(fitted.inertia_, expected.inertia_, rtol=1e-10)


@pytest.mark.parametrize(
    "n_rows, chunks",
    [(3000, 3000), (3000, (1000, 17, 1500, 483)), (400, 7)],
    ids=["one-chunk", "uneven", "smaller-than-k"],
)
@pytest.mark.parametrize("weighted", [False, True], ids=["unit", "weighted"])
def test_same_fit_as_one_process(client, data, n_rows, chunks, weighted):
    X = data[:n_rows]
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X)) if weighted else None
    init = _init(X, 8, 2)
    expected = fastkm.KMeans(8, init=init, n_init=1).fit(X, sample_weight=w)
    Xd = da.from_array(X, chunks=(chunks, 5))
    wd = None if w is None else da.from_array(w, chunks=(Xd.chunks[0],))
    fitted = KMeans(8, init=init).fit(Xd, sample_weight=wd)
    assert isinstance(fitted.labels_, da.Array)
    _same_fit(expected, fitted)


@pytest.mark.parametrize("algorithm", ["hamerly", "yinyang", "auto"])
def test_bound_algorithms_keep_their_bounds_on_the_workers(client, algorithm):
    # Each block's step (with its bounds and tiled copy) lives on the worker
    # holding the block, from one iteration to the next.
    X, _ = make_blobs(4000, n_features=6, centers=40, cluster_std=1.5, random_state=3)
    init = _init(X, 40, 5)
    expected = fastkm.KMeans(40, init=init, n_init=1, algorithm=algorithm).fit(X)
    fitted = KMeans(40, init=init, algorithm=algorithm).fit(da.from_array(X, chunks=(900, 6)))
    _same_fit(expected, fitted)
    assert fitted.n_iter_ > 5


@pytest.mark.parametrize("algorithm", ["hamerly", "yinyang"])
def test_non_strict_stop_relabels_with_the_last_move(client, algorithm):
    # After a stop on max_iter or tol, every row is labelled against the
    # final centres; the bounds must know the last move first.
    X, _ = make_blobs(4000, n_features=6, centers=40, cluster_std=1.5, random_state=3)
    init = _init(X, 40, 5)
    Xd = da.from_array(X, chunks=(900, 6))
    for options in ({"max_iter": 3}, {"tol": 0.05}):
        expected = fastkm.KMeans(40, init=init, n_init=1, algorithm=algorithm, **options).fit(X)
        fitted = KMeans(40, init=init, algorithm=algorithm, **options).fit(Xd)
        assert fitted.n_iter_ < 10
        _same_fit(expected, fitted)


def test_n_init_keeps_the_best_run(client, data):
    Xd = da.from_array(data, chunks=700)
    one = KMeans(8, n_init=1, random_state=4).fit(Xd)
    best = KMeans(8, n_init=3, random_state=4).fit(Xd)  # its first run is `one`
    assert best.inertia_ <= one.inertia_
    assert best.inertia_ == pytest.approx(-best.score(Xd), rel=1e-10)


def test_weights_as_series_scalar_and_bad(client, data):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    X = data
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    init = _init(X, 8, 2)
    expected = fastkm.KMeans(8, init=init, n_init=1).fit(X, sample_weight=w)
    frame = dd.from_pandas(pd.DataFrame(X), npartitions=3)
    weights = dd.from_pandas(pd.Series(w), npartitions=3)
    _same_fit(expected, KMeans(8, init=init).fit(frame, sample_weight=weights))
    Xd = da.from_array(X, chunks=700)
    doubled = fastkm.KMeans(8, init=init, n_init=1).fit(X, sample_weight=2.0)
    _same_fit(doubled, KMeans(8, init=init).fit(Xd, sample_weight=2.0))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(10,\), expected \(3000,\)!"):
        KMeans(8, init=init).fit(Xd, sample_weight=np.ones(10))
    bad = w.copy()
    bad[2000] = np.nan
    with pytest.raises(ValueError, match="Input sample_weight contains NaN"):
        KMeans(8, init=init).fit(Xd, sample_weight=bad)


def test_methods_check_their_input(client, data):
    fitted = KMeans(8, init=_init(data, 8, 2)).fit(da.from_array(data, chunks=700))
    narrow = da.from_array(data[:, :4], chunks=700)
    for method in (fitted.predict, fitted.transform, fitted.score):
        with pytest.raises(ValueError, match="X has 4 features, but KMeans is expecting 5 features"):
            method(narrow)
    X = data.copy()
    X[10, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.score(da.from_array(X, chunks=700))


def test_without_a_client_runs_in_process(data, monkeypatch):
    # No distributed client: the blocks come to this process, which runs the steps.
    from fastkm.dask import _cluster

    monkeypatch.setattr(_cluster, "client_or_none", lambda: None)
    assert isinstance(_cluster.executor(), _cluster.InProcess)
    init = _init(data, 8, 2)
    expected = fastkm.KMeans(8, init=init, n_init=1).fit(data)
    with dask.config.set(scheduler="sync"):  # and dask's own computations here too
        fitted = KMeans(8, init=init).fit(da.from_array(data, chunks=700))
        _same_fit(expected, fitted)
        from fastkm.dask import _kmeans

        monkeypatch.setattr(_kmeans, "MEMORY_SHARE", 0.0)  # and X read from its source every pass
        _same_fit(expected, KMeans(8, init=init).fit(da.from_array(data, chunks=700)))


def test_float32_and_column_chunks(client, data):
    X = data.astype(np.float32)
    init = _init(X, 6, 3)
    expected = fastkm.KMeans(6, init=init, n_init=1).fit(X)
    fitted = KMeans(6, init=init).fit(da.from_array(X, chunks=(700, 2)))
    np.testing.assert_array_equal(fitted.labels_.compute(), expected.labels_)
    assert fitted.n_iter_ == expected.n_iter_
    assert fitted.cluster_centers_.dtype == np.float32
    np.testing.assert_allclose(fitted.cluster_centers_, expected.cluster_centers_, rtol=1e-5)


def test_empty_cluster_relocated_as_in_one_process(client, data):
    # A centre far from every row is empty after the first iteration; it
    # takes the row farthest from its centre, as in scikit-learn.
    X = data
    init = _init(X, 8, 4)
    init[3] = X.max(axis=0) + 1000.0
    expected = fastkm.KMeans(8, init=init, n_init=1).fit(X)
    fitted = KMeans(8, init=init).fit(da.from_array(X, chunks=(450, 5)))
    _same_fit(expected, fitted)
    assert np.bincount(expected.labels_, minlength=8).min() > 0


@pytest.fixture
def streamed(monkeypatch):
    """Fits that take X for larger than the workers' memory: every pass reads it from its source."""
    from fastkm.dask import _kmeans

    monkeypatch.setattr(_kmeans, "MEMORY_SHARE", 0.0)


def test_streamed_from_disk_gives_the_same_fit(client, data, streamed, tmp_path, capsys):
    # X on disk as a .npy stack (uneven chunks, weights, float64 and float32),
    # read by the workers every iteration: the fit of fastkm.KMeans still.
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(data))
    da.to_npy_stack(tmp_path / "x", da.from_array(data, chunks=((1000, 17, 1500, 483), 5)))
    Xd = da.from_npy_stack(tmp_path / "x", mmap_mode="r")
    wd = da.from_array(w, chunks=(Xd.chunks[0],))
    init = _init(data, 8, 2)
    for options in ({}, {"max_iter": 3}):
        expected = fastkm.KMeans(8, init=init, n_init=1, **options).fit(data, sample_weight=w)
        _same_fit(expected, KMeans(8, init=init, verbose=1, **options).fit(Xd, sample_weight=wd))
    assert "does not fit in the workers' memory" in capsys.readouterr().out
    X32 = data.astype(np.float32)
    expected = fastkm.KMeans(8, init=init, n_init=1).fit(X32)
    fitted = KMeans(8, init=init).fit(da.from_array(X32, chunks=700))
    np.testing.assert_array_equal(fitted.labels_.compute(), expected.labels_)
    assert fitted.n_iter_ == expected.n_iter_


def test_streamed_empty_cluster_and_kmeans_parallel(client, data, streamed):
    X = data
    init = _init(X, 8, 4)
    init[3] = X.max(axis=0) + 1000.0
    Xd = da.from_array(X, chunks=(450, 5))
    _same_fit(fastkm.KMeans(8, init=init, n_init=1).fit(X), KMeans(8, init=init).fit(Xd))
    fitted = KMeans(8, random_state=0).fit(Xd)
    assert fitted.inertia_ == pytest.approx(-fitted.score(Xd), rel=1e-10)
    assert fitted.inertia_ <= 1.01 * fastkm.KMeans(8, n_init=1, random_state=0).fit(X).inertia_


def test_kmeans_parallel_quality(client):
    X, _ = make_blobs(20000, n_features=8, centers=16, cluster_std=3.0, random_state=5)
    Xd = da.from_array(X, chunks=2500)
    ours = [KMeans(16, random_state=seed).fit(Xd).inertia_ for seed in range(3)]
    plusplus = [fastkm.KMeans(16, n_init=1, random_state=seed).fit(X).inertia_ for seed in range(3)]
    assert np.median(ours) <= 1.01 * np.median(plusplus)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["blobs-1M-16-k32", "china-k64"])
def test_kmeans_parallel_quality_at_scale(client, case):
    # The measure: median inertia over 5 seeds within 1% of
    # fastkm.KMeans(init="k-means++", n_init=1) (about 30 s for both cases).
    if case == "china-k64":
        X, k = datasets.china(), 64
    else:
        X, k = make_blobs(1_000_000, n_features=16, centers=32, random_state=0)[0], 32
    Xd = da.from_array(X, chunks=-(-len(X) // 16)).persist()
    ours = [KMeans(k, random_state=seed).fit(Xd).inertia_ for seed in range(5)]
    plusplus = [fastkm.KMeans(k, n_init=1, random_state=seed).fit(X).inertia_ for seed in range(5)]
    assert np.median(ours) <= 1.01 * np.median(plusplus)


def test_exact_kmeans_plusplus(client, data):
    Xd = da.from_array(data, chunks=600)
    fitted = KMeans(8, init="k-means++", random_state=0).fit(Xd)
    local = fastkm.KMeans(8, init=fitted.cluster_centers_, n_init=1).fit(data)
    assert fitted.inertia_ == pytest.approx(local.inertia_, rel=1e-10)
    # Seeded: the same draw again.
    again = KMeans(8, init="k-means++", random_state=0).fit(Xd)
    np.testing.assert_array_equal(again.cluster_centers_, fitted.cluster_centers_)


def test_predict_transform_score_blockwise(client, data):
    X = data
    init = _init(X, 8, 2)
    fitted = KMeans(8, init=init).fit(da.from_array(X, chunks=800))
    local = fastkm.KMeans(8, init=fitted.cluster_centers_, n_init=1, max_iter=1).fit(X)
    local.cluster_centers_ = fitted.cluster_centers_
    Xd = da.from_array(X, chunks=(1100, 5))
    labels = fitted.predict(Xd)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), local.predict(X))
    np.testing.assert_allclose(fitted.transform(Xd).compute(), local.transform(X), rtol=1e-12)
    assert fitted.score(Xd) == pytest.approx(local.score(X), rel=1e-12)
    # numpy input: fastkm.KMeans's methods.
    np.testing.assert_array_equal(fitted.predict(X), local.predict(X))


def test_dataframe_and_unknown_chunks(client, data):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    X = data
    init = _init(X, 8, 2)
    expected = fastkm.KMeans(8, init=init, n_init=1).fit(X)
    frame = dd.from_pandas(pd.DataFrame(X, columns=list("abcde")), npartitions=4)
    named = KMeans(8, init=init).fit(frame)
    _same_fit(expected, named)
    np.testing.assert_array_equal(named.feature_names_in_, list("abcde"))
    np.testing.assert_array_equal(named.predict(frame).compute(), expected.labels_)
    # Column names are checked as scikit-learn checks a pandas DataFrame's.
    renamed = dd.from_pandas(pd.DataFrame(X, columns=list("abcdz")), npartitions=4)
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        named.transform(renamed)
    Xd = da.from_array(X, chunks=700)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but KMeans was fitted with"):
        named.score(Xd)
    assert not hasattr(KMeans(8, init=init).fit(Xd), "feature_names_in_")
    unknown = Xd[Xd[:, 0] > -np.inf]  # the same rows, chunk sizes unknown
    assert np.isnan(unknown.chunks[0][0])
    _same_fit(expected, KMeans(8, init=init).fit(unknown))


def test_numpy_input_is_fastkm_kmeans(data):
    init = _init(data, 8, 2)
    expected = fastkm.KMeans(8, init=init, n_init=1).fit(data)
    fitted = KMeans(8, init=init).fit(data)
    np.testing.assert_array_equal(fitted.labels_, expected.labels_)
    np.testing.assert_array_equal(fitted.cluster_centers_, expected.cluster_centers_)
    default = KMeans(8, random_state=0).fit(data)  # k-means|| on one machine is k-means++
    np.testing.assert_array_equal(
        default.cluster_centers_, fastkm.KMeans(8, random_state=0).fit(data).cluster_centers_
    )


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_block_raises_sklearns_error(client, data, value):
    X = data.copy()
    X[2500, 3] = value
    with pytest.raises(ValueError, match=r"Input X contains (NaN|infinity)"):
        KMeans(8, init=_init(data, 8, 2)).fit(da.from_array(X, chunks=600))


def test_bad_parameters(data):
    Xd = da.from_array(data, chunks=600)
    with pytest.raises(ValueError, match="init_rounds"):
        KMeans(8, init_rounds=0).fit(Xd)
    with pytest.raises(ValueError, match="oversampling_factor"):
        KMeans(8, oversampling_factor=-1).fit(Xd)
    with pytest.raises(ValueError, match="n_samples=600 should be >= n_clusters=601"):
        KMeans(601).fit(Xd[:600])


def test_import_fastkm_imports_no_dask():
    code = "import sys, fastkm; fastkm.KMeans; print('dask' in sys.modules)"
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "False"


@pytest.mark.parametrize("kept", [True, False], ids=["kept", "streamed"])
def test_a_worker_killed_mid_fit_never_hangs(kept, monkeypatch):
    # The nanny restarts a killed worker. Kept on the workers, the blocks'
    # states it held are gone, and the fit says so (or, if it was done
    # first, gives its result). Streamed, the blocks' labels are plain dask
    # tasks: dask runs the lost ones again, and the fit gives its result.
    from fastkm.dask import _kmeans

    max_iter = 300
    if not kept:
        monkeypatch.setattr(_kmeans, "MEMORY_SHARE", 0.0)
        max_iter = 20  # streamed passes take longer: still seconds after the kill
    import os
    import signal
    import threading

    X, _ = make_blobs(200_000, n_features=8, centers=64, cluster_std=4.0, random_state=0)
    init = X[:64]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        Xd = da.from_array(X, chunks=12_500).persist()
        KMeans(64, init=init, max_iter=2).fit(Xd)  # kernels loaded on both workers
        pids = list(client.run(os.getpid).values())
        outcome = {}

        def fit():
            try:
                outcome["fitted"] = KMeans(64, init=init, max_iter=max_iter, tol=0).fit(Xd)
            except RuntimeError as error:
                outcome["error"] = str(error)

        thread = threading.Thread(target=fit)
        thread.start()
        thread.join(0.5)
        os.kill(pids[0], signal.SIGKILL)
        thread.join(120)
        assert not thread.is_alive()
        if "error" in outcome:
            assert kept and "was lost during the fit" in outcome["error"]
        else:
            expected = fastkm.KMeans(64, init=init, n_init=1, max_iter=max_iter, tol=0).fit(X)
            np.testing.assert_array_equal(outcome["fitted"].labels_.compute(), expected.labels_)


def test_column_moments_match_numpy():
    # Taken a slice of rows at a time and merged, with NaN still showing through.
    from fastkm.dask import _blocks

    X = np.random.default_rng(0).normal(5.0, 3.0, (2 * _blocks._MOMENT_ROWS + 123, 3)).astype(np.float32)
    n, means, m2 = _blocks.column_moments(X)
    X64 = X.astype(np.float64)
    assert n == len(X)
    np.testing.assert_allclose(means, X64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(m2, X64.var(axis=0) * len(X), rtol=1e-10)
    assert _blocks.column_moments(X[:0])[0] == 0
    X[-1, 2] = np.nan
    assert not np.isfinite(_blocks.column_moments(X)[1][2])


def test_pinned_tasks_stay_on_their_worker(client):
    # Long tasks pinned to one worker while the other idles: the scheduler's
    # work stealing moved some (copying their states) while other workers
    # were allowed, and a fit then failed as if a worker had been lost.
    from fastkm.dask._cluster import Workers

    def home(i):  # nested: pickled by value for the worker processes
        from fastkm.dask._states import _worker_address

        return {"home": _worker_address(), "i": i}

    def slow(state):
        import time

        from fastkm.dask._states import _worker_address

        time.sleep(0.2)
        return state["home"] == _worker_address()

    first = sorted(_workers_of(client))[0]
    states = [client.submit(home, i, workers=[first], pure=False) for i in range(12)]
    distributed.wait(states)
    runner = Workers(client)
    assert runner.gather(runner.pinned(slow, states)) == [True] * 12


def test_a_result_lost_with_its_worker_never_hangs():
    # A result computed, then lost with its worker before it is fetched: dask
    # computes it again, which needs the task pinned to the lost worker. The
    # fetch notices the loss rather than waiting for that worker forever.
    import os
    import signal
    import threading

    from fastkm.dask._cluster import Workers
    from fastkm.dask._states import LostBlockState

    def state(i):  # nested: pickled by value for the worker processes
        return i

    def step(value):
        return value + 1

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        first = sorted(_workers_of(client))[0]
        states = [client.submit(state, i, workers=[first], pure=False) for i in range(2)]
        distributed.wait(states)
        runner = Workers(client)
        results = runner.pinned(step, states)
        distributed.wait(results)
        os.kill(client.run(os.getpid, workers=[first])[first], signal.SIGKILL)
        outcome = {}

        def fetch():
            try:
                outcome["value"] = runner.gather(results[0])
            except LostBlockState as error:
                outcome["error"] = error

        thread = threading.Thread(target=fetch)
        thread.start()
        thread.join(60)
        assert not thread.is_alive()
        assert "was lost during the fit" in str(outcome["error"])
