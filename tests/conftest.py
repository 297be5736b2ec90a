import os

# The suite tests the compiled kernels, never scikit-learn answering for them
# while they compile: kernels compile in process, as a call needs them
# (tests/test_tiers.py starts its own processes in the default mode).
os.environ["FASTKM_COMPILE"] = "wait"

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
