"""The silhouette and the k sweep, each beside scikit-learn in one process.

fastkm and scikit-learn take turns, with a pause of ``--pause`` seconds
before every call (so that neither runs on the other's warm caches or
spinning threads), and the medians are compared. Compile time is left out
(FASTKM_COMPILE=wait and a first call before timing). Prints a markdown
table; ``--china`` adds the exact silhouette over all 273,280 pixels of
china.jpg (about half a minute, with its peak memory).

    python benchmarks/silhouette_and_sweep.py
    python benchmarks/silhouette_and_sweep.py --rounds 11 --china
"""

import argparse
import os
import time

os.environ.setdefault("FASTKM_COMPILE", "wait")

import numpy as np
import sklearn.cluster
import sklearn.metrics
from sklearn.datasets import make_blobs

from fastkm import KMeans, datasets, metrics
from fastkm.sweep import sweep_n_clusters


def _turns(calls, rounds, pause):
    """Median seconds of each call, the calls taking turns for ``rounds`` rounds."""
    for call in calls.values():
        call()  # compiled and warm
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            time.sleep(pause)
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def _silhouette_case(X, k, rounds, pause, sample_size=None):
    labels = KMeans(k, random_state=0, n_init=1).fit(X).labels_
    ours = metrics.silhouette_score(X, labels, sample_size=sample_size, random_state=0)
    theirs = sklearn.metrics.silhouette_score(X, labels, sample_size=sample_size, random_state=0)
    times = _turns(
        {
            "fastkm": lambda: metrics.silhouette_score(X, labels, sample_size=sample_size, random_state=0),
            "scikit-learn": lambda: sklearn.metrics.silhouette_score(
                X, labels, sample_size=sample_size, random_state=0
            ),
        },
        rounds,
        pause,
    )
    return times, abs(ours - theirs) / abs(theirs)


def _sklearn_sweep(X, ks):
    """The loop a scikit-learn user writes: a fit and the four scores per k."""
    rows = []
    for k in ks:
        labels = sklearn.cluster.KMeans(k, random_state=0).fit(X).labels_
        rows.append(
            (
                sklearn.metrics.silhouette_score(X, labels),
                sklearn.metrics.calinski_harabasz_score(X, labels),
                sklearn.metrics.davies_bouldin_score(X, labels),
            )
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=41, help="rounds of the silhouette cases")
    parser.add_argument("--sweep-rounds", type=int, default=7)
    parser.add_argument("--pause", type=float, default=0.2)
    parser.add_argument("--china", action="store_true", help="also the exact silhouette of all china.jpg")
    args = parser.parse_args(argv)
    rows = []
    digits = datasets.digits()
    china = datasets.china()
    cases = [
        ("digits (1,797 x 64), k=10", digits, 10, None),
        ("make_blobs 10,000 x 3, 10 centres", make_blobs(10_000, 3, centers=10, random_state=0)[0], 10, None),
        (
            "make_blobs 10,000 x 64, 10 centres",
            make_blobs(10_000, 64, centers=10, random_state=0)[0],
            10,
            None,
        ),
        ("china.jpg, 20,000-pixel sample, k=16", china, 16, 20_000),
    ]
    for name, X, k, sample_size in cases:
        rounds = args.rounds if len(X) < 5_000 else max(3, args.rounds // 8)
        times, difference = _silhouette_case(X, k, rounds, args.pause, sample_size)
        rows.append((f"silhouette_score, {name}", times, f"relative difference {difference:.1e}"))
    ks = range(2, 21)
    ours = sweep_n_clusters(digits, ks, estimator=KMeans(random_state=0))
    theirs = _sklearn_sweep(digits, ks)
    worst = max(abs(ours.silhouette[i] - theirs[i][0]) / abs(theirs[i][0]) for i in range(len(theirs)))
    times = _turns(
        {
            "fastkm": lambda: sweep_n_clusters(digits, ks, estimator=KMeans(random_state=0)),
            "scikit-learn": lambda: _sklearn_sweep(digits, ks),
        },
        args.sweep_rounds,
        args.pause,
    )
    rows.append(("k sweep on digits, k = 2..20, four scores a k", times, f"silhouettes to {worst:.1e}"))
    print("| case | fastkm | scikit-learn | ratio | |\n|---|---:|---:|---:|---|")
    for name, times, remark in rows:
        ratio = times["scikit-learn"] / times["fastkm"]
        ours, theirs = times["fastkm"] * 1e3, times["scikit-learn"] * 1e3
        print(f"| {name} | {ours:.2f} ms | {theirs:.2f} ms | {ratio:.1f}x | {remark} |")
    if args.china:
        print(_china_exact())


# In a process of its own, so that its peak memory is the silhouette's, not a fit's.
_CHINA = """
import resource, sys, time, tracemalloc
import numpy as np
from fastkm import datasets, metrics
china = datasets.china()
labels = np.load(sys.argv[1])
metrics.silhouette_score(china[:2000], labels[:2000])  # compiled or loaded
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()  # numpy's arrays: the peak of what the call allocates
start = time.perf_counter()
score = metrics.silhouette_score(china, labels)
seconds = time.perf_counter() - start
allocated = tracemalloc.get_traced_memory()[1] / 2**20
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(f"china.jpg, all {len(china):,} pixels, k=16, exact: {score:.6f} in {seconds:.1f} s;", end=" ")
print(f"arrays allocated at the peak {allocated:.0f} MB, peak RSS +{grown:.0f} MB")
"""


def _china_exact():
    import subprocess
    import sys
    import tempfile

    labels = KMeans(16, random_state=0, n_init=1).fit(datasets.china()).labels_
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "labels.npy")
        np.save(path, labels)
        done = subprocess.run(
            [sys.executable, "-c", _CHINA, path], capture_output=True, text=True, check=True
        )
    return "\n" + done.stdout.strip()


if __name__ == "__main__":
    main()
