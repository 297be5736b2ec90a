"""The classic teaching datasets, shared by tests and benchmarks.

All ship with scikit-learn; nothing is downloaded.
"""

import numpy as np


def blobs(n_samples=300, random_state=0):
    """make_blobs(300, centers=4, cluster_std=0.6): 2-D, 4 well-separated blobs."""
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=n_samples, centers=4, cluster_std=0.6, random_state=random_state)
    return X


def digits(dtype=np.float64):
    """load_digits: 1,797 images of 8x8 pixels (64 features)."""
    from sklearn.datasets import load_digits

    return load_digits().data.astype(dtype)


def digits_target():
    """The digit each row of :func:`digits` shows."""
    from sklearn.datasets import load_digits

    return load_digits().target


def china(dtype=np.float64):
    """The china.jpg sample image as 273,280 RGB pixels scaled to [0, 1]."""
    from sklearn.datasets import load_sample_image

    image = load_sample_image("china.jpg")
    return (image.reshape(-1, 3) / 255).astype(dtype)


def large_blobs(random_state=0):
    """make_blobs(1,000,000, n_features=16, centers=32): the large synthetic case."""
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=1_000_000, n_features=16, centers=32, random_state=random_state)
    return X


def high_dim_blobs(random_state=0):
    """make_blobs(100,000, n_features=128, centers=100) in float32: the high-dimensional case."""
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=100_000, n_features=128, centers=100, random_state=random_state)
    return X.astype(np.float32)


def sparse_random(n_samples=100_000, n_features=10_000, density=0.01, random_state=0, dtype=np.float64):
    """A random CSR matrix: each row holds about ``density * n_features`` values in (0, 1).

    Each row gets a binomial number of distinct columns, in increasing order
    (duplicate draws merged), so the matrix is canonical CSR. Generated in
    about a second at the default 100,000 x 10,000 (scipy.sparse.random takes
    minutes there).
    """
    import scipy.sparse as sp

    rng = np.random.default_rng(random_state)
    counts = rng.binomial(n_features, density, size=n_samples)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    columns = rng.integers(0, n_features, size=indptr[-1], dtype=np.int32)
    values = rng.random(indptr[-1]).astype(dtype)
    X = sp.csr_matrix((values, columns, indptr.astype(np.int32)), shape=(n_samples, n_features))
    X.sum_duplicates()
    return X
