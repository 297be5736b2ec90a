import numpy as np
import pytest

from fastkm import datasets


@pytest.fixture(scope="session")
def china():
    return datasets.china()


@pytest.fixture(scope="session")
def digits():
    return datasets.digits()


@pytest.fixture(scope="session")
def blobs():
    return datasets.blobs()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
