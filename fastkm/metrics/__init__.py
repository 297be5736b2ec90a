"""Cluster quality metrics: scikit-learn's, computed by fastkm's kernels.

``silhouette_samples`` and ``silhouette_score`` take scikit-learn's
parameters and give its results (Euclidean distances; other metrics and
sparse input are passed to scikit-learn), from a compiled kernel that never
holds the n x n distance matrix.
"""

from ._silhouette import silhouette_samples, silhouette_score

__all__ = ["silhouette_samples", "silhouette_score"]
