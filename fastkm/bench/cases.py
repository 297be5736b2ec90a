"""The benchmark cases: one table behind `fastkm bench` and the pytest-benchmark suite.

A case is a dataset, a number of clusters and a task. The tasks are the four
ways the seeds use K-Means, plus the fresh-process cold start:

========================  ======================================================
task                      what is timed
========================  ======================================================
``fit-init``              ``KMeans(k, init=init, n_init=1).fit(X)``, ``init`` the
                          same k-means++ array for every library
``fit``                   ``KMeans(k, random_state=0).fit(X)``, defaults
``minibatch``             ``MiniBatchKMeans(k, random_state=0).fit(X)``, defaults
``predict``               ``predict(X)`` of the ``fit-init`` model
``cold-start``            a new Python process: ``import`` + first
                          ``KMeans(k, random_state=0).fit(X)``, kernels cached
``cold-start-compile``    the same with an empty cache, ``FASTKM_COMPILE=wait``
                          (fastkm compiles the kernels the fit needs)
``cold-start-first-fit``  a new user's first fit, empty cache, default mode
                          (scikit-learn answers while fastkm compiles aside)
``cold-start-first-minibatch``  the same for MiniBatchKMeans on china.jpg
``dask-iteration``        one iteration of ``fastkm.dask.KMeans`` on a
                          LocalCluster (2 workers x 1 thread), beside
                          ``fastkm.KMeans`` in one process and dask-ml
                          (``bench.cluster``); only when asked for by name
========================  ======================================================
"""

import fnmatch
from dataclasses import dataclass

import numpy as np

from .. import datasets


@dataclass(frozen=True)
class Dataset:
    """A dataset of the benchmark and how to load it."""

    name: str
    description: str
    shape: tuple
    load: object
    target: object = None
    chunks: int = None  # a dask array's row chunks (the dask case makes its own data)
    dtype: type = np.float64  # X's dtype in the cases (every library gets the same)

    def __str__(self):
        return self.name


DATASETS = {
    d.name: d
    for d in [
        Dataset("blobs", "make_blobs(300, centers=4, cluster_std=0.6)", (300, 2), datasets.blobs),
        Dataset(
            "digits", "load_digits (8x8 images)", (1797, 64), datasets.digits, target=datasets.digits_target
        ),
        Dataset("china", "china.jpg pixels, RGB in [0, 1]", (273_280, 3), datasets.china),
        Dataset(
            "large", "make_blobs(1,000,000, n_features=16, centers=32)", (1_000_000, 16), datasets.large_blobs
        ),
        Dataset(
            "highd",
            "make_blobs(100,000, n_features=128, centers=100), float32",
            (100_000, 128),
            datasets.high_dim_blobs,
            dtype=np.float32,
        ),
        Dataset("sparse", "random CSR matrix, 1% stored", (100_000, 10_000), datasets.sparse_random),
        Dataset(
            "blobs10m", "blobs as float32 in 16 row chunks of a dask array", (10_000_000, 16), None, chunks=16
        ),
    ]
}

TASKS = {
    "fit-init": "KMeans.fit same init",
    "fit": "KMeans.fit defaults",
    "minibatch": "MiniBatchKMeans.fit defaults",
    "predict": "KMeans.predict",
    "cold-start": "import + first KMeans.fit, compiled cache",
    "cold-start-compile": "import + first KMeans.fit, empty cache, FASTKM_COMPILE=wait",
    "cold-start-first-fit": "import + first KMeans.fit, empty cache",
    "cold-start-first-minibatch": "import + first MiniBatchKMeans.fit, empty cache",
    "dask-iteration": "seconds per iteration on a LocalCluster",
}

COLD_START_TASKS = ("cold-start", "cold-start-compile", "cold-start-first-fit", "cold-start-first-minibatch")

# The random_state of the 'fit' and 'minibatch' tasks and of the shared init array.
SEED = 0


