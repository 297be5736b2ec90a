"""Colour quantisation: inputs, outputs, edge cases, and the seeds' recipe in scikit-learn."""

import os
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest
import sklearn.cluster
from PIL import Image, UnidentifiedImageError
from sklearn.datasets import load_sample_image

from fastkm.quantize import brightness_order, label_image, psnr, quantize, save, save_labels

RNG = np.random.default_rng(0)


def _image(height=24, width=32, n_blobs=6, seed=0):
    """An RGB uint8 image of a few colour regions plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, size=(n_blobs, 3))
    region = (np.arange(height)[:, None] * n_blobs // height + np.arange(width)[None, :] % 2) % n_blobs
    noise = rng.integers(-12, 13, size=(height, width, 3))
    return np.clip(centres[region] + noise, 0, 255).astype(np.uint8)


def _psnr(a, b):
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_array_in_array_out():
    pixels = _image()
    result = quantize(pixels, 4, random_state=0)
    assert result.image.shape == pixels.shape and result.image.dtype == np.uint8
    assert result.palette.shape == (4, 3) and result.palette.dtype == np.uint8
    assert result.labels.shape == pixels.shape[:2]
    np.testing.assert_array_equal(result.image, result.palette[result.labels])


@pytest.mark.parametrize("method", ["kmeans", "minibatch"])
def test_the_seeds_recipe_in_scikit_learn(method):
    """Same palette and labels as the recipe with scikit-learn's estimator and the same seed."""
    pixels = _image(40, 50, n_blobs=9, seed=1)
    ours = quantize(pixels, 5, method=method, random_state=3)
    estimator = {"kmeans": sklearn.cluster.KMeans, "minibatch": sklearn.cluster.MiniBatchKMeans}[method]
    X = pixels.reshape(-1, 3) / 255
    theirs = estimator(5, random_state=np.random.RandomState(3)).fit(X)
    np.testing.assert_array_equal(ours.labels.ravel(), theirs.labels_)
    np.testing.assert_array_equal(ours.palette, np.clip(np.rint(theirs.cluster_centers_ * 255), 0, 255))


def test_float_array_keeps_float():
    pixels = _image().astype(np.float32) / 255
    result = quantize(pixels, 3, random_state=0)
    assert result.image.dtype == np.float32 and result.image.shape == pixels.shape
    assert np.issubdtype(result.palette.dtype, np.floating)
    assert 0 <= result.palette.min() and result.palette.max() <= 1


