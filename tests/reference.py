"""Slow, obviously right numpy versions of the kernels, for tests only."""

import numpy as np


def squared_distances(X, centers):
    """All squared distances, from explicit differences, in float64."""
    diff = X[:, None, :].astype(np.float64) - centers[None, :, :].astype(np.float64)
    return (diff**2).sum(axis=2)


def assign(X, centers):
    """Nearest centre of every row (first on ties)."""
    return squared_distances(X, centers).argmin(axis=1).astype(np.int32)


def inertia(X, centers, labels, sample_weight=None):
    """Weighted sum of squared distances to the assigned centres."""
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    d = ((X.astype(np.float64) - centers[labels].astype(np.float64)) ** 2).sum(axis=1)
    return float((d * w).sum())


def weighted_means(X, labels, sample_weight, n_clusters):
    """Per-cluster weighted sums and total weights."""
    sums = np.zeros((n_clusters, X.shape[1]))
    weights = np.zeros(n_clusters)
    for j in range(n_clusters):
        mask = labels == j
        sums[j] = (X[mask] * sample_weight[mask, None]).sum(axis=0)
        weights[j] = sample_weight[mask].sum()
    return sums, weights


def lloyd(X, centers, max_iter=300, sample_weight=None):
    """Plain Lloyd iterations to a fixed point (no relocation, no tolerance)."""
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    centers = centers.astype(np.float64).copy()
    labels = assign(X, centers)
    for _ in range(max_iter):
        sums, weights = weighted_means(X, labels, w, len(centers))
        nonempty = weights > 0
        centers[nonempty] = sums[nonempty] / weights[nonempty, None]
        new_labels = assign(X, centers)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return labels, centers


def kmeans_plusplus_potential(X, centers):
    """k-means++ potential: sum of squared distances to the nearest centre."""
    return float(squared_distances(X, centers).min(axis=1).sum())


def minibatch_step(X, sample_weight, centers, counts, random_state, random_reassign, ratio=0.01):
    """One mini-batch step, as scikit-learn's ``_mini_batch_step`` describes it.

    Returns the new centres and counts (copies) and the batch inertia.
    """
    X = np.asarray(X, dtype=np.float64)
    centers, counts = centers.astype(np.float64).copy(), counts.astype(np.float64).copy()
    labels = assign(X, centers)
    batch_inertia = inertia(X, centers, labels, sample_weight)
    for j in range(len(centers)):
        mask = labels == j
        w = sample_weight[mask].sum()
        if w > 0:
            total = centers[j] * counts[j] + (X[mask] * sample_weight[mask, None]).sum(axis=0)
            counts[j] += w
            centers[j] = total / counts[j]
    if random_reassign and ratio > 0:
        to_reassign = counts < ratio * counts.max()
        if to_reassign.sum() > 0.5 * len(X):
            keep = np.argsort(counts, kind="stable")[len(X) // 2 :]
            to_reassign[keep] = False
        n_reassign = int(to_reassign.sum())
        if n_reassign:
            rows = random_state.choice(len(X), size=n_reassign, replace=False)
            centers[to_reassign] = X[rows]
        counts[to_reassign] = counts[~to_reassign].min()
    return centers, counts, batch_inertia


def cluster_distance_sums(X, labels, n_clusters):
    """Each row's summed Euclidean distances to every cluster's rows (the n x n matrix, in float64)."""
    distances = np.sqrt(squared_distances(X, X))
    return np.stack([distances[:, labels == c].sum(axis=1) for c in range(n_clusters)], axis=1)


def chunked_sums(X, sample_weight, labels, n_clusters, chunk=256):
    """Centre sums and weights as scikit-learn's Lloyd iteration makes them, one value at a time.

    In X's dtype: a partial per ``chunk`` rows (each row times its weight,
    added in row order), the partials added into zeros in chunk order.
    """
    t = X.dtype.type
    sums = np.zeros((n_clusters, X.shape[1]), dtype=X.dtype)
    weights = np.zeros(n_clusters, dtype=X.dtype)
    for start in range(0, len(X), chunk):
        partial = np.zeros_like(sums)
        partial_weights = np.zeros_like(weights)
        for i in range(start, min(start + chunk, len(X))):
            j = labels[i]
            partial_weights[j] = t(partial_weights[j] + sample_weight[i])
            for f in range(X.shape[1]):
                partial[j, f] = t(partial[j, f] + t(X[i, f] * sample_weight[i]))
        weights = weights + partial_weights
        sums = sums + partial
    return sums, weights
