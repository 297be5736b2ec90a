"""Object and background by k-means with two clusters: the seeds' coins example.

The grey levels of scikit-image's ``coins()`` picture (a synthetic picture of
bright discs on a dark, unevenly lit background when scikit-image is not
installed) are clustered into two groups. Each pixel's cluster, numbered by
brightness so that the background is 0, is written as a label image:

    python examples/coins_segmentation.py [OUT_DIR]

writes ``coins.png`` (the picture), ``coins-2.png`` (two grey levels) and
``coins-mask.png`` (the mask, shown black and white), and prints how many
pixels each cluster holds. The command line does the same with
``fastkm quantize coins.png -n 2 -o coins-2.png --labels coins-mask.png``.
"""

import os
import sys

import numpy as np
from PIL import Image

from fastkm.quantize import quantize, save, save_labels


def coins():
    """scikit-image's coins picture, or a synthetic one like it (uint8 grey)."""
    try:
        from skimage import data
    except ImportError:
        return synthetic_coins()
    return data.coins()


def synthetic_coins(height=303, width=384, seed=0):
    """Twenty bright discs on a dark background lit from one side, with noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width]
    image = 40.0 + 30.0 * cols / width  # the uneven light
    for _ in range(20):
        y, x = rng.integers(30, height - 30), rng.integers(30, width - 30)
        radius = rng.integers(12, 24)
        image[(rows - y) ** 2 + (cols - x) ** 2 <= radius**2] = rng.uniform(150, 200)
    image += rng.normal(0.0, 8.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def main(out_dir="."):
    picture = Image.fromarray(coins())
    picture.save(os.path.join(out_dir, "coins.png"))
    result = quantize(picture, 2, method="kmeans", random_state=0)
    save(result, os.path.join(out_dir, "coins-2.png"))
    save_labels(result, os.path.join(out_dir, "coins-mask.png"))
    mask = np.asarray(Image.open(os.path.join(out_dir, "coins-mask.png")))
    grey = np.asarray(picture)
    for label, name in enumerate(("background", "coins")):
        pixels = mask == label
        print(f"{label} {name}: {pixels.mean():.1%} of the pixels, mean grey level {grey[pixels].mean():.0f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
