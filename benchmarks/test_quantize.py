"""Colour quantisation of china.jpg, fastkm against scikit-learn.

The seeds' series: each round quantises the image to 2, 4, ..., 1024 colours,
a MiniBatchKMeans fit on all pixels, then every pixel labelled, as the seeds
do. fastkm runs ``fastkm.quantize``; scikit-learn runs the seeds' code. Each
library's PSNR at every count is recorded, and the summary prints fastkm's
difference to scikit-learn's (the target: no more than 0.05 dB below at any
count).

Exact KMeans to 64 colours on every pixel (target: under 1 s), one k-means++
run, the same way.
"""

import warnings

import numpy as np
import pytest
import sklearn.cluster
from sklearn.datasets import load_sample_image

from fastkm.bench.measure import settle
from fastkm.quantize import psnr, quantize

COUNTS = [2**p for p in range(1, 11)]


def _sklearn_series(china):
    X = china.reshape(-1, 3) / 255
    images = []
    for n in COUNTS:
        model = sklearn.cluster.MiniBatchKMeans(n, random_state=0).fit(X)
        palette = np.clip(np.rint(model.cluster_centers_ * 255), 0, 255).astype(np.uint8)
        images.append(palette[model.predict(X)].reshape(china.shape))
    return images


def _fastkm_series(china):
    return [quantize(china, n, random_state=0).image for n in COUNTS]


def _sklearn_exact_64(china):
    X = china.reshape(-1, 3) / 255
    model = sklearn.cluster.KMeans(64, random_state=0).fit(X)
    palette = np.clip(np.rint(model.cluster_centers_ * 255), 0, 255).astype(np.uint8)
    return [palette[model.labels_].reshape(china.shape)]


def _fastkm_exact_64(china):
    return [quantize(china, 64, method="kmeans", random_state=0).image]


def _time_series(benchmark, group, library, run, counts, rounds):
    """Time ``run(china)`` (a list of images, one per count) and record each image's PSNR."""
    china = load_sample_image("china.jpg")
    benchmark.group = group
    benchmark.extra_info["library"] = library
    settle()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = benchmark.pedantic(run, args=(china,), rounds=rounds, warmup_rounds=1)
    benchmark.extra_info["colours"] = counts
    benchmark.extra_info["psnr"] = [psnr(china, image) for image in images]
    assert len(images) == len(counts) and all(image.shape == china.shape for image in images)


@pytest.mark.parametrize("library", ["sklearn", "fastkm"])
def test_quantize_sweep(benchmark, library):
    run = {"sklearn": _sklearn_series, "fastkm": _fastkm_series}[library]
    rounds = 3 if library == "fastkm" else 1  # scikit-learn's series takes about 8 s
    _time_series(benchmark, "quantize sweep|china 2..1024 colours", library, run, COUNTS, rounds)


@pytest.mark.parametrize("library", ["sklearn", "fastkm"])
def test_quantize_exact_64(benchmark, library):
    run = {"sklearn": _sklearn_exact_64, "fastkm": _fastkm_exact_64}[library]
    rounds = 5 if library == "fastkm" else 3
    _time_series(benchmark, "quantize exact KMeans|china 64 colours", library, run, [64], rounds)
