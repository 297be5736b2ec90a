"""fastkm.sweep: the k sweep against the same loop in scikit-learn, and Kneedle."""

import numpy as np
import pytest
from sklearn import metrics as sk
from sklearn.cluster import KMeans as SKLearnKMeans
from sklearn.datasets import make_blobs

from fastkm import KMeans, MiniBatchKMeans
from fastkm.sweep import kneedle, sweep_n_clusters


def _blobs(n=600, centers=4, seed=0):
    return make_blobs(n, centers=centers, cluster_std=0.6, random_state=seed)[0]


def test_kneedle_finds_the_knee_and_only_one():
    k = np.arange(1, 11)
    # Inertia-like: steep to k=4, then nearly flat.
    y = np.array([100.0, 60.0, 30.0, 10.0, 9.0, 8.0, 7.5, 7.0, 6.8, 6.6])
    assert kneedle(k, y) == 4
    assert kneedle(k, 100.0 - 10.0 * k) is None  # a straight line has no knee
    assert kneedle(k, np.ones(10)) is None
    assert kneedle([1, 2], [3.0, 1.0]) is None
    assert kneedle(k, 1.0 / k) in (2, 3)  # a smooth hyperbola: its knee is early


def test_sweep_finds_four_blobs():
    sweep = sweep_n_clusters(_blobs(), range(2, 9), estimator=KMeans(random_state=0))
    assert list(sweep.n_clusters) == list(range(2, 9))
    assert sweep.elbow == 4 and sweep.best_silhouette == 4
    for name in ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "fit_seconds"):
        assert getattr(sweep, name).shape == (7,)
    assert np.all(np.diff(sweep.inertia) < 0) and np.all(sweep.fit_seconds > 0)
    text = str(sweep)
    assert "elbow" in text and "best silhouette" in text and len(text.splitlines()) == 8
    frame = sweep.to_frame()
    assert frame.index.name == "n_clusters" and list(frame.index) == list(range(2, 9))
    assert frame.loc[4, "silhouette"] == sweep.silhouette[2]


def test_sweep_is_the_scikit_learn_loop():
    # Each k fitted as KMeans would be, and scored with scikit-learn's metrics.
    X = _blobs(400, centers=5, seed=1)
    sweep = sweep_n_clusters(X, [3, 2, 6], estimator=KMeans(random_state=3, n_init=2))
    for i, k in enumerate([3, 2, 6]):
        model = SKLearnKMeans(k, random_state=3, n_init=2).fit(X)
        assert sweep.inertia[i] == pytest.approx(model.inertia_, rel=1e-12)
        assert sweep.silhouette[i] == pytest.approx(sk.silhouette_score(X, model.labels_), rel=1e-12)
        assert sweep.calinski_harabasz[i] == pytest.approx(
            sk.calinski_harabasz_score(X, model.labels_), rel=1e-12
        )
        assert sweep.davies_bouldin[i] == pytest.approx(sk.davies_bouldin_score(X, model.labels_), rel=1e-12)


def test_minibatch_models_and_progress():
    X = _blobs()
    estimator = MiniBatchKMeans(random_state=0, n_init=3)
    seen = []
    sweep = sweep_n_clusters(X, range(2, 6), estimator=estimator, return_models=True, progress=seen.append)
    assert seen == [2, 3, 4, 5]
    assert [m.n_clusters for m in sweep.models] == [2, 3, 4, 5]
    assert all(isinstance(m, MiniBatchKMeans) for m in sweep.models)
    assert estimator.n_clusters == 8 and not hasattr(estimator, "cluster_centers_")  # a clone was fitted
    assert sweep_n_clusters(X, range(2, 4)).models is None


def test_sampled_silhouette_past_the_size():
    X = _blobs(900)
    sweep = sweep_n_clusters(
        X,
        [4, 2, 6],
        estimator=KMeans(random_state=0),
        silhouette_sample_size=300,
        random_state=2,
        return_models=True,
    )
    assert sweep.silhouette_sample_size == 300 and "300 samples" in str(sweep)
    # One sample for every k: scikit-learn's draw for random_state=2.
    for score, model in zip(sweep.silhouette, sweep.models, strict=True):
        expected = sk.silhouette_score(X, model.labels_, sample_size=300, random_state=2)
        assert score == pytest.approx(expected, rel=1e-12)
    exact = sweep_n_clusters(X, [4], estimator=KMeans(random_state=0), silhouette_sample_size=None)
    assert exact.silhouette_sample_size is None
    assert sweep.silhouette[0] == pytest.approx(exact.silhouette[0], abs=0.05)
    assert sweep.silhouette[0] != exact.silhouette[0]


