"""The libraries a benchmark compares: fastkm, scikit-learn and optional peers.

Each library turns a case into a :class:`Timed` call: the work to time, and how
to read centres and labels out of its result (outside the timing). scikit-learn
is the reference every other library is compared with. The peers,
scikit-learn-intelex and faiss-cpu, take part when they are installed.
"""

import importlib
import importlib.metadata
from dataclasses import dataclass

import numpy as np

from .cases import SEED


@dataclass
class Fitted:
    """What a call produced: centres, per-row labels (None: nearest centre) and iterations."""

    centers: np.ndarray
    labels: np.ndarray = None
    n_iter: int = None


@dataclass
class Timed:
    """A prepared call: ``call()`` is timed, ``outcome(result)`` reads it afterwards."""

    call: object
    outcome: object


@dataclass
class CaseData:
    """A case's inputs, shared by every library: X, its target and the init array."""

    X: np.ndarray
    target: np.ndarray
    init: np.ndarray
    _float32: np.ndarray = None

    @property
    def sparse(self):
        return not isinstance(self.X, np.ndarray)

    @property
    def X32(self):
        if self._float32 is None:
            self._float32 = np.ascontiguousarray(self.X, dtype=np.float32)
        return self._float32


class Library:
    """A library under test. Subclasses implement the tasks they support."""

    name = ""  # as given to --libraries and as a column title
    module = ""  # imported to run it
    distribution = ""  # its PyPI name, for the version and install hints
    needs_reference = False  # prepare() uses scikit-learn's result of the same case
    cold_start_code = ""  # import + first KMeans fit of X with {k} clusters, in a fresh process
    cold_start_minibatch_code = None  # the same for MiniBatchKMeans, if the library has one
    cold_start_setup = ""  # run once before the warm cold start (fills a cache)
    accepts_sparse = False  # takes scipy.sparse CSR input

    def available(self):
        """Whether the library imports here."""
        try:
            importlib.import_module(self.module)
        except Exception:  # a broken install is skipped like a missing one
            return False
        return True

    def version(self):
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return getattr(importlib.import_module(self.module), "__version__", "unknown")

    def prepare(self, task, data, k, *, reference=None, model=None):
        """The :class:`Timed` call for ``task``, or None when the library has no such task.

        ``reference`` is scikit-learn's :class:`Fitted` for the same case (None
        for scikit-learn itself); ``model`` is this library's result of the
        case's ``fit-init`` task, which ``predict`` reuses when given.
        """
        method = getattr(self, "_" + task.replace("-", "_"), None)
        if method is None or (data.sparse and not self.accepts_sparse):
            return None
        return method(data, k, reference=reference, model=model)


class _EstimatorLibrary(Library):
    """A library with scikit-learn's estimator API."""

    kmeans = ""  # "module:Class"
    minibatch_kmeans = None

    def _class(self, path):
        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)

    def _fit_init(self, data, k, **_):
        KMeans, X, init = self._class(self.kmeans), data.X, data.init
        return Timed(lambda: KMeans(k, init=init, n_init=1).fit(X), _fitted_estimator)

    def _fit(self, data, k, **_):
        KMeans, X = self._class(self.kmeans), data.X
        return Timed(lambda: KMeans(k, random_state=SEED).fit(X), _fitted_estimator)

    def _minibatch(self, data, k, **_):
        if self.minibatch_kmeans is None:
            return None
        MiniBatchKMeans, X = self._class(self.minibatch_kmeans), data.X
        return Timed(lambda: MiniBatchKMeans(k, random_state=SEED).fit(X), _fitted_estimator)

    def _predict(self, data, k, model=None, **_):
        if model is None:
            model = self._fit_init(data, k).call()
        return Timed(lambda: model.predict(data.X), lambda labels: Fitted(model.cluster_centers_, labels))


def _fitted_estimator(model):
    return Fitted(model.cluster_centers_, model.labels_, int(model.n_iter_))


class FastKM(_EstimatorLibrary):
    name = "fastkm"
    accepts_sparse = True
    module = "fastkm"
    distribution = "fastkm"
    kmeans = "fastkm:KMeans"
    minibatch_kmeans = "fastkm:MiniBatchKMeans"
    cold_start_code = "from fastkm import KMeans\nKMeans({k}, random_state=0).fit(X)"
    cold_start_minibatch_code = (
        "from fastkm import MiniBatchKMeans\nMiniBatchKMeans({k}, random_state=0).fit(X)"
    )
    # What a warm cache means: the kernels compiled ahead (as `fastkm compile` does).
    cold_start_setup = "import fastkm\nfastkm.compile(['kmeans'], progress=False)"


