"""fastkm: scikit-learn's KMeans, compiled and parallel.

A drop-in replacement: change ``from sklearn.cluster import KMeans`` to
``from fastkm import KMeans``.
"""

from ._kmeans import KMeans, k_means, kmeans_plusplus

__all__ = ["KMeans", "k_means", "kmeans_plusplus"]
__version__ = "0.1.0"
