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