@pytest.mark.parametrize(
    "n_clusters, message",
    [
        (range(1, 4), "n_clusters must be from 2 to n_samples - 1 = 599"),
        ([2, 600], "n_clusters must be from 2 to n_samples - 1 = 599 .*, got 600"),
        ([], "n_clusters is empty"),
    ],
)
def test_bad_ranges(n_clusters, message):
    with pytest.raises(ValueError, match=message):
        sweep_n_clusters(_blobs(), n_clusters)


def test_bad_data():
    with pytest.raises(ValueError, match="a single distinct point"):
        sweep_n_clusters(np.ones((50, 3)), range(2, 4))
    X = _blobs()
    X[5, 1] = np.nan
    with pytest.raises(ValueError, match="Input contains NaN"):
        sweep_n_clusters(X, range(2, 4))


# --- reading samples and the fastkm sweep command ------------------------------------


def test_read_samples(tmp_path):
    from PIL import Image

    from fastkm.sweep import read_samples

    X = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "x.npy", X)
    np.testing.assert_array_equal(read_samples(tmp_path / "x.npy"), X)
    np.save(tmp_path / "v.npy", np.arange(5.0))
    assert read_samples(tmp_path / "v.npy").shape == (5, 1)
    (tmp_path / "h.csv").write_text("a,b,c\n0,1,2\n3,4,5\n")
    (tmp_path / "n.csv").write_text("0,1,2\n3,4,5\n")
    for name in ("h.csv", "n.csv"):
        np.testing.assert_array_equal(read_samples(tmp_path / name), [[0, 1, 2], [3, 4, 5]])
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    Image.fromarray(rgba).save(tmp_path / "i.png")
    pixels = read_samples(tmp_path / "i.png")
    assert pixels.shape == (6, 3) and pixels.max() == 1.0  # alpha dropped, scaled to [0, 1]
    Image.fromarray(np.full((2, 2), 51, dtype=np.uint8)).save(tmp_path / "g.png")
    np.testing.assert_allclose(read_samples(tmp_path / "g.png"), np.full((4, 1), 0.2))


def _cli(args, capsys):
    from fastkm import cli

    try:
        code = cli.main(["sweep", *args, "--no-progress"])
    except SystemExit as exited:
        code = exited.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_command_line(tmp_path, capsys):
    import json

    np.save(tmp_path / "blobs.npy", _blobs())
    code, out, _ = _cli(
        [str(tmp_path / "blobs.npy"), "--k", "2..8", "--json", str(tmp_path / "s.json")], capsys
    )
    assert code == 0
    assert "elbow: k=4" in out and "best silhouette: k=4" in out
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["n_clusters"] == list(range(2, 9)) and saved["elbow"] == 4 and len(saved["silhouette"]) == 7
    pytest.importorskip("matplotlib")
    code, _, _ = _cli([str(tmp_path / "blobs.npy"), "--k", "2..5", "--plot", str(tmp_path / "e.png")], capsys)
    assert code == 0 and (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def test_command_line_errors(tmp_path, capsys):
    np.save(tmp_path / "blobs.npy", _blobs())
    (tmp_path / "text.png").write_text("not an image")
    bad = _blobs()
    bad[3, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    readonly = tmp_path / "ro.json"
    readonly.write_text("keep")
    readonly.chmod(0o444)
    data = str(tmp_path / "blobs.npy")
    for args, message in [
        ([data, "--k", "1..5"], "n_clusters must be from 2 to n_samples - 1"),
        ([data, "--k", "two..5"], "--k takes LO..HI"),
        ([str(tmp_path / "missing.npy")], "no such file"),
        ([str(tmp_path / "text.png")], "cannot read"),
        ([str(tmp_path / "nan.npy")], "Input contains NaN"),
        ([data, "--json", str(readonly)], "the file is read-only"),
    ]:
        code, _, err = _cli(args, capsys)
        assert code == 2, args
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert readonly.read_text() == "keep"
