"""Ctrl-C: long fits answer a KeyboardInterrupt at once and leave the estimator as it was.

The compiled loops run in slices (``_slicing``); real processes get
a real SIGINT in the middle of a long fit. The bounds on time are loose (a
slice lasts about a tenth of a second; the figures are in the README).
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastkm import KMeans, MiniBatchKMeans, _solvers
from fastkm import _slicing as slicing
from fastkm.metrics import silhouette_samples
from fastkm.metrics._silhouette import silhouette_scores

_CHILD = """
import sys, time, numpy as np
import fastkm
X = np.random.default_rng(0).random(({n}, 8))
# Compiled (or loaded) before the clock starts, and a model fitted before.
est = fastkm.{estimator}({k}, random_state=0, n_init=1, {params})
est.set_params(max_iter=2).fit(X[:3000, :4]).set_params(max_iter={max_iter})
before = est.cluster_centers_.copy()
print("fitting", flush=True)
try:
    est.fit(X)
    print("finished", flush=True)
except KeyboardInterrupt:
    caught = time.time()
    same = np.array_equal(est.cluster_centers_, before) and est.n_features_in_ == 4
    print("interrupted", caught, same, flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "estimator, n, k, params",
    [
        # The k-means++ centres, one compiled loop: about 15 s unsliced here.
        ("KMeans", 1_000_000, 512, "max_iter=300"),
        # The mini-batch loop: many seconds of steps, no early stop.
        ("MiniBatchKMeans", 1_000_000, 256, "max_iter=1000, batch_size=1024, max_no_improvement=None"),
    ],
)
def test_sigint_stops_a_long_fit(estimator, n, k, params):
    max_iter = params.partition("max_iter=")[2].partition(",")[0]
    code = _CHILD.format(n=n, k=k, estimator=estimator, params=params, max_iter=max_iter)
    env = {**os.environ, "FASTKM_COMPILE": "wait"}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "fitting"
        time.sleep(1.0)
        sent = time.time()
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    word, caught, same = out.split()
    assert word == "interrupted"
    assert float(caught) - sent < 5.0  # about 0.1 s; loose for a loaded machine
    assert same == "True"  # the model fitted before (on 4 features) is left as it was


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_interrupted_fit_leaves_the_estimator_and_x(monkeypatch, blobs):
    X = blobs.copy()
    model = KMeans(3, n_init=1, random_state=0).fit(X[:, :1])
    state = dict(model.__dict__)
    monkeypatch.setattr(_solvers, "kmeans_fit", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X)
    assert model.__dict__ == state  # n_features_in_ is 1 again, the old centres kept
    # copy_x=False centres the caller's X in place: it is put back.
    fresh = KMeans(3, n_init=1, copy_x=False)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X)
    np.testing.assert_allclose(X, blobs, rtol=1e-12, atol=1e-12)
    assert not hasattr(fresh, "cluster_centers_") and not hasattr(fresh, "n_features_in_")


def test_interrupted_partial_fit_restores_the_centres_it_changed(monkeypatch, blobs):
    model = MiniBatchKMeans(3, random_state=0, n_init=1).partial_fit(blobs)
    centers, counts, n_steps = model.cluster_centers_.copy(), model._counts.copy(), model.n_steps_

    def half_a_step(X, sample_weight, centers, counts, *args):
        centers += 1.0  # changed in place, then interrupted
        counts += 5.0
        raise KeyboardInterrupt

    monkeypatch.setattr(_solvers, "minibatch_partial_step", half_a_step)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(blobs)
    np.testing.assert_array_equal(model.cluster_centers_, centers)
    np.testing.assert_array_equal(model._counts, counts)
    assert model.n_steps_ == n_steps


def test_interrupted_partial_fit_rewinds_its_random_state(monkeypatch, blobs):
    # The draws of an interrupted step are taken back: the next call draws as
    # if it had never run.
    def model():
        return MiniBatchKMeans(3, random_state=0, n_init=1, reassignment_ratio=0.9).partial_fit(blobs)

    interrupted, plain = model(), model()
    real = _solvers.minibatch_partial_step

    def draw_then_stop(*args):
        real(*args)  # the step draws from the model's generator, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(_solvers, "minibatch_partial_step", draw_then_stop)
    with pytest.raises(KeyboardInterrupt):
        interrupted.partial_fit(blobs[::-1])
    monkeypatch.setattr(_solvers, "minibatch_partial_step", real)
    for step in (blobs[::-1], blobs):
        interrupted.partial_fit(step)
        plain.partial_fit(step)
    np.testing.assert_array_equal(interrupted.cluster_centers_, plain.cluster_centers_)
    assert interrupted._random_state.get_state()[2] == plain._random_state.get_state()[2]


def test_interrupted_partial_fit_of_a_read_only_model(monkeypatch, blobs):
    # A model loaded read-only is stepped on copies: an interrupt leaves it alone.
    model = MiniBatchKMeans(3, random_state=0, n_init=1).partial_fit(blobs)
    model.cluster_centers_.flags.writeable = False
    model._counts.flags.writeable = False
    centers = model.cluster_centers_.copy()
    monkeypatch.setattr(_solvers, "minibatch_partial_step", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(blobs)
    np.testing.assert_array_equal(model.cluster_centers_, centers)


def test_slices_change_no_result(monkeypatch, digits):
    # One step, centre or silhouette round a call against the usual slices: the same bits.
    def fits():
        minibatch = MiniBatchKMeans(20, random_state=0, n_init=1, max_no_improvement=None).fit(digits)
        kmeans = KMeans(40, random_state=0, n_init=1).fit(digits)
        labels = [kmeans.labels_, minibatch.labels_]
        silhouettes = silhouette_samples(digits, labels[0]), silhouette_scores(digits + 0.5, labels)
        return (
            minibatch.cluster_centers_,
            minibatch.n_steps_,
            kmeans.cluster_centers_,
            kmeans.n_iter_,
            *silhouettes,
        )

    usual = fits()
    monkeypatch.setattr(slicing, "SLICE_SECONDS", 0.0)  # every slice one unit
    one_by_one = fits()
    for a, b in zip(usual, one_by_one, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pace_sizes_slices_by_time(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(slicing.time, "perf_counter", lambda: clock[0])
    pace = slicing.Pace(seconds=0.1)
    assert pace.size == 1
    started = pace.start()
    clock[0] += 0.001  # a unit takes a millisecond: 100 a slice, but at most 16x the last
    pace.took(1, started)
    assert pace.size == 16
    started = pace.start()
    clock[0] += 0.016
    pace.took(16, started)
    assert pace.size == 100
    started = pace.start()
    clock[0] += 2.0  # slower units (a larger step): smaller slices
    pace.took(100, started)
    assert pace.size == 5
    pace.took(0, pace.start())  # nothing ran: unchanged
    assert pace.size == 5


def test_first_slice_from_the_work_of_a_unit():
    # A digits fit's k-means++ centres in one call; a large one's a few at a time.
    assert slicing.first_slice(1797 * 64 * 5) >= 500  # digits has 9 more centres
    assert 1 <= slicing.first_slice(1_000_000 * 16 * 6) <= 10
    assert slicing.first_slice(10**15) == 1 and slicing.first_slice(0) >= 1
