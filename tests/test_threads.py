"""Results do not depend on the number of threads (fixed chunking)."""

import hashlib
import os
import subprocess
import sys

import pytest

_SCRIPT = """
import hashlib, numpy as np, numba
from fastkm import KMeans, MiniBatchKMeans, datasets
X = datasets.china()[::3]
h = hashlib.sha256()
for dtype in (np.float64, np.float32):
    km = KMeans(24, random_state=0, n_init=2).fit(X.astype(dtype))
    bounded = [
        KMeans(70, random_state=0, algorithm=a).fit(X.astype(dtype)) for a in ("hamerly", "elkan", "yinyang")
    ]
    mb = MiniBatchKMeans(24, random_state=0, batch_size=4096).fit(X.astype(dtype))
    mb.partial_fit(X[:20000].astype(dtype))
    for model in (km, *bounded, mb):
        for a in (model.cluster_centers_, model.labels_, np.float64(model.inertia_),
                  model.transform(X[:500].astype(dtype))):
            h.update(np.ascontiguousarray(a).tobytes())
    S = datasets.sparse_random(6000, 800, 0.02).astype(dtype)
    sparse_models = (
        KMeans(12, random_state=0, n_init=2).fit(S),
        MiniBatchKMeans(12, random_state=0, batch_size=512).fit(S),
    )
    for model in sparse_models:
        inertia = np.float64(model.inertia_)
        outputs = (model.cluster_centers_, model.labels_, inertia, model.transform(S[:300]))
        for a in outputs:
            h.update(np.ascontiguousarray(a).tobytes())
print(numba.get_num_threads(), h.hexdigest())
"""


def _run(n_threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(n_threads))
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    threads, digest = out.stdout.split()
    return int(threads), digest


@pytest.mark.skipif(os.cpu_count() < 2, reason="needs two cores to compare")
def test_one_and_two_threads_give_identical_bits():
    threads1, digest1 = _run(1)
    threads2, digest2 = _run(2)
    assert (threads1, threads2) == (1, 2)
    assert digest1 == digest2
    assert hashlib.sha256(b"").hexdigest() not in (digest1, digest2)


def test_small_work_runs_on_the_calling_thread_alone():
    # Waking a second thread costs more than a small pass saves: below
    # SERIAL_WORK multiply-adds a pass, a solver runs on one thread, and the
    # caller's thread count is put back (also when the solver raises).
    import numba

    from fastkm._kernels._jit import SERIAL_WORK, serial_when_small

    seen = []

    @serial_when_small(lambda work, fail=False: work)
    def solver(work, fail=False):
        seen.append(numba.get_num_threads())
        if fail:
            raise ValueError("no")

    before = numba.get_num_threads()
    solver(SERIAL_WORK - 1)
    solver(SERIAL_WORK)
    with pytest.raises(ValueError):
        solver(10, fail=True)
    assert seen == [1, before, 1] and numba.get_num_threads() == before