class ScikitLearn(_EstimatorLibrary):
    name = "sklearn"
    accepts_sparse = True
    module = "sklearn.cluster"
    distribution = "scikit-learn"
    kmeans = "sklearn.cluster:KMeans"
    minibatch_kmeans = "sklearn.cluster:MiniBatchKMeans"
    cold_start_code = "from sklearn.cluster import KMeans\nKMeans({k}, random_state=0).fit(X)"
    cold_start_minibatch_code = (
        "from sklearn.cluster import MiniBatchKMeans\nMiniBatchKMeans({k}, random_state=0).fit(X)"
    )


class Intelex(_EstimatorLibrary):
    """scikit-learn-intelex: oneDAL's KMeans behind scikit-learn's API (no MiniBatchKMeans)."""

    name = "sklearnex"
    module = "sklearnex.cluster"
    distribution = "scikit-learn-intelex"
    kmeans = "sklearnex.cluster:KMeans"
    cold_start_code = "from sklearnex.cluster import KMeans\nKMeans({k}, random_state=0).fit(X)"


class Faiss(Library):
    """faiss-cpu's ``Kmeans`` on float32 data (faiss computes in float32 only).

    faiss has no convergence test: from the shared init it runs as many
    iterations as scikit-learn's fit took, on every point (no subsampling).
    With defaults it runs its own defaults: 25 iterations, random init, at
    most 256 points per centre.
    """

    name = "faiss"
    module = "faiss"
    distribution = "faiss-cpu"
    needs_reference = True
    cold_start_code = "import faiss\nfaiss.Kmeans(X.shape[1], {k}, seed=0).train(X.astype('float32'))"

    def _fit_init(self, data, k, reference=None, **_):
        import faiss

        X, init = data.X32, np.ascontiguousarray(data.init, dtype=np.float32)
        niter = reference.n_iter if reference is not None and reference.n_iter else 300

        def call():
            km = faiss.Kmeans(X.shape[1], k, niter=niter, seed=SEED, max_points_per_centroid=len(X))
            km.train(X, init_centroids=init)
            return km

        return Timed(call, _fitted_faiss)

    def _fit(self, data, k, **_):
        import faiss

        X = data.X32

        def call():
            km = faiss.Kmeans(X.shape[1], k, seed=SEED)
            km.train(X)
            return km

        return Timed(call, _fitted_faiss)

    def _predict(self, data, k, model=None, reference=None, **_):
        if model is None:
            model = self._fit_init(data, k, reference=reference).call()
        X = data.X32
        return Timed(
            lambda: model.index.search(X, 1), lambda found: Fitted(model.centroids, found[1].ravel())
        )


def _fitted_faiss(km):
    return Fitted(np.asarray(km.centroids, dtype=np.float64), None, km.cp.niter)


REFERENCE = "sklearn"
LIBRARIES = {lib.name: lib for lib in [ScikitLearn(), FastKM(), Intelex(), Faiss()]}
PEERS = ("sklearnex", "faiss")


def resolve_libraries(names=None):
    """The libraries to run, reference first, and the peers left out as not installed.

    Without ``names``: scikit-learn, fastkm and every installed peer.

    Raises
    ------
    ValueError
        For an unknown name, or a named library that is not installed.
    """
    if names is None:
        wanted = list(LIBRARIES)
    else:
        unknown = [n for n in names if n not in LIBRARIES]
        if unknown:
            listed = ", ".join(repr(n) for n in unknown)
            raise ValueError(f"unknown library {listed}; valid libraries: {', '.join(LIBRARIES)}")
        wanted = [REFERENCE] + [n for n in LIBRARIES if n in names and n != REFERENCE]
    chosen, missing = [], []
    for name in wanted:
        library = LIBRARIES[name]
        if library.available():
            chosen.append(library)
        elif names is not None:
            raise ValueError(f"{name} is not installed here: pip install {library.distribution}")
        else:
            missing.append(library)
    return chosen, missing
