"""The examples in the public docstrings run and print what they say."""

import doctest

import pytest

from fastkm import _kmeans, _minibatch_kmeans, sweep
from fastkm.metrics import _silhouette


@pytest.mark.parametrize("module", [_kmeans, _minibatch_kmeans, _silhouette, sweep], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
