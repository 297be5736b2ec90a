"""The seeds' colour-compression series: china.jpg at 2, 4, ..., 1024 colours.

Each round quantises the image to every count: a MiniBatchKMeans fit on all
pixels, then every pixel labelled, as the seeds do. fastkm runs
``fastkm.quantize``; scikit-learn runs the seeds' code. Each library's PSNR at
every count is recorded, and the summary prints fastkm's difference to
scikit-learn's (the target: no more than 0.05 dB below at any count).
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


@pytest.mark.parametrize("library", ["sklearn", "fastkm"])
def test_quantize_sweep(benchmark, library):
    china = load_sample_image("china.jpg")
    series = {"sklearn": _sklearn_series, "fastkm": _fastkm_series}[library]
    benchmark.group = "quantize sweep|china 2..1024 colours"
    benchmark.extra_info["library"] = library
    settle()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rounds = 3 if library == "fastkm" else 1  # scikit-learn's series takes about 15 s
        images = benchmark.pedantic(series, args=(china,), rounds=rounds, warmup_rounds=1)
    benchmark.extra_info["colours"] = COUNTS
    benchmark.extra_info["psnr"] = [psnr(china, image) for image in images]
    assert all(image.shape == china.shape for image in images)
