"""Calinski-Harabasz and Davies-Bouldin: scikit-learn's scores from one pass over X.

Both come from the clusters' centroids and each sample's distance to its
own centroid. scikit-learn loops over the clusters, copying each one out of
X (and, for Davies-Bouldin, calling its pairwise-distance code once a
cluster); here the centroids are one sorted, segmented sum and the
distances one row-wise pass, so that a k sweep's scores cost a fraction of
its fits. Everything is computed in float64. The distances to the
centroids are taken from the differences, where scikit-learn expands them
(``|x|^2 - 2 x.c + |c|^2``): the results equal scikit-learn's to rounding
near the origin, and are the more accurate far from it (data offset by 1e7
parts in the third digit of Davies-Bouldin).
"""

import numpy as np
from sklearn.metrics.cluster._unsupervised import check_number_of_labels
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_X_y
from sklearn.utils._param_validation import validate_params

# Rows per slice of the distances to the centroids: the temporaries stay small.
_SLICE = 65_536


def _validated(X, labels):
    """Float64 X, and labels as 0 .. k - 1 with their clusters' sizes, checked as scikit-learn does."""
    X, labels = check_X_y(X, labels)
    labels = LabelEncoder().fit_transform(labels)
    counts = np.bincount(labels)
    check_number_of_labels(len(counts), X.shape[0])
    return np.asarray(X, dtype=np.float64), labels, counts


def _centroids(X, labels, counts):
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.add.reduceat(X[order], starts, axis=0) / counts[:, None]


def centroid_scores(X, labels, counts):
    """``(calinski_harabasz, davies_bouldin)`` of validated float64 X and labels 0 .. k - 1 of ``counts``."""
    centroids = _centroids(X, labels, counts)
    squared = _squared_distances_to_centroids(X, labels, centroids)
    return _calinski_harabasz(X, counts, centroids, squared), _davies_bouldin(
        labels, counts, centroids, squared
    )


def _squared_distances_to_centroids(X, labels, centroids):
    """Each sample's squared Euclidean distance to its own cluster's centroid."""
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], _SLICE):
        stop = start + _SLICE
        difference = X[start:stop] - centroids[labels[start:stop]]
        out[start:stop] = np.einsum("ij,ij->i", difference, difference)
    return out


@validate_params({"X": ["array-like"], "labels": ["array-like"]}, prefer_skip_nested_validation=True)
def calinski_harabasz_score(X, labels):
    """The Calinski-Harabasz score, as :func:`sklearn.metrics.calinski_harabasz_score`.

    The ratio of the between-cluster dispersion to the within-cluster
    dispersion, each divided by its degrees of freedom; higher is better.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)

    Returns
    -------
    score : float

    Raises
    ------
    ValueError
        When there are fewer than 2 clusters or as many as samples
        (scikit-learn's message), or X holds NaN or infinity.

    Examples
    --------
    >>> from fastkm.metrics import calinski_harabasz_score
    >>> X = [[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [5.0, 1.0]]
    >>> round(calinski_harabasz_score(X, [0, 0, 1, 1]), 3)
    50.0
    """
    X, labels, counts = _validated(X, labels)
    centroids = _centroids(X, labels, counts)
    return _calinski_harabasz(X, counts, centroids, _squared_distances_to_centroids(X, labels, centroids))


def _calinski_harabasz(X, counts, centroids, squared):
    n_samples, n_labels = X.shape[0], len(counts)
    offsets = centroids - X.mean(axis=0)
    extra_disp = float(counts @ np.einsum("ij,ij->i", offsets, offsets))
    intra_disp = float(squared.sum())
    if intra_disp == 0.0:
        return 1.0
    return float(extra_disp * (n_samples - n_labels) / (intra_disp * (n_labels - 1.0)))


@validate_params({"X": ["array-like"], "labels": ["array-like"]}, prefer_skip_nested_validation=True)
def davies_bouldin_score(X, labels):
    """The Davies-Bouldin score, as :func:`sklearn.metrics.davies_bouldin_score`.

    The mean over clusters of the largest ratio of two clusters' summed
    spreads (mean distance to the centroid) to their centroids' distance;
    lower is better, 0 the least.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)

    Returns
    -------
    score : float

    Raises
    ------
    ValueError
        As :func:`calinski_harabasz_score`.

    Examples
    --------
    >>> from fastkm.metrics import davies_bouldin_score
    >>> X = [[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [5.0, 1.0]]
    >>> round(davies_bouldin_score(X, [0, 0, 1, 1]), 3)
    0.2
    """
    X, labels, counts = _validated(X, labels)
    centroids = _centroids(X, labels, counts)
    return _davies_bouldin(labels, counts, centroids, _squared_distances_to_centroids(X, labels, centroids))


def _euclidean_distances(C):
    """``sklearn.metrics.pairwise_distances(C)``, its arithmetic, without its checks (k x k)."""
    squared_norms = np.einsum("ij,ij->i", C, C)
    distances = -2 * (C @ C.T)
    distances += squared_norms[:, None]
    distances += squared_norms[None, :]
    np.maximum(distances, 0, out=distances)
    np.fill_diagonal(distances, 0)
    return np.sqrt(distances, out=distances)


def _davies_bouldin(labels, counts, centroids, squared):
    intra_dists = np.bincount(labels, weights=np.sqrt(squared)) / counts
    centroid_distances = _euclidean_distances(centroids)
    # scikit-learn's steps from here.
    if np.allclose(intra_dists, 0) or np.allclose(centroid_distances, 0):
        return 0.0
    centroid_distances[centroid_distances == 0] = np.inf
    combined_intra_dists = intra_dists[:, None] + intra_dists
    scores = np.max(combined_intra_dists / centroid_distances, axis=1)
    return float(np.mean(scores))
