"""fastkm.bench: the case table, the measurements, the runner and the report writers."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastkm import bench
from fastkm.bench import cases as case_table
from fastkm.bench import libraries, measure, report, runner

TINY = measure.Budget(seconds=0.0, min_repeats=2, max_repeats=2, cold_start_repeats=1)


def test_case_table_covers_the_issue():
    names = [case.name for case in bench.CASES]
    assert len(names) == len(set(names))
    sizes = {(c.dataset, c.k) for c in bench.CASES if not (c.cold_start or c.on_cluster)}
    assert sizes == {
        ("blobs", 4),
        ("digits", 10),
        ("china", 16),
        ("china", 64),
        ("china", 256),
        ("large", 32),
        ("highd", 100),
        ("sparse", 32),
    }
    for dataset, k in sizes:
        tasks = {c.task for c in bench.CASES if (c.dataset, c.k) == (dataset, k) and not c.cold_start}
        assert tasks == {"fit-init", "fit", "minibatch", "predict"}
    assert {"cold-start", "cold-start-compile"} <= set(names)


def test_case_names_and_groups():
    case = bench.Case("china", 64, "fit-init")
    assert case.name == "china-k64-fit-init"
    assert case.group == "china|KMeans.fit same init|k=64"
    assert "273,280 x 3" in case.description
    assert bench.Case("digits", 10, "cold-start").name == "cold-start"
    assert bench.Case("large", 32, "fit").heavy and bench.Case("china", 256, "predict").heavy
    assert not bench.Case("china", 64, "minibatch").heavy


@pytest.mark.parametrize("name", ["blobs", "digits", "china"])
def test_datasets_have_their_stated_shape(name):
    X, target = case_table.load_dataset(name)
    assert X.shape == case_table.DATASETS[name].shape
    assert X.dtype == np.float64 and X.flags.c_contiguous
    assert (target is not None) == (name == "digits")


def test_high_dim_dataset_is_float32_as_stated():
    # The high-d case is float32 for every library (its Lloyd scores in float32).
    X, target = case_table.load_dataset("highd")
    assert X.shape == case_table.DATASETS["highd"].shape == (100_000, 128)
    assert X.dtype == np.float32 and X.flags.c_contiguous and target is None
    assert bench.Case("highd", 100, "fit-init").heavy


def test_large_dataset_shape_is_stated():
    # Loading it takes a second and 128 MB; the loader is datasets.large_blobs.
    assert case_table.DATASETS["large"].shape == (1_000_000, 16)


def test_select_cases():
    all_cases = bench.select_cases()
    # The Dask case runs only when named: it starts a cluster and needs the dask extra.
    assert all_cases == [c for c in bench.CASES if not c.on_cluster]
    assert [c.name for c in bench.select_cases(["dask"])] == ["dask-blobs10m-k32"]
    assert bench.select_cases(["dask"])[0].heavy
    quick = bench.select_cases(quick=True)
    assert quick and all(not c.heavy for c in quick)
    assert [c.name for c in bench.select_cases(["china-k64-fit"])] == ["china-k64-fit"]
    assert {c.name for c in bench.select_cases(["digits"])} == {
        "digits-k10-fit-init",
        "digits-k10-fit",
        "digits-k10-minibatch",
        "digits-k10-predict",
    }
    predicts = bench.select_cases(["*-predict"])
    assert len(predicts) == 8 and all(c.task == "predict" for c in predicts)
    # Patterns combine; the table's order is kept; --quick does not drop named cases.
    picked = bench.select_cases(["cold-start-compile", "blobs-k4-fit"], quick=True)
    assert [c.name for c in picked] == ["blobs-k4-fit", "cold-start-compile"]


def test_unknown_case_lists_the_valid_ones():
    with pytest.raises(bench.UnknownCaseError) as error:
        bench.select_cases(["china", "chna-k64", "k64"])
    message = str(error.value)
    assert "'chna-k64', 'k64'" in message and "'china'" not in message.split(";")[0]
    assert all(case.name in message for case in bench.CASES)


def test_inertia_matches_numpy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 5))
    centers = rng.normal(size=(7, 5))
    labels = rng.integers(0, 7, size=1000)
    expected = ((X - centers[labels]) ** 2).sum()
    assert measure.inertia(X, centers, labels, chunk=64) == pytest.approx(expected, rel=1e-12)


def test_majority_accuracy():
    labels = np.array([0, 0, 0, 1, 1, 2])
    target = np.array([3, 3, 5, 4, 4, 4])
    # cluster 0 -> digit 3 (2 of 3), cluster 1 -> 4 (2), cluster 2 -> 4 (1)
    assert measure.majority_accuracy(labels, target) == pytest.approx(5 / 6)
    assert measure.majority_accuracy(target, target) == 1.0


def test_score_uses_nearest_centres_when_labels_are_missing():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]])
    centers = np.array([[5.0, 5.0], [0.0, 0.0]])
    inertia, accuracy = measure.score(libraries.Fitted(centers), X, target=np.array([1, 1, 0]))
    assert inertia == pytest.approx(0.01) and accuracy == 1.0


def test_time_calls_warms_up_then_respects_the_budget():
    calls = []
    times, result = measure.time_calls(lambda: calls.append(1) or len(calls), TINY)
    assert len(times) == 2 and len(calls) == 3 and result == 3
    budget = measure.Budget(seconds=0.05, min_repeats=1, max_repeats=1000)
    times, _ = measure.time_calls(lambda: None, budget)
    assert 1 <= len(times) <= 1000


def _run(case_names, names=("sklearn", "fastkm")):
    cases = bench.select_cases(case_names)
    libs = [bench.LIBRARIES[name] for name in names]
    seen = []
    result = bench.run(cases, libs, budget=TINY, progress=lambda c, lib: seen.append((c, lib)))
    return result, seen


def test_run_blobs_and_digits():
    result, seen = _run(["blobs-k4-fit-init", "blobs-k4-predict", "digits-k10-minibatch"])
    assert [r.case.name for r in result.results] == [
        "blobs-k4-fit-init",
        "blobs-k4-predict",
        "digits-k10-minibatch",
    ]
    assert len(seen) == 3 * 2 + 1 and seen[-1] == (None, None)
    for r in result.results:
        assert set(r.measurements) == {"sklearn", "fastkm"}
        assert all(len(m.times) == 2 for m in r.measurements.values())
        assert r.speedup("fastkm") > 0
        # Same init / same random_state: the same clustering.
        assert r.inertia_ratio("fastkm") == pytest.approx(1.0, rel=1e-9)
    digits = result.results[2]
    assert 0.5 < digits.measurements["sklearn"].accuracy == digits.measurements["fastkm"].accuracy
    assert result.libraries["sklearn"] and result.machine["logical_cpus"]


def test_run_skips_tasks_a_library_does_not_have():
    class KMeansOnly(libraries.ScikitLearn):
        name = "kmeans-only"
        minibatch_kmeans = None

    cases = bench.select_cases(["blobs-k4-minibatch"])
    result = bench.run(cases, [bench.LIBRARIES["sklearn"], KMeansOnly()], budget=TINY)
    r = result.results[0]
    assert set(r.measurements) == {"sklearn"}
    assert r.speedup("kmeans-only") is None and r.inertia_ratio("kmeans-only") is None


def test_cold_start_runs_a_fresh_process():
    X = np.random.default_rng(0).normal(size=(200, 4))
    times = measure.time_cold_starts([bench.LIBRARIES["sklearn"]], X, 3, mode="warm", repeats=2)
    assert list(times) == ["sklearn"]
    assert len(times["sklearn"]) == 2 and all(0 < t < 60 for t in times["sklearn"])


def _library_that_logs(name, log):
    class Logs(libraries.Library):
        cold_start_code = f"open({str(log)!r}, 'a').write({name!r} + ' ')"
        cold_start_setup = f"open({str(log)!r}, 'a').write('set-' + {name!r} + ' ')"

    Logs.name = name
    return Logs()


@pytest.mark.parametrize(
    ("mode", "order"),
    [
        ("first", "first second second first first second"),
        # Each library's setup, then one untimed process each, then the rounds.
        ("warm", "set-first set-second first second first second second first first second"),
    ],
)
def test_cold_start_processes_take_turns(tmp_path, mode, order):
    # Alternating who goes first: the machine's drift over a run falls on both.
    log = tmp_path / "order"
    both = [_library_that_logs(name, log) for name in ("first", "second")]
    times = measure.time_cold_starts(both, np.zeros((10, 2)), 2, mode=mode, repeats=3)
    assert {name: len(seconds) for name, seconds in times.items()} == {"first": 3, "second": 3}
    assert log.read_text().split() == order.split()


def test_cold_start_failure_is_reported():
    class Broken(libraries.Library):
        name = "broken"
        cold_start_code = "raise SystemExit('no such library')"

    X = np.zeros((10, 2))
    with pytest.raises(RuntimeError, match="cold start of broken failed:\nno such library"):
        measure.time_cold_starts([Broken()], X, 2, mode="first", repeats=1)


def test_missing_peers_are_left_out(monkeypatch):
    monkeypatch.setattr(libraries.Library, "available", lambda self: self.name in ("sklearn", "fastkm"))
    chosen, missing = bench.resolve_libraries()
    assert [lib.name for lib in chosen] == ["sklearn", "fastkm"]
    assert [lib.name for lib in missing] == ["sklearnex", "faiss"]
    with pytest.raises(ValueError, match="faiss is not installed here: pip install faiss-cpu"):
        bench.resolve_libraries(["fastkm", "faiss"])


def test_resolve_libraries_puts_the_reference_first():
    chosen, missing = bench.resolve_libraries(["fastkm"])
    assert [lib.name for lib in chosen] == ["sklearn", "fastkm"] and missing == []
    with pytest.raises(ValueError, match="unknown library 'sk-learn'; valid libraries: sklearn, fastkm"):
        bench.resolve_libraries(["sk-learn"])


@pytest.mark.parametrize("peer", ["sklearnex", "faiss"])
def test_peer_adapters(peer):
    lib = bench.LIBRARIES[peer]
    if not lib.available():
        pytest.skip(f"{peer} is not installed")
    result, _ = _run(
        ["digits-k10-fit-init", "digits-k10-fit", "digits-k10-minibatch", "digits-k10-predict"],
        ("sklearn", peer),
    )
    by_case = {r.case.task: r for r in result.results}
    # From the same init, a peer reaches about scikit-learn's inertia.
    assert by_case["fit-init"].inertia_ratio(peer) == pytest.approx(1.0, rel=1e-2)
    assert by_case["predict"].inertia_ratio(peer) == pytest.approx(1.0, rel=1e-2)
    assert by_case["fit"].speedup(peer) > 0
    assert peer not in by_case["minibatch"].measurements


# The writers, on a hand-made report.


def _report():
    fit = runner.CaseResult(bench.Case("digits", 10, "fit-init"))
    fit.measurements["sklearn"] = measure.Measurement([0.004, 0.003, 0.005], 100.0, 0.79, 12)
    fit.measurements["fastkm"] = measure.Measurement([0.001, 0.002, 0.0015], 100.0, 0.79, 12)
    mb = runner.CaseResult(bench.Case("china", 64, "minibatch"))
    mb.measurements["sklearn"] = measure.Measurement([0.6], 50.0)
    mb.measurements["fastkm"] = measure.Measurement([0.02], 50.5)
    cold = runner.CaseResult(bench.Case("digits", 10, "cold-start"))
    cold.measurements["sklearn"] = measure.Measurement([1.0])
    cold.measurements["fastkm"] = measure.Measurement([1.25])
    machine = {"cpu": "Test CPU", "logical_cpus": 2, "numba_threads": 2, "date": "2026-11-22"}
    return runner.Report(machine, {"sklearn": "1.9.1", "fastkm": "0.1.0"}, False, [fit, mb, cold])


def test_format_seconds():
    assert report.format_seconds(2.914) == "2.91 s"
    assert report.format_seconds(0.0367) == "36.7 ms"
    assert report.format_seconds(0.000112) == "112 us"
    assert report.format_seconds(123.4) == "123 s"


def test_table_rows():
    rows = report.rows(_report())
    assert rows[0][:5] == ["case", "sklearn", "fastkm", "fastkm speed-up", "fastkm inertia ratio"]
    assert rows[1] == ["digits-k10-fit-init", "4.00 ms", "1.50 ms", "2.67x", "1.000000", "0.790 / 0.790"]
    assert rows[2] == ["china-k64-minibatch", "600 ms", "20.0 ms", "30.00x", "1.010000", ""]
    assert rows[3] == ["cold-start", "1.00 s", "1.25 s", "0.80x", "-", ""]
    text = report.format_table(_report())
    assert "china-k64-minibatch" in text and "30.00x" in text


def test_markdown(tmp_path):
    path = tmp_path / "results.md"
    bench.write_markdown(_report(), path, command="fastkm bench --quick")
    text = path.read_text()
    assert text.startswith("`fastkm bench --quick` on Test CPU, 2 logical CPUs, 2 Numba threads")
    assert "sklearn 1.9.1, fastkm 0.1.0" in text
    assert "| digits-k10-fit-init | 4.00 ms | 1.50 ms | 2.67x | 1.000000 | 0.790 / 0.790 |" in text
    assert "| cold-start | 1.00 s | 1.25 s | 0.80x | - |   |" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1


def test_json(tmp_path):
    path = tmp_path / "results.json"
    bench.write_json(_report(), path)
    data = json.loads(path.read_text())
    assert data["reference"] == "sklearn" and data["machine"]["cpu"] == "Test CPU"
    first = data["results"][0]
    assert first["case"] == "digits-k10-fit-init" and first["group"] == "digits|KMeans.fit same init|k=10"
    fast = first["libraries"]["fastkm"]
    assert fast["times_s"] == [0.001, 0.002, 0.0015] and fast["median_s"] == 0.0015
    assert fast["speedup"] == pytest.approx(0.004 / 0.0015) and fast["inertia_ratio"] == 1.0
    assert fast["accuracy"] == 0.79 and fast["n_iter"] == 12
    assert first["libraries"]["sklearn"]["speedup"] == 1.0


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    monkeypatch.setattr(report, "to_json", lambda r: {"not serialisable": object()})
    with pytest.raises(TypeError):
        bench.write_json(_report(), path)
    assert list(tmp_path.iterdir()) == []


def _cluster_report():
    result = runner.CaseResult(bench.Case("blobs10m", 32, "dask-iteration"))
    names = bench.cluster
    for name, seconds in (
        (names.DASK, 0.1),
        (names.ONE_PROCESS, 0.16),
        (names.DASK + names.LLOYD, 0.22),
        (names.ONE_PROCESS + names.LLOYD, 0.15),
        (names.DASK_ML, 1.25),
    ):
        result.measurements[name] = measure.Measurement([seconds], 1.0, None, 11)
    base = _report()
    base.results.append(result)
    return base


def test_cluster_table():
    rows = report.cluster_rows(_cluster_report())
    assert rows[0][1:4] == ["fastkm", "fastkm.dask", "fastkm.dask / fastkm"]
    assert rows[1] == ["dask-blobs10m-k32 (auto)", "160 ms", "100 ms", "0.62x", "1.25 s", "12.5x"]
    assert rows[2] == ["dask-blobs10m-k32 (lloyd)", "150 ms", "220 ms", "1.47x", "1.25 s", "5.7x"]
    assert report.cluster_rows(_report()) is None
    # The in-process table leaves the Dask case out; the text and markdown have both tables.
    assert [row[0] for row in report.rows(_cluster_report())][-1] == "cold-start"
    text = report.format_table(_cluster_report())
    assert "china-k64-minibatch" in text and "dask-blobs10m-k32 (lloyd)" in text
    markdown = report.to_markdown(_cluster_report())
    assert "| dask-blobs10m-k32 (auto) | 160 ms | 100 ms | 0.62x | 1.25 s | 12.5x |" in markdown
    with_versions = _cluster_report()
    with_versions.machine["dask"] = "dask 2025.1.0, distributed 2025.1.0, dask-ml 2025.1.0"
    assert "; dask 2025.1.0, distributed 2025.1.0, dask-ml 2025.1.0; 2026-11-22" in report.describe_machine(
        with_versions
    )
    assert "dask " in bench.cluster.versions()
    entry = report.to_json(_cluster_report())["results"][-1]
    assert entry["reference"] == "fastkm"
    assert entry["libraries"]["fastkm.dask"]["speedup"] == pytest.approx(1.6)


_MEASURE = """
import json
from fastkm.bench import cluster
if __name__ == "__main__":
    results = cluster.measure(40_000, 4, 4, 8, rounds=1, short=1, long=3, dask_ml_long=2)
    print(json.dumps({name: [m.times, m.n_iter, m.inertia] for name, m in results.items()}))
"""


@pytest.mark.slow
def test_cluster_case_on_a_local_cluster(tmp_path):
    # A small version of the Dask case, on a real LocalCluster of its own, in
    # a process of its own (as fastkm bench runs it: no other client about).
    pytest.importorskip("distributed")
    script = tmp_path / "measure.py"
    script.write_text(_MEASURE)
    env = {**os.environ, "FASTKM_COMPILE": "wait"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {"fastkm.dask", "fastkm", "fastkm.dask lloyd", "fastkm lloyd"}
    assert expected <= set(results) and set(results) - expected <= {"dask-ml"}
    for name, (times, n_iter, _) in results.items():
        assert len(times) == 1 and n_iter == (2 if name == "dask-ml" else 3)
    # From the same initial centres, the same iterations: the same inertia.
    assert results["fastkm.dask"][2] == pytest.approx(results["fastkm"][2], rel=1e-6)


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speedups.png"
    bench.plot_speedups(_report(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["speedups.png"]
