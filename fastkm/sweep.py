"""How many clusters: one fit per k, scored, with the elbow and the best silhouette.

``sweep_n_clusters`` fits an estimator (``KMeans`` or ``MiniBatchKMeans``,
with the caller's parameters) for every number of clusters in a range and
scores each fit: inertia, silhouette (exact, or on a sample past a size the
caller sets), Calinski-Harabasz, Davies-Bouldin and the fit's time. The
silhouettes of all the fits come from one pass over the pairs of samples
(``metrics._silhouette.silhouette_scores``). The
elbow of the inertia curve is found by Kneedle (Satopaa et al., 2011).
"""

import dataclasses
import time

import numpy as np

# Exact silhouettes up to this many samples; past it, on a sample of this size.
SILHOUETTE_SAMPLE_SIZE = 20_000


@dataclasses.dataclass
class Sweep:
    """What :func:`sweep_n_clusters` returns: one entry per number of clusters.

    Attributes
    ----------
    n_clusters, inertia, silhouette, calinski_harabasz, davies_bouldin, fit_seconds : ndarray
        One value per k, in the order swept.
    elbow : int or None
        The k at the elbow of the inertia curve (Kneedle), None if it has none.
    best_silhouette : int
        The k of the highest silhouette (the first of equals).
    silhouette_sample_size : int or None
        The size of the sample the silhouettes were computed on, None for exact.
    models : list or None
        The fitted estimators, with ``return_models=True``.
    """

    n_clusters: np.ndarray
    inertia: np.ndarray
    silhouette: np.ndarray
    calinski_harabasz: np.ndarray
    davies_bouldin: np.ndarray
    fit_seconds: np.ndarray
    elbow: object
    best_silhouette: int
    silhouette_sample_size: object = None
    models: object = None

    COLUMNS = ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "fit_seconds")

    def to_frame(self):
        """The table as a pandas DataFrame indexed by ``n_clusters``."""
        import pandas as pd

        frame = pd.DataFrame({name: getattr(self, name) for name in self.COLUMNS}, index=self.n_clusters)
        frame.index.name = "n_clusters"
        return frame

    def to_dict(self):
        """Everything as plain Python values (for JSON)."""
        table = {name: [float(v) for v in getattr(self, name)] for name in self.COLUMNS}
        return {
            "n_clusters": [int(k) for k in self.n_clusters],
            **table,
            "elbow": self.elbow,
            "best_silhouette": self.best_silhouette,
            "silhouette_sample_size": self.silhouette_sample_size,
        }

    def plot(self, path=None):
        """The inertia and silhouette curves, the elbow and the best silhouette marked.

        Needs matplotlib (``pip install 'fastkm[bench]'``). Returns the
        figure; with ``path``, also writes it there as a PNG (atomically).
        """
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=(8, 3.2))
        inertia_axes, silhouette_axes = figure.subplots(1, 2)
        for axes, values, label, chosen, name in (
            (inertia_axes, self.inertia, "inertia", self.elbow, "elbow"),
            (silhouette_axes, self.silhouette, "silhouette", self.best_silhouette, "best"),
        ):
            axes.plot(self.n_clusters, values, marker="o", markersize=3)
            if chosen is not None:
                axes.axvline(chosen, color="tab:red", linewidth=1, linestyle="--")
                axes.annotate(f"{name}: k={chosen}", (chosen, values.max()), color="tab:red", fontsize=8)
            axes.set_xlabel("number of clusters k")
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.set_title(label, fontsize=10)
        figure.tight_layout()
        if path is not None:
            from . import _files

            with _files.replacing(path, ".png") as partial:
                figure.savefig(partial, format="png", dpi=110)
        return figure

    def __str__(self):
        header = (
            f"{'k':>4} {'inertia':>14} {'silhouette':>11} {'Calinski-H.':>12} {'Davies-B.':>10} {'fit':>9}"
        )
        lines = [header]
        for i, k in enumerate(self.n_clusters):
            marks = ("  elbow" if k == self.elbow else "") + (
                "  best silhouette" if k == self.best_silhouette else ""
            )
            silhouette, ch, db = self.silhouette[i], self.calinski_harabasz[i], self.davies_bouldin[i]
            scores = f"{silhouette:>11.4f} {ch:>12.5g} {db:>10.4f}"
            lines.append(f"{k:>4} {self.inertia[i]:>14.6g} {scores} {self.fit_seconds[i]:>8.3f}s{marks}")
        if self.silhouette_sample_size is not None:
            lines.append(f"silhouettes on {self.silhouette_sample_size:,} samples drawn at random")
        return "\n".join(lines)


