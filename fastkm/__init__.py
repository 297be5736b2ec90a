"""fastkm: scikit-learn's KMeans and MiniBatchKMeans, compiled and parallel.

A drop-in replacement: change ``from sklearn.cluster import KMeans`` to
``from fastkm import KMeans`` (or ``MiniBatchKMeans``).
"""

from ._cache import VERSION
from ._compile import CompileReport, compile
from ._kmeans import KMeans, k_means, kmeans_plusplus
from ._minibatch_kmeans import MiniBatchKMeans
from .quantize import Quantized, quantize

__all__ = [
    "CompileReport",
    "KMeans",
    "MiniBatchKMeans",
    "Quantized",
    "compile",
    "k_means",
    "kmeans_plusplus",
    "quantize",
]
__version__ = VERSION
