"""A first call never waits for the compiler: scikit-learn answers while the kernels compile aside.

Each test starts real processes with their own kernel cache (``NUMBA_CACHE_DIR``)
in the default mode (the rest of the suite runs with ``FASTKM_COMPILE=wait``).
The end-to-end ones compile for real and are marked ``slow`` (run by default;
``-m "not slow"`` leaves them out).
"""

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.cluster

import fastkm
from fastkm import KMeans, MiniBatchKMeans, _cache, _fallback, _tiers, datasets
from fastkm.bench import measure

VERSION_DIR = f"fastkm-{fastkm.__version__}"
DTYPES = ("float64", "float32")


def _env(cache_dir=None, **extra):
    env = {
        key: value for key, value in os.environ.items() if key not in ("FASTKM_COMPILE", "NUMBA_CACHE_DIR")
    }
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env.update(extra)
    return env


def _can_unshare():
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


def _writable_again(directory):
    for path in [directory, *directory.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _run(code, env, *, timeout=600, read_only=(), cwd=None):
    """Run ``code`` in a new Python process; its last stdout line is parsed as JSON.

    The directories ``read_only`` cannot be written by it: made read-only (a
    read-only bind mount in a mount namespace of its own when run as root,
    whom permissions do not stop).
    """
    command = [sys.executable, "-c", textwrap.dedent(code)]
    if read_only:
        for directory in read_only:
            for path in [directory, *directory.rglob("*")]:
                path.chmod(0o555 if path.is_dir() else 0o444)
        if os.geteuid() == 0:
            if not _can_unshare():
                pytest.skip("running as root without mount namespaces: nothing is read-only")
            mounts = " && ".join(f"mount --bind {d} {d} && mount -o remount,bind,ro {d}" for d in read_only)
            env = dict(env, FASTKM_TEST_CODE=command[2])
            command = [
                "unshare",
                "-m",
                "sh",
                "-c",
                f'{mounts} && exec {sys.executable} -c "$FASTKM_TEST_CODE"',
            ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd or tempfile.gettempdir()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def _notices(stderr):
    return [line for line in stderr.splitlines() if line.startswith("fastkm:")]


def _stop_background(pids):
    measure.stop_processes(pids)


def _wait_for_stamp(root, unit, timeout=600):
    stamp = root / "ready" / unit.replace(":", "-")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stamp.with_suffix(".json").exists() or stamp.with_suffix(".failed").exists():
            break
        time.sleep(0.5)
    assert not stamp.with_suffix(".failed").exists(), stamp.with_suffix(".failed").read_text()
    assert _cache.is_ready(unit, root), f"{unit} was not compiled within {timeout} s"


def _shared_tmp():
    # Outlives the test if a background compile is still writing to it; removed by hand.
    return Path(tempfile.mkdtemp(prefix="fastkm-tiers-"))


_FIT_BLOBS = """
    import json, sys
    import numpy as np
    from fastkm import KMeans, datasets
    X = datasets.blobs()
    model = KMeans(4, random_state=0).fit(X)
    tiers = sys.modules["fastkm._tiers"]
    out = {"tier": model._fastkm_tier, "labels": model.labels_.tolist(),
           "centers": model.cluster_centers_.tolist(), "inertia": model.inertia_,
           "background": tiers.background_pids()}
"""


def _sklearn_blobs():
    return sklearn.cluster.KMeans(4, random_state=0).fit(datasets.blobs())


# --- in process: what the scikit-learn tier gives ------------------------------


@pytest.fixture
def fallback(monkeypatch):
    """Every call of this test answered by scikit-learn (as when its kernels are not compiled)."""
    monkeypatch.setattr(_tiers, "choose", lambda units, what: _tiers.FALLBACK)


def _fitted_both_ways(monkeypatch, make, fit):
    compiled = fit(make())
    with monkeypatch.context() as patch:
        patch.setattr(_tiers, "choose", lambda units, what: _tiers.FALLBACK)
        answered = fit(make())
    return compiled, answered


@pytest.mark.parametrize(
    "make, fit",
    [
        (lambda: KMeans(5, random_state=0), lambda m: m.fit(datasets.digits())),
        (lambda: KMeans(40, random_state=0, algorithm="hamerly"), lambda m: m.fit(datasets.digits())),
        (lambda: MiniBatchKMeans(5, random_state=0), lambda m: m.fit(datasets.digits())),
        (
            lambda: MiniBatchKMeans(5, random_state=0, compute_labels=False),
            lambda m: m.fit(datasets.digits()),
        ),
        (
            lambda: MiniBatchKMeans(5, random_state=0),
            lambda m: m.partial_fit(datasets.digits()[:500]).partial_fit(datasets.digits()[500:1000]),
        ),
    ],
    ids=["kmeans", "kmeans-hamerly", "minibatch", "minibatch-no-labels", "partial-fit"],
)
def test_either_tier_fits_the_same_attributes_and_results(monkeypatch, make, fit):
    compiled, answered = _fitted_both_ways(monkeypatch, make, fit)
    assert compiled._fastkm_tier == "compiled" and answered._fastkm_tier == "scikit-learn"
    assert type(answered) is type(compiled)
    assert sorted(vars(answered)) == sorted(vars(compiled))
    for name, value in vars(compiled).items():
        other = getattr(answered, name)
        if isinstance(value, np.ndarray):
            assert other.dtype == value.dtype and other.shape == value.shape, name
    np.testing.assert_allclose(answered.cluster_centers_, compiled.cluster_centers_, rtol=1e-6, atol=1e-6)
    if hasattr(compiled, "labels_"):
        np.testing.assert_array_equal(answered.labels_, compiled.labels_)


def test_fallback_fit_is_scikit_learns_own(fallback):
    X = datasets.digits()
    weights = np.random.default_rng(0).uniform(0.5, 2, len(X))
    ours = KMeans(8, random_state=0, n_init=2, algorithm="yinyang").fit(X, sample_weight=weights)
    theirs = sklearn.cluster.KMeans(8, random_state=0, n_init=2).fit(X, sample_weight=weights)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_array_equal(ours.cluster_centers_, theirs.cluster_centers_)
    assert ours.inertia_ == theirs.inertia_ and ours.n_iter_ == theirs.n_iter_


def test_fallback_methods_match_the_compiled_ones(monkeypatch):
    X = datasets.digits()
    model = KMeans(6, random_state=0).fit(X)
    X32, Xs = X.astype(np.float32), sp.csr_matrix(X[:300])
    compiled = [
        model.predict(X32),
        model.transform(X32),
        model.score(X32),
        model.predict(Xs),
        model.score(Xs),
    ]
    with monkeypatch.context() as patch:
        patch.setattr(_tiers, "choose", lambda units, what: _tiers.FALLBACK)
        answered = [
            model.predict(X32),
            model.transform(X32),
            model.score(X32),
            model.predict(Xs),
            model.score(Xs),
        ]
    np.testing.assert_array_equal(answered[0], compiled[0])
    assert answered[1].dtype == compiled[1].dtype
    np.testing.assert_allclose(answered[1], compiled[1], rtol=1e-4)
    np.testing.assert_allclose(answered[2], compiled[2], rtol=1e-4)
    np.testing.assert_array_equal(answered[3], compiled[3])
    np.testing.assert_allclose(answered[4], compiled[4], rtol=1e-9)


def test_fallback_kmeans_plusplus_and_errors_are_scikit_learns(fallback):
    X = datasets.blobs()
    _, indices = fastkm.kmeans_plusplus(X, 4, random_state=0)
    expected = sklearn.cluster.kmeans_plusplus(X, 4, random_state=0)
    np.testing.assert_array_equal(indices, expected[1])
    with pytest.raises(ValueError, match="n_samples=300 should be >= n_clusters=400"):
        KMeans(400).fit(X)
    model = KMeans(4, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features"):
        model.predict(np.zeros((2, 3)))


def test_fork_after_threads_is_answered_by_scikit_learn(tmp_path):
    # The parent runs compiled (its OpenMP threads start); a forked worker
    # cannot start them again, so scikit-learn answers there. TBB and numba's
    # own workqueue start new threads in a child: it runs compiled.
    code = """
        import json, multiprocessing
        import numba
        import numpy as np
        from fastkm import KMeans, datasets

        def child(_):
            model = KMeans(4, random_state=0).fit(datasets.blobs())
            return model._fastkm_tier, model.labels_.tolist()

        parent = KMeans(4, random_state=0).fit(datasets.blobs())
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(child, range(2))
        print(json.dumps({"parent": parent._fastkm_tier, "children": [r[0] for r in results],
                          "layer": numba.threading_layer(),
                          "same": all(r[1] == parent.labels_.tolist() for r in results)}))
    """
    out, _ = _run(code, _env(tmp_path, FASTKM_COMPILE="wait"), timeout=300)
    child_tier = "scikit-learn" if out["layer"] == "omp" else "compiled"
    assert out["parent"] == "compiled" and out["children"] == [child_tier] * 2 and out["same"]


def test_threads_making_first_calls_at_once(tmp_path):
    code = """
        import json, sys, threading
        from fastkm import KMeans, MiniBatchKMeans, datasets
        X = datasets.blobs()
        tiers, errors = [], []

        def work(cls):
            try:
                tiers.append(cls(4, random_state=0).fit(X)._fastkm_tier)
            except Exception as error:
                errors.append(repr(error))

        threads = [threading.Thread(target=work, args=(cls,)) for cls in [KMeans, MiniBatchKMeans] * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(json.dumps({"tiers": sorted(set(tiers)), "errors": errors,
                          "background": sys.modules["fastkm._tiers"].background_pids()}))
    """
    out, stderr = _run(code, _env(tmp_path))
    _stop_background(out["background"])
    assert out["errors"] == [] and out["tiers"] == ["scikit-learn"]
    assert len(_notices(stderr)) == 1
    # One background compile for the process, however many threads asked.
    assert len(out["background"]) == 1


# --- end to end: real compiles into fresh caches ----------------------------


@pytest.mark.slow
def test_first_fit_is_answered_then_the_next_process_runs_compiled():
    cache = _shared_tmp()
    root = cache / VERSION_DIR
    try:
        code = (
            _FIT_BLOBS
            + """
    model.fit(X)
    out["predicted"] = model.predict(X).tolist()
    from fastkm import MiniBatchKMeans
    out["minibatch"] = MiniBatchKMeans(4, random_state=0).fit(X)._fastkm_tier
    print(json.dumps(out))
    """
        )
        first, stderr = _run(code, _env(cache))
        reference = _sklearn_blobs()
        assert first["tier"] == "scikit-learn" and first["minibatch"] == "scikit-learn"
        np.testing.assert_array_equal(first["labels"], reference.labels_)
        # scikit-learn runs on one thread less while the compile runs: its
        # centres can differ in the last bits, as with its thread count.
        np.testing.assert_allclose(first["centers"], reference.cluster_centers_, rtol=1e-12)
        np.testing.assert_array_equal(first["predicted"], reference.labels_)
        notices = _notices(stderr)
        assert len(notices) == 1 and "answered by scikit-learn" in notices[0] and str(root) in notices[0]
        assert len(first["background"]) == 1

        # The background compile does the fit's unit first: its group for its dtype.
        _wait_for_stamp(root, "kmeans:float64")
        second, stderr = _run(_FIT_BLOBS + "\n    print(json.dumps(out))\n", _env(cache))
        _stop_background(first["background"] + second["background"])
        assert second["tier"] == "compiled" and second["background"] == []
        assert second["labels"] == first["labels"]
        assert _notices(stderr) == []
    finally:
        _stop_background(_cache.worker_pids(root))
        shutil.rmtree(cache, ignore_errors=True)


@pytest.mark.slow
def test_pickled_model_predicts_at_once_in_a_process_with_an_empty_cache(tmp_path):
    model = KMeans(4, random_state=0).fit(datasets.blobs())
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    code = f"""
        import json, pickle, sys
        from fastkm import datasets
        model = pickle.loads(open({str(tmp_path / "model.pkl")!r}, "rb").read())
        labels = model.predict(datasets.blobs())
        print(json.dumps({{"labels": labels.tolist(),
                           "background": sys.modules["fastkm._tiers"].background_pids()}}))
    """
    out, stderr = _run(code, _env(tmp_path / "cache"))
    _stop_background(out["background"])
    assert out["labels"] == model.labels_.tolist()
    assert "KMeans.predict was answered by scikit-learn" in stderr


@pytest.mark.slow
def test_two_processes_starting_at_once_both_finish():
    cache = _shared_tmp()
    root = cache / VERSION_DIR
    try:
        code = _FIT_BLOBS + "\n    print(json.dumps(out))\n"
        outs = [None, None]

        def start(i):
            outs[i] = _run(code, _env(cache))[0]

        threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(out is not None and out["tier"] == "scikit-learn" for out in outs)
        assert outs[0]["labels"] == outs[1]["labels"]
        # Both started a background compile: one compiles (it records itself
        # once it holds the lock), the other waits for the lock.
        deadline = time.monotonic() + 60
        while not _cache.worker_pids(root) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_cache.worker_pids(root)) == 1
        started = [pid for out in outs for pid in out["background"]]
        assert len(started) == 2 and all(Path(f"/proc/{pid}").exists() for pid in started)
    finally:
        _stop_background(_cache.worker_pids(root) + [pid for out in outs if out for pid in out["background"]])
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="module")
def compiled_cache():
    """A cache filled by ``fastkm compile`` (every group, both dtypes), as a Dockerfile would."""
    cache = _shared_tmp()
    result = subprocess.run(
        [sys.executable, "-m", "fastkm", "compile"],
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    yield cache, result
    shutil.rmtree(cache, ignore_errors=True)


_EVERY_PATH = """
    import json, logging, pickle, sys
    import numpy as np, scipy.sparse as sp
    import fastkm
    from fastkm import KMeans, MiniBatchKMeans, datasets

    class Misses(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.names = []
        def emit(self, record):
            if record.getMessage().startswith("fastkm: compiling "):
                self.names.append(record.getMessage())

    misses = Misses()
    logging.getLogger("fastkm").addHandler(misses)
    logging.getLogger("fastkm").setLevel(logging.DEBUG)
    tiers = []
    for X in (datasets.digits(), datasets.digits().astype(np.float32), datasets.blobs()):
        for algorithm in ("auto", "lloyd", "elkan", "hamerly", "yinyang"):
            model = KMeans(12, random_state=0, algorithm=algorithm).fit(X)
            tiers.append(model._fastkm_tier)
        model.predict(X), model.transform(X), model.score(X)
        tiers.append(MiniBatchKMeans(8, random_state=0).fit(X)._fastkm_tier)
        tiers.append(MiniBatchKMeans(8, random_state=0).partial_fit(X).partial_fit(X)._fastkm_tier)
        fastkm.kmeans_plusplus(X, 5, random_state=0)
    china = datasets.china()[::7]
    tiers.append(KMeans(16, random_state=0).fit(china)._fastkm_tier)
    tiers.append(KMeans(200, random_state=0, max_iter=5).fit(datasets.digits())._fastkm_tier)
    Xs = sp.random(800, 50, density=0.1, format="csr", random_state=0)
    model = KMeans(5, random_state=0).fit(Xs)
    model.predict(Xs), model.transform(Xs), model.score(Xs)
    tiers.append(model._fastkm_tier)
    tiers.append(MiniBatchKMeans(5, random_state=0).fit(Xs)._fastkm_tier)
    tiers.append(KMeans(5, random_state=0).fit(Xs[:300])._fastkm_tier)
    # Small fits run whole, float32 too; empty clusters relocated past 512 rows.
    tiers.append(KMeans(4, random_state=0).fit(datasets.blobs().astype(np.float32))._fastkm_tier)
    digits = datasets.digits()
    copies = np.repeat(digits[:1], 5, axis=0)
    tiers.append(KMeans(5, init=copies, n_init=1, max_iter=3).fit(digits)._fastkm_tier)
    from sklearn.datasets import load_sample_image
    fastkm.quantize(load_sample_image("china.jpg")[::4, ::4], 8, random_state=0)
    # Data too large for Lloyd's float32 copy of float64 data.
    from fastkm._solvers import layout
    layout.TILED_COPY_BUDGET = 0
    tiers.append(KMeans(5, random_state=0, algorithm="lloyd").fit(datasets.digits())._fastkm_tier)
    print(json.dumps({"tiers": sorted(set(tiers)), "misses": misses.names,
                      "background": sys.modules["fastkm._tiers"].background_pids()}))
"""


@pytest.mark.slow
def test_fastkm_compile_fills_the_cache_every_public_path_loads(compiled_cache):
    cache, result = compiled_cache
    root = cache / VERSION_DIR
    assert f"into {root}" in result.stdout
    assert "compiled " in result.stdout and all(g in result.stdout for g in ("kmeans", "minibatch", "sparse"))
    # Piped, the progress is a line per step.
    assert sum("float64" in line for line in result.stderr.splitlines()) >= 4
    units = [f"{group}:{dtype}" for group in ("predict", "kmeans", "minibatch", "sparse") for dtype in DTYPES]
    assert all(_cache.is_ready(unit, root) for unit in units)
    out, _ = _run(_EVERY_PATH, _env(cache))
    assert out["tiers"] == ["compiled"] and out["background"] == []
    assert out["misses"] == [], "kernels `fastkm compile` left out"
    # A second run has nothing to do.
    again = subprocess.run(
        [sys.executable, "-m", "fastkm", "compile"], env=_env(cache), capture_output=True, text=True
    )
    assert again.returncode == 0 and "nothing to do" in again.stdout


@pytest.mark.slow
def test_read_only_cache_is_loaded(compiled_cache, tmp_path):
    # A prebuilt cache as a container image or a shared install has it:
    # compiled elsewhere, then read-only for the process that uses it.
    cache, _ = compiled_cache
    shutil.copytree(cache, tmp_path / "cache")
    home = tmp_path / "home"
    home.mkdir()
    # numba's runtime too: `fastkm compile` saved it, this process loads it.
    refuse = """
    from fastkm._kernels import _runtime
    def _refused(target_context):
        raise AssertionError("numba's runtime compiled again")
    _runtime._compile = _refused
"""
    code = (
        refuse
        + _FIT_BLOBS
        + """
    out["predicted"] = model.predict(X).tolist()
    print(json.dumps(out))
    """
    )
    try:
        out, stderr = _run(
            code, _env(tmp_path / "cache", HOME=str(home)), read_only=[tmp_path / "cache", home]
        )
    finally:
        _writable_again(tmp_path)
    assert out["tier"] == "compiled" and out["background"] == []
    np.testing.assert_array_equal(out["labels"], _sklearn_blobs().labels_)
    # Loaded, not compiled: no notice.
    assert _notices(stderr) == []


@pytest.mark.slow
def test_nothing_writable_imports_and_compiles_in_memory(tmp_path):
    home, locked = tmp_path / "home", tmp_path / "locked"
    home.mkdir()
    locked.mkdir()
    env = _env(HOME=str(home), FASTKM_CACHE_DIR=str(locked / "cache"), XDG_CACHE_HOME=str(locked))
    code = """
        import json
        import numpy as np
        from fastkm import KMeans
        model = KMeans(2)
        model.cluster_centers_ = np.array([[0.0, 0.0], [5.0, 5.0]])
        model.n_features_in_, model._n_features_out = 2, 2
        print(json.dumps({"labels": model.predict(np.array([[0.1, 0.0], [4.0, 6.0]])).tolist()}))
    """
    try:
        out, stderr = _run(code, env, read_only=[home, locked])
    finally:
        _writable_again(tmp_path)
    assert out["labels"] == [0, 1]
    notices = _notices(stderr)
    assert len(notices) == 1 and "kept in memory only" in notices[0]
    assert not (locked / "cache").exists()


_FROZEN = """
    import gc, json, subprocess, sys
    import fastkm
    from fastkm import _cache

    # As a frozen application (PyInstaller) sets it: sys.executable is the
    # application, no Python to start compile processes with.
    sys.frozen = True

    def no_process(*args, **kwargs):
        raise AssertionError(f"started {args}")

    subprocess.Popen = no_process
    report = fastkm.compile(["predict"], processes=2, progress=False)
    units = [f"predict:{dtype}" for dtype in ("float64", "float32")]
    print(json.dumps({"compiled": sorted(report.compiled), "ready": [_cache.is_ready(u) for u in units],
                      "collector": [gc.isenabled(), gc.get_freeze_count()]}))
"""


@pytest.mark.slow
def test_compile_in_a_frozen_application_compiles_in_process(tmp_path):
    # The caller's process compiles every unit in turn, its collector as it was.
    out, _ = _run(_FROZEN, _env(tmp_path))
    assert out == {"compiled": ["predict"], "ready": [True, True], "collector": [True, 0]}


def test_compile_clear_removes_the_cache(tmp_path):
    root = tmp_path / VERSION_DIR
    _cache.mark_ready("predict:float64", 1.0, root)
    env = _env(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "fastkm", "compile", "--clear"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and f"removed {root}" in out.stdout and not root.exists()
    again = subprocess.run(
        [sys.executable, "-m", "fastkm", "compile", "--clear"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and "no cache at" in again.stdout


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delenv("FASTKM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.cache_root() == tmp_path / "xdg" / "fastkm" / fastkm.__version__
    monkeypatch.setenv("FASTKM_CACHE_DIR", str(tmp_path / "own"))
    assert _cache.cache_root() == tmp_path / "own"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert _cache.cache_root() == tmp_path / "numba" / VERSION_DIR
    # Nothing of it inside the package.
    assert Path(fastkm.__file__).parent not in _cache.cache_root().parents


def test_stamps_are_keyed_by_sources_and_machine(tmp_path):
    assert not _cache.is_ready("kmeans:float64", tmp_path)
    _cache.mark_ready("kmeans:float64", 3.0, tmp_path)
    assert _cache.is_ready("kmeans:float64", tmp_path)
    assert not _cache.is_ready("kmeans:float32", tmp_path)
    stamp = tmp_path / "ready" / "kmeans-float64.json"
    data = json.loads(stamp.read_text())
    data["key"]["sources"] = "edited"
    stamp.write_text(json.dumps(data))
    assert not _cache.is_ready("kmeans:float64", tmp_path)


def test_stamp_versions_are_the_installed_ones(monkeypatch):
    from importlib import metadata

    expected = {package: metadata.version(package) for package in ("numba", "llvmlite", "numpy")}
    assert _cache._version_of("fastkm_no_such_package") == "?"

    def unused(package):
        raise AssertionError(f"importlib.metadata asked for {package}")

    # Read from the .dist-info folders' names, without importlib.metadata.
    monkeypatch.setattr(metadata, "version", unused)
    assert {package: _cache._version_of(package) for package in expected} == expected


def test_unknown_group_is_an_error():
    with pytest.raises(ValueError, match="unknown kernel groups"):
        fastkm.compile(["nope"])
    out = subprocess.run(
        [sys.executable, "-m", "fastkm", "compile", "--only", "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "unknown kernel group 'nope'" in out.stderr


def test_fallback_twin_maps_fastkm_only_algorithms():
    twin = _fallback._sklearn_twin(KMeans(3, algorithm="yinyang"))
    assert isinstance(twin, sklearn.cluster.KMeans) and twin.algorithm == "lloyd"


def test_units_follow_the_data():
    X = datasets.blobs()
    assert _tiers.units_for(X, "kmeans") == ["kmeans:float64"]
    assert _tiers.units_for(X.astype(np.float32), "predict") == ["predict:float32"]
    assert _tiers.units_for(X.astype(np.int64), "kmeans") == ["kmeans:float64"]
    assert _tiers.units_for(sp.csr_matrix(X.astype(np.float32)), "minibatch") == ["sparse:float32"]
    # No dtype until validated: either may be needed.
    assert _tiers.units_for(X.tolist(), "kmeans") == ["kmeans:float64", "kmeans:float32"]


def test_a_compiled_dtype_runs_compiled_while_the_other_is_answered(monkeypatch):
    ready = {"kmeans:float32", "predict:float32"}
    started = []
    monkeypatch.setattr(_tiers, "mode", lambda: "background")
    monkeypatch.setattr(_tiers, "_is_ready", lambda unit: unit in ready)
    monkeypatch.setattr(_tiers, "_can_write", lambda root: True)
    monkeypatch.setattr(_tiers, "_start_background", lambda units, root: started.append(units) or True)
    monkeypatch.setattr(_tiers, "_noticed", False)
    X = datasets.blobs()
    model = KMeans(4, random_state=0).fit(X.astype(np.float32))
    assert model._fastkm_tier == "compiled"
    assert model.predict(X.astype(np.float32)).dtype == np.int32
    assert KMeans(4, random_state=0).fit(X)._fastkm_tier == "scikit-learn"
    # The call's unit first, then the other dense units, its dtype first.
    assert started == [["kmeans:float64", "predict:float64", "minibatch:float64", "minibatch:float32"]]


def test_partial_fit_carries_its_state_across_tiers(monkeypatch):
    X = datasets.digits()
    chunks = np.array_split(X, 4)
    compiled = MiniBatchKMeans(8, random_state=0)
    for chunk in chunks:
        compiled.partial_fit(chunk)
    mixed = MiniBatchKMeans(8, random_state=0)
    for i, chunk in enumerate(chunks):
        with monkeypatch.context() as patch:
            if i % 2 == 0:
                patch.setattr(_tiers, "choose", lambda units, what: _tiers.FALLBACK)
            mixed.partial_fit(chunk)
        assert mixed._fastkm_tier == ("scikit-learn" if i % 2 == 0 else "compiled")
    assert mixed.n_steps_ == compiled.n_steps_ == 4
    assert mixed._n_since_last_reassign == compiled._n_since_last_reassign
    np.testing.assert_allclose(mixed.cluster_centers_, compiled.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(mixed._counts, compiled._counts, rtol=1e-12)
    np.testing.assert_array_equal(mixed.labels_, compiled.labels_)


def test_fallback_partial_fit_on_a_read_only_model(fallback):
    X = datasets.digits()
    model = MiniBatchKMeans(10, random_state=0).partial_fit(X[:600])
    for array in (model.cluster_centers_, model._counts):
        array.flags.writeable = False
    model.partial_fit(X[600:1200])
    assert model._fastkm_tier == "scikit-learn"
