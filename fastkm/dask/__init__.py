"""fastkm on a Dask cluster: ``KMeans`` over the blocks of a dask array or DataFrame.

Install with ``pip install "fastkm[dask]"``; ``import fastkm`` alone never
imports dask. The rooms:

- ``_data``: dask inputs as blocks of rows, and the tree reductions over them;
- ``_blocks``: what a worker runs on one block (the solver's per-block entry);
- ``_cluster``: where the tasks run (the client's workers, or this process);
- ``_init``: k-means|| and k-means++ over the blocks;
- ``_kmeans``: the estimator and Lloyd's loop over the blocks.
"""

from ._kmeans import KMeans

__all__ = ["KMeans"]
