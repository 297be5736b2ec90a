"""fastkm: scikit-learn's KMeans and MiniBatchKMeans, compiled and parallel.

A drop-in replacement: change ``from sklearn.cluster import KMeans`` to
``from fastkm import KMeans`` (or ``MiniBatchKMeans``).
"""

from importlib import import_module as _import_module

from ._cache import VERSION
from .quantize import Quantized, quantize

# Imported on first use (``fastkm.KMeans``, ``from fastkm import KMeans``):
# ``import fastkm`` alone, the ``fastkm`` command's start, imports no
# scikit-learn (``fastkm compile`` starts its compile processes meanwhile).
_LAZY = {
    "CompileReport": "._compile",
    "compile": "._compile",
    "KMeans": "._kmeans",
    "k_means": "._kmeans",
    "kmeans_plusplus": "._kmeans",
    "MiniBatchKMeans": "._minibatch_kmeans",
    "sweep_n_clusters": ".sweep",
}

__all__ = [
    "CompileReport",
    "KMeans",
    "MiniBatchKMeans",
    "Quantized",
    "compile",
    "k_means",
    "kmeans_plusplus",
    "quantize",
    "sweep_n_clusters",
]
__version__ = VERSION


def __getattr__(name):
    if name == "metrics":  # the subpackage, imported on first use
        return _import_module(".metrics", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"metrics"})