def kneedle(x, y, sensitivity=1.0):
    """The knee of a decreasing, convex curve (an inertia curve), by Kneedle; None if it has none.

    Both axes are scaled to [0, 1]; the knee is a local maximum of the
    difference between the straight line from the first point to the last
    and the curve, confirmed when the difference then drops below that
    maximum minus ``sensitivity`` times the mean step in x before the next
    local maximum (Satopaa, Albrecht, Irwin and Raghavan, 2011).

    Parameters
    ----------
    x : array-like, increasing
    y : array-like, one value per x
    sensitivity : float, default=1.0
        Kneedle's S: larger waits for a clearer knee.

    Returns
    -------
    The x of the knee, or None.
    """
    given = np.asarray(x)
    x = given.astype(np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    xn = (x - x.min()) / np.ptp(x)
    yn = (y - y.min()) / np.ptp(y)
    difference = (1.0 - xn) - yn  # the chord from (0, 1) to (1, 0), minus the curve
    threshold_step = sensitivity * np.mean(np.diff(xn))
    maxima = [i for i in range(1, len(x) - 1) if difference[i - 1] < difference[i] >= difference[i + 1]]
    for n, i in enumerate(maxima):
        if difference[i] <= 0:
            continue
        threshold = difference[i] - threshold_step
        stop = maxima[n + 1] if n + 1 < len(maxima) else len(x)
        if np.any(difference[i + 1 : stop] < threshold):
            return given[i].item()
    return None


def sweep_n_clusters(
    X,
    n_clusters=range(2, 11),
    *,
    estimator=None,
    sample_weight=None,
    silhouette_sample_size=SILHOUETTE_SAMPLE_SIZE,
    random_state=None,
    return_models=False,
    progress=None,
):
    """Fit ``estimator`` for every number of clusters, and score each fit.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_clusters : iterable of int, default=range(2, 11)
        The numbers of clusters, each from 2 to n_samples - 1.
    estimator : KMeans or MiniBatchKMeans, default=None
        Fitted as given, with ``n_clusters`` set for each k (a clone: the
        caller's object is left as it is). None is ``fastkm.KMeans()``.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to every fit (the scores, as scikit-learn's, are unweighted).
    silhouette_sample_size : int or None, default=20,000
        Silhouettes are exact up to this many samples, and past it computed
        on this many drawn at random (``random_state``), one sample for
        every k; None: always exact. They are taken together after the
        fits, each distance once for all k.
    random_state : int, RandomState instance or None, default=None
        The silhouettes' sample.
    return_models : bool, default=False
        Keep the fitted estimators in the result.
    progress : callable, default=None
        Called with each k before its fit (``fastkm sweep`` draws a bar).

    Returns
    -------
    Sweep

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from fastkm import KMeans
    >>> from fastkm.sweep import sweep_n_clusters
    >>> X, _ = make_blobs(600, centers=4, cluster_std=0.6, random_state=0)
    >>> sweep = sweep_n_clusters(X, range(2, 9), estimator=KMeans(random_state=0))
    >>> sweep.elbow, sweep.best_silhouette
    (4, 4)
    """
    from sklearn.base import clone
    from sklearn.metrics.cluster._unsupervised import check_number_of_labels
    from sklearn.utils import check_array, check_random_state

    from ._kmeans import KMeans
    from .metrics._centroid_scores import centroid_scores
    from .metrics._silhouette import silhouette_scores

    X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])
    ks = [int(k) for k in n_clusters]
    if not ks:
        raise ValueError("n_clusters is empty: give the numbers of clusters to fit, e.g. range(2, 11)")
    n_samples = X.shape[0]
    bad = [k for k in ks if not 2 <= k <= n_samples - 1]
    if bad:
        limit = n_samples - 1
        raise ValueError(
            f"n_clusters must be from 2 to n_samples - 1 = {limit} (the silhouette's range), got {bad[0]}"
        )
    spans = X.max(axis=0) - X.min(axis=0)
    if (spans.toarray() if hasattr(spans, "toarray") else spans).max() == 0:
        raise ValueError("X has a single distinct point: it has no clusters to count")
    estimator = KMeans() if estimator is None else estimator
    rng = check_random_state(random_state)
    # The silhouettes are taken together after the fits, on one sample for every k.
    sample = None
    dense = X.toarray() if hasattr(X, "toarray") else X
    scored = np.asarray(dense, dtype=np.float64)  # Calinski-Harabasz and Davies-Bouldin: float64
    if silhouette_sample_size is not None and n_samples > silhouette_sample_size:
        sample = silhouette_sample_size
        indices = rng.permutation(n_samples)[:sample]
    rows = {name: [] for name in Sweep.COLUMNS}
    models, labellings = [], []
    for k in ks:
        if progress is not None:
            progress(k)
        model = clone(estimator).set_params(n_clusters=k)
        start = time.perf_counter()
        model.fit(X, sample_weight=sample_weight)
        rows["fit_seconds"].append(time.perf_counter() - start)
        rows["inertia"].append(float(model.inertia_))
        labels, counts = _encoded(model.labels_)
        check_number_of_labels(len(counts), n_samples)
        labellings.append(labels)
        calinski_harabasz, davies_bouldin = centroid_scores(scored, labels, counts)
        rows["calinski_harabasz"].append(calinski_harabasz)
        rows["davies_bouldin"].append(davies_bouldin)
        if return_models:
            models.append(model)
    # The silhouettes on X as given (float32 X: as silhouette_score computes them).
    if sample is None:
        rows["silhouette"] = silhouette_scores(dense, labellings)
    else:
        rows["silhouette"] = silhouette_scores(dense[indices], [labels[indices] for labels in labellings])
    values = {name: np.array(column) for name, column in rows.items()}
    order = np.argsort(ks, kind="stable")
    sorted_ks = np.array(ks)[order]
    elbow = kneedle(sorted_ks, values["inertia"][order]) if len(set(ks)) == len(ks) else None
    return Sweep(
        n_clusters=np.array(ks),
        elbow=elbow,
        best_silhouette=int(ks[int(np.argmax(values["silhouette"]))]),
        silhouette_sample_size=sample,
        models=models if return_models else None,
        **values,
    )


def _encoded(labels):
    """Labels as 0 .. k - 1 (in the order of their values) and each one's count."""
    values, encoded = np.unique(labels, return_inverse=True)
    return encoded.astype(np.int64), np.bincount(encoded, minlength=len(values))


def read_samples(path):
    """The samples stored at ``path``: a .npy array, a .csv table (a header row skipped) or an image.

    An image gives its pixels, one row each, scaled to [0, 1] (alpha
    dropped), as ``fastkm.quantize`` clusters them.
    """
    import os

    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension == ".npy":
        X = np.load(path, allow_pickle=False)
    elif extension == ".csv":
        with open(path) as f:
            first = f.readline()
        try:
            [float(value) for value in first.split(",")]
            skip = 0
        except ValueError:
            skip = 1  # a header row
        X = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
    else:
        from .quantize import _pixels

        pixels = _pixels(path)
        channels = 1 if pixels.shape[2] in (1, 2) else 3  # grey or colour, without alpha
        X = pixels[:, :, :channels].reshape(-1, channels)
        X = X.astype(np.float64) / 255 if X.dtype == np.uint8 else X.astype(np.float64)
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(
            f"{path} holds an array of {X.ndim} dimensions; a sweep needs (n_samples, n_features)"
        )
    return X
