"""fastkm: scikit-learn's KMeans and MiniBatchKMeans, compiled and parallel.

A drop-in replacement: change ``from sklearn.cluster import KMeans`` to
``from fastkm import KMeans`` (or ``MiniBatchKMeans``).
"""

from ._kmeans import KMeans, k_means, kmeans_plusplus
from ._minibatch_kmeans import MiniBatchKMeans
from .quantize import Quantized, quantize

__all__ = ["KMeans", "MiniBatchKMeans", "Quantized", "k_means", "kmeans_plusplus", "quantize"]
__version__ = "0.1.0"