@pytest.mark.parametrize(
    "mode, expected",
    [("RGB", "RGB"), ("RGBA", "RGBA"), ("L", "L"), ("LA", "LA"), ("P", "RGB"), ("CMYK", "RGB"), ("1", "L")],
)
def test_pillow_modes(mode, expected):
    image = Image.fromarray(_image()).convert(mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # mode "1" has two colours only
        result = quantize(image, 3, random_state=0)
    assert isinstance(result.image, Image.Image)
    assert result.image.mode == expected and result.image.size == image.size
    if "A" in mode:  # alpha kept, untouched
        np.testing.assert_array_equal(np.asarray(result.image)[..., -1], np.asarray(image)[..., -1])


def test_palette_image_with_transparency_keeps_it():
    rgba = np.dstack([_image(), np.full(_image().shape[:2], 255, np.uint8)])
    rgba[:4, :4, 3] = 0
    image = Image.fromarray(rgba).convert("P")
    image.info["transparency"] = 0
    result = quantize(image, 3, random_state=0)
    assert result.image.mode == "RGBA"


def test_grey_and_alpha_arrays():
    grey = _image()[:, :, 0]
    result = quantize(grey, 3, random_state=0)
    assert result.image.shape == grey.shape and result.palette.shape == (3, 1)
    grey_alpha = np.dstack([grey, RNG.integers(0, 256, grey.shape).astype(np.uint8)])
    result = quantize(grey_alpha, 3, random_state=0)
    np.testing.assert_array_equal(result.image[..., 1], grey_alpha[..., 1])


def test_path_in_pillow_out(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(_image()).save(path)
    result = quantize(path, 4, random_state=0)
    assert isinstance(result.image, Image.Image) and result.image.mode == "RGB"
    assert quantize(str(path), 4, random_state=0).palette.tolist() == result.palette.tolist()


def test_fewer_colours_than_asked_keeps_them_with_a_warning():
    pixels = np.zeros((6, 6, 3), dtype=np.uint8)
    pixels[:3] = [200, 10, 10]
    pixels[0, 0] = [1, 2, 3]
    with pytest.warns(UserWarning, match="3 distinct colours, no more than n_colors=8"):
        result = quantize(pixels, 8)
    assert len(result.palette) == 3
    np.testing.assert_array_equal(result.image, pixels)


def test_exactly_as_many_colours_as_asked():
    pixels = np.array([[[0, 0, 0], [255, 255, 255]], [[0, 0, 0], [9, 9, 9]]], dtype=np.uint8)
    with pytest.warns(UserWarning):
        result = quantize(pixels, 3)
    np.testing.assert_array_equal(result.image, pixels)


def test_sample_size():
    pixels = _image(60, 60)
    result = quantize(pixels, 4, sample_size=500, random_state=0)
    assert result.labels.shape == (60, 60) and result.labels.max() < 4
    whole = quantize(pixels, 4, sample_size=10**6, random_state=0)
    np.testing.assert_array_equal(whole.labels, quantize(pixels, 4, random_state=0).labels)
    with pytest.raises(ValueError, match="sample_size=3 must be at least n_colors=4"):
        quantize(pixels, 4, sample_size=3)


def test_estimator_parameters_pass_through():
    pixels = _image()
    a = quantize(pixels, 4, random_state=0, batch_size=64, max_iter=5)
    b = quantize(pixels, 4, random_state=0, batch_size=64, max_iter=5)
    np.testing.assert_array_equal(a.labels, b.labels)
    with pytest.raises(TypeError):
        quantize(pixels, 4, no_such_parameter=1)


@pytest.mark.parametrize("n_colors", [0, -3, 2.5, True, "8"])
def test_bad_n_colors(n_colors):
    with pytest.raises(ValueError, match="n_colors must be an integer of at least 1"):
        quantize(_image(), n_colors)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="method must be one of"):
        quantize(_image(), 4, method="median-cut")
    with pytest.raises(ValueError, match="1 to 4 channels"):
        quantize(np.zeros((4, 4, 5), np.uint8), 2)
    with pytest.raises(ValueError, match="1 to 4 channels"):
        quantize(np.zeros((0, 4, 3), np.uint8), 2)
    with pytest.raises(ValueError, match="uint8 or float"):
        quantize(np.zeros((4, 4, 3), np.int64), 2)
    with pytest.raises(ValueError, match=r"finite values in \[0, 1\]"):
        quantize(np.full((4, 4, 3), 2.0), 2)
    with pytest.raises(FileNotFoundError):
        quantize(tmp_path / "missing.png", 2)
    text = tmp_path / "not-an-image.png"
    text.write_text("hello")
    with pytest.raises(UnidentifiedImageError):
        quantize(text, 2)


@pytest.mark.parametrize("method", ["minibatch", "kmeans"])
def test_china_as_good_as_scikit_learn(method):
    """china.jpg to 16 colours: PSNR within 0.05 dB of the recipe with scikit-learn."""
    china = load_sample_image("china.jpg")
    ours = quantize(china, 16, method=method, random_state=0)
    estimator = {"kmeans": sklearn.cluster.KMeans, "minibatch": sklearn.cluster.MiniBatchKMeans}[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = estimator(16, random_state=np.random.RandomState(0)).fit(china.reshape(-1, 3) / 255)
    palette = np.clip(np.rint(theirs.cluster_centers_ * 255), 0, 255).astype(np.uint8)
    reference = palette[theirs.labels_].reshape(china.shape)
    assert _psnr(china, ours.image) >= _psnr(china, reference) - 0.05


# --- save, psnr and the command line ----------------------------------------------


def test_save_writes_a_palette_png_and_nothing_on_failure(tmp_path):
    result = quantize(Image.fromarray(_image()), 5, random_state=0)
    path = tmp_path / "out.png"
    save(result, str(path))
    back = Image.open(path)
    assert back.mode == "P"
    np.testing.assert_array_equal(np.asarray(back.convert("RGB")), np.asarray(result.image))
    rgb = tmp_path / "out.jpg"
    save(result, str(rgb))
    assert Image.open(rgb).mode == "RGB"
    with pytest.raises(KeyError):
        save(result, str(tmp_path / "out.unknown"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "out.png"]


def test_save_keeps_alpha(tmp_path):
    rgba = Image.fromarray(np.dstack([_image(), np.full(_image().shape[:2], 7, np.uint8)]))
    save(quantize(rgba, 3, random_state=0), str(tmp_path / "a.png"))
    back = Image.open(tmp_path / "a.png")
    assert back.mode == "RGBA" and np.asarray(back)[0, 0, 3] == 7


# --- label images: segmentation masks ------------------------------------------------


def _two_tone(height=20, width=30):
    """A bright object (left) on a dark background (right), with noise."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 3] = [200, 180, 160]
    image[:, width // 3 :] = [20, 30, 10]
    noise = np.random.default_rng(1).integers(0, 6, size=image.shape)
    return (image + noise).astype(np.uint8)


def test_brightness_order_matches_pillows_grey():
    palette = np.array([[0, 0, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    # Pillow's grey: blue 29, red 76, green 150; the tied blues keep their order.
    greys = np.asarray(Image.fromarray(palette[None]).convert("L"))[0]
    assert list(greys) == [29, 76, 150, 29]
    assert list(brightness_order(palette)) == [0, 2, 3, 1]
    assert list(brightness_order(np.array([[0.9], [0.1], [0.5]]))) == [2, 0, 1]


def test_label_image_numbers_clusters_from_the_darkest():
    image = _two_tone()
    result = quantize(image, 2, random_state=0)
    mask = label_image(result)
    assert mask.mode == "P"
    values = np.asarray(mask)
    assert (values[:, :10] == 1).all() and (values[:, 10:] == 0).all()
    # The same partition as the quantised labels, renumbered; shown black and white.
    rank = brightness_order(result.palette)
    np.testing.assert_array_equal(values, rank[result.labels])
    np.testing.assert_array_equal(np.unique(np.asarray(mask.convert("L"))), [0, 255])
    # Grey images work as they are; three clusters are 0, 1, 2 by brightness.
    grey = np.repeat(np.array([[10] * 4 + [250] * 4 + [120] * 4], dtype=np.uint8), 3, axis=0)
    with pytest.warns(UserWarning, match="3 distinct colours"):
        values = np.asarray(label_image(quantize(Image.fromarray(grey), 3, random_state=0)))
    assert list(values[0, ::4]) == [0, 2, 1]


def test_save_labels(tmp_path):
    result = quantize(_two_tone(), 2, random_state=0)
    for name in ("mask.png", "mask.tif"):
        save_labels(result, str(tmp_path / name))
        np.testing.assert_array_equal(
            np.asarray(Image.open(tmp_path / name)), np.asarray(label_image(result))
        )
    for lossy_or_remapped in ("mask.jpg", "mask.bmp"):
        with pytest.raises(ValueError, match=r"a label image is written as \.png"):
            save_labels(result, str(tmp_path / lossy_or_remapped))
    big = result._replace(palette=np.zeros((300, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="at most 256 clusters"):
        label_image(big)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "mask.tif"]


def test_psnr():
    a = _image()
    assert psnr(a, a) == np.inf
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert psnr(a, b) == pytest.approx(10 * np.log10(255.0**2 / (1 / a.size)))


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "fastkm", "quantize", *args], cwd=cwd, capture_output=True, text=True
    )


def test_command_line(tmp_path):
    Image.fromarray(_image(40, 40)).save(tmp_path / "in.png")
    done = _cli("in.png", "-n", "4", "-o", "out.png", "--seed", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "out.png").mode == "P"
    sweep = ["--sweep", "2..8", "-o", "series", "--no-progress", "--method", "kmeans"]
    done = _cli("in.png", *sweep, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "series").iterdir()) == ["in-2.png", "in-4.png", "in-8.png"]
    assert "PSNR" in done.stdout and len(done.stdout.splitlines()) == 5


def test_command_line_segmentation_mask(tmp_path):
    Image.fromarray(_two_tone()).save(tmp_path / "in.png")
    done = _cli("in.png", "-n", "2", "-o", "out.png", "--labels", "mask.png", "--seed", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    values = np.asarray(Image.open(tmp_path / "mask.png"))
    assert (values[:, :10] == 1).all() and (values[:, 10:] == 0).all()


def test_command_line_never_writes_over_a_read_only_file(tmp_path):
    Image.fromarray(_image()).save(tmp_path / "in.png")
    (tmp_path / "out.png").write_bytes(b"keep me")
    os.chmod(tmp_path / "out.png", 0o444)
    done = _cli("in.png", "-n", "4", "-o", "out.png", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "fastkm quantize: error: cannot write out.png: the file is read-only"
    assert (tmp_path / "out.png").read_bytes() == b"keep me"
    assert stat.S_IMODE(os.stat(tmp_path / "out.png").st_mode) == 0o444
    # A writable file is replaced, and keeps its mode.
    os.chmod(tmp_path / "out.png", 0o600)
    assert _cli("in.png", "-n", "4", "-o", "out.png", cwd=tmp_path).returncode == 0
    assert stat.S_IMODE(os.stat(tmp_path / "out.png").st_mode) == 0o600
    assert Image.open(tmp_path / "out.png").mode == "P"


@pytest.mark.parametrize(
    "args",
    [
        ["in.png", "-n", "2", "-o", "/sys/fastkm-out.png"],
        ["in.png", "-n", "2", "-o", "out.png", "--labels", "/sys/fastkm-mask.png"],
        ["in.png", "--sweep", "2..4", "-o", "/sys/fastkm-series"],
    ],
    ids=["image", "labels", "sweep"],
)
def test_command_line_folder_it_may_not_write_to(tmp_path, args):
    # /sys takes no new files, even from root: one line, exit 2, no traceback.
    Image.fromarray(_image()).save(tmp_path / "in.png")
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("fastkm quantize: error: cannot write /sys/fastkm-")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["in.png", "-n", "2", "-o", "o.png", "--labels", "m.jpg"], "cannot write m.jpg: a label image is"),
        (["in.png", "--sweep", "2..4", "-o", "d", "--labels", "m.png"], "--labels takes one colour count"),
        (["in.png", "-n", "300", "-o", "o.png", "--labels", "m.png"], "--labels holds at most 256 clusters"),
        (["in.png", "-n", "2", "-o", "o.png", "--labels", "o.png"], "--labels o.png is the output image too"),
        (["in.png", "-n", "2", "-o", "out.psd"], "or one Pillow cannot write"),
        (["missing.png", "-n", "4", "-o", "out.png"], "cannot read missing.png: no such file"),
        (["text.png", "-n", "4", "-o", "out.png"], "cannot read text.png: not an image file"),
        (["in.png", "-n", "0", "-o", "out.png"], "N must be at least 1"),
        (["in.png", "-o", "out.png"], "give either -n N or --sweep"),
        (["in.png", "-n", "4", "-o", "out.xyz"], "unknown image file extension"),
        (["in.png", "--sweep", "5..7", "-o", "d"], "no power of two"),
    ],
)
def test_command_line_errors(tmp_path, args, message):
    Image.fromarray(_image()).save(tmp_path / "in.png")
    (tmp_path / "text.png").write_text("not an image")
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"fastkm quantize: error: {message}" or (
        message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    )
    assert not (tmp_path / "out.png").exists()


def test_coins_segmentation_example(tmp_path):
    # The seeds' coins flow, as examples/coins_segmentation.py runs it (scikit-image's
    # coins() when installed, a synthetic picture otherwise).
    example = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "coins_segmentation.py")
    done = subprocess.run(
        [sys.executable, example, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "FASTKM_COMPILE": "wait"},
    )
    assert done.returncode == 0, done.stderr
    picture = np.asarray(Image.open(tmp_path / "coins.png"))
    mask = np.asarray(Image.open(tmp_path / "coins-mask.png"))
    assert mask.shape == picture.shape and set(np.unique(mask)) == {0, 1}
    assert picture[mask == 0].mean() + 50 < picture[mask == 1].mean()
    assert "0 background:" in done.stdout and "1 coins:" in done.stdout
