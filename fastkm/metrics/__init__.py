"""Cluster quality metrics: scikit-learn's, computed by fastkm's kernels.

``silhouette_samples`` and ``silhouette_score`` take scikit-learn's
parameters and give its results (Euclidean distances; other metrics and
sparse input are passed to scikit-learn), from a compiled kernel that never
holds the n x n distance matrix. ``calinski_harabasz_score`` and
``davies_bouldin_score`` give scikit-learn's scores from one pass over X.
"""

from ._centroid_scores import calinski_harabasz_score, davies_bouldin_score
from ._silhouette import silhouette_samples, silhouette_score

__all__ = ["calinski_harabasz_score", "davies_bouldin_score", "silhouette_samples", "silhouette_score"]