@dataclass(frozen=True)
class Case:
    """One benchmark case: a task on a dataset with ``k`` clusters."""

    dataset: str
    k: int
    task: str

    @property
    def name(self):
        """The name `--cases` selects it by, e.g. ``china-k64-fit-init``."""
        if self.task in COLD_START_TASKS:
            return self.task
        if self.on_cluster:
            return f"dask-{self.dataset}-k{self.k}"
        return f"{self.dataset}-k{self.k}-{self.task}"

    @property
    def group(self):
        """The pytest-benchmark group: ``dataset|estimator|k``."""
        return f"{self.dataset}|{TASKS[self.task]}|k={self.k}"

    @property
    def description(self):
        n, d = DATASETS[self.dataset].shape
        return f"{DATASETS[self.dataset].description}, {n:,} x {d}, k={self.k}: {TASKS[self.task]}"

    @property
    def cold_start(self):
        return self.task in COLD_START_TASKS

    @property
    def on_cluster(self):
        """Timed on a Dask LocalCluster (``bench.cluster``): run only when named (``--cases dask``)."""
        return self.task == "dask-iteration"

    @property
    def heavy(self):
        """Left out of ``--quick`` runs: minutes of scikit-learn time, or a compile."""
        return (
            self.dataset in ("large", "highd", "sparse")
            or self.k >= 256
            or self.task == "cold-start-compile"
            or self.on_cluster
        )


_SIZES = [
    ("blobs", 4),
    ("digits", 10),
    ("china", 16),
    ("china", 64),
    ("china", 256),
    ("large", 32),
    ("highd", 100),
    ("sparse", 32),
]
_IN_PROCESS_TASKS = ("fit-init", "fit", "minibatch", "predict")

CASES = tuple(
    [Case(dataset, k, task) for dataset, k in _SIZES for task in _IN_PROCESS_TASKS]
    + [Case("digits", 10, "cold-start"), Case("digits", 10, "cold-start-compile")]
    # The seeds' first calls: their notebooks' blobs, and china.jpg's colours.
    + [Case("blobs", 4, "cold-start-first-fit"), Case("china", 16, "cold-start-first-minibatch")]
    + [Case("blobs10m", 32, "dask-iteration")]
)


class UnknownCaseError(ValueError):
    """A `--cases` pattern that matches no case."""


def select_cases(patterns=None, *, quick=False, cases=CASES):
    """The cases that match any of ``patterns``, in table order.

    A pattern is a case name (``china-k64-fit``), a glob (``china-*``,
    ``*-predict``) or a name prefix ending at a dash (``china``, ``digits-k10``).
    Without patterns, every case but the cluster's (``Case.on_cluster``), or
    with ``quick`` every one of those that is not heavy.

    Raises
    ------
    UnknownCaseError
        If a pattern matches no case; the message lists the valid names.
    """
    if not patterns:
        return [c for c in cases if not (c.on_cluster or (quick and c.heavy))]
    chosen, unknown = set(), []
    for pattern in patterns:
        matched = _matching(pattern, cases)
        if not matched:
            unknown.append(pattern)
        chosen.update(matched)
    if unknown:
        names = ", ".join(c.name for c in cases)
        raise UnknownCaseError(
            f"unknown case {', '.join(repr(p) for p in unknown)}; valid cases (globs and "
            f"name prefixes like 'china' work too): {names}"
        )
    return [c for c in cases if c in chosen]


def _matching(pattern, cases):
    """The cases ``pattern`` names: exactly, else as a glob, else as a prefix ending at a dash."""
    for matches in (
        lambda name: name == pattern,
        lambda name: fnmatch.fnmatchcase(name, pattern),
        lambda name: name.startswith(pattern.rstrip("-") + "-"),
    ):
        found = [c for c in cases if matches(c.name)]
        if found:
            return found
    return []


def load_dataset(dataset):
    """``(X, target)`` of a dataset: X in the dataset's dtype (C-contiguous, or CSR), target or None."""
    spec = DATASETS[dataset]
    X = spec.load()
    X = X.astype(spec.dtype) if hasattr(X, "tocsr") else np.ascontiguousarray(X, dtype=spec.dtype)
    return X, (spec.target() if spec.target is not None else None)
