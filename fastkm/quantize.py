"""Colour quantisation: an image reduced to ``n_colors`` colours by k-means.

Pillow in, Pillow out (arrays in, arrays out). The seeds' recipe: the pixels
scaled to [0, 1], a k-means fit (on all of them or on a random sample), every
pixel labelled with its nearest centre, and the centres as the palette.
"""

import os
import typing
import warnings

import numpy as np

from . import _files
from ._lazy import LazyModule

# Pillow, imported by the first call of this module's functions:
# ``import fastkm`` imports this module, and a first fit should not wait for it.
Image = LazyModule("PIL.Image")

# The estimator of each method (imported when it fits: ``import fastkm``
# imports this module, and stays free of scikit-learn).
METHODS = {"minibatch": "MiniBatchKMeans", "kmeans": "KMeans"}

# Pillow modes kept as they are; every other mode is converted to the nearest one.
_KEPT_MODES = {"RGB", "RGBA", "L", "LA"}
_CONVERTED_MODES = {"1": "L", "I": "L", "I;16": "L", "F": "L", "PA": "RGBA", "La": "LA", "RGBa": "RGBA"}


class Quantized(typing.NamedTuple):
    """What :func:`quantize` returns.

    Attributes
    ----------
    image : PIL.Image.Image or ndarray
        The quantised image: a Pillow image for a Pillow image or a path, an
        array of the input's shape and dtype for an array. Alpha is kept.
    palette : ndarray of shape (n_palette, n_channels)
        The colours (alpha excluded): uint8 for 8-bit input, float in [0, 1]
        for a float array. ``n_palette`` is ``n_colors``, or the number of
        distinct colours when the image has fewer.
    labels : ndarray of shape (height, width)
        Each pixel's row of ``palette``.
    """

    image: typing.Any
    palette: np.ndarray
    labels: np.ndarray


def quantize(image, n_colors, *, method="minibatch", sample_size=None, random_state=None, **params):
    """Reduce an image to ``n_colors`` colours with k-means.

    Parameters
    ----------
    image : PIL.Image.Image, str, os.PathLike or ndarray
        A Pillow image, the path of an image file, or an array of shape
        (height, width), (height, width, 1), (height, width, 3) or
        (height, width, 4): uint8, or float with values in [0, 1]. Grey and
        RGB colours are quantised; an alpha channel is kept as it is. Other
        Pillow modes are converted first (palette images to RGB or RGBA,
        16-bit and float images to 8-bit grey).
    n_colors : int
        Number of colours, at least 1.
    method : {"minibatch", "kmeans"}, default="minibatch"
        ``MiniBatchKMeans`` (the seeds' choice) or exact ``KMeans``.
    sample_size : int, default=None
        Fit on this many pixels drawn at random without replacement (all of
        them if None or if the image has no more), then label every pixel.
    random_state : int, RandomState instance or None, default=None
        Seeds the pixel sample and the k-means initialisation.
    **params
        Further parameters of the estimator, e.g. ``batch_size`` or ``n_init``.

    Returns
    -------
    Quantized
        ``(image, palette, labels)``.

    Warns
    -----
    UserWarning
        When the image has no more distinct colours than ``n_colors``: they
        are kept, all of them, and no k-means is run.

    Examples
    --------
    >>> import numpy as np
    >>> from fastkm.quantize import quantize
    >>> pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    >>> pixels[:, 2:] = [250, 10, 10]
    >>> pixels[0, 0] = [5, 5, 5]
    >>> result = quantize(pixels, 2, random_state=0)
    >>> result.palette.shape, result.labels.shape
    ((2, 3), (4, 4))
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if isinstance(n_colors, bool) or not isinstance(n_colors, (int, np.integer)) or n_colors < 1:
        raise ValueError(f"n_colors must be an integer of at least 1, got {n_colors!r}")
    shape = None if isinstance(image, (str, os.PathLike, Image.Image)) else np.shape(image)
    pixels = _pixels(image)
    colour, alpha = _split_alpha(pixels)
    height, width, n_channels = colour.shape
    is_float = np.issubdtype(colour.dtype, np.floating)
    X = colour.reshape(-1, n_channels)
    if not is_float:
        X = X.astype(np.float64) / 255
    palette_values, labels = _distinct_colours(X, n_colors)
    if palette_values is None:
        palette_values, labels = _kmeans_palette(X, n_colors, method, sample_size, random_state, params)
    palette = palette_values if is_float else _to_uint8(palette_values)
    quantised = palette[labels].reshape(height, width, n_channels)
    if alpha is not None:
        quantised = np.concatenate([quantised, alpha], axis=2)
    labels = labels.reshape(height, width)
    return Quantized(_as_input_kind(quantised, pixels.dtype, shape), palette, labels)


def _pixels(image):
    """The image as a (height, width, channels) array."""
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as opened:
            opened.load()
            image = opened.copy()
    if isinstance(image, Image.Image):
        mode = _usable_mode(image)
        image = image.convert(mode) if image.mode != mode else image
        if image.mode in ("I", "F"):
            image = image.convert("L")
        pixels = np.asarray(image)
        return pixels[:, :, None] if pixels.ndim == 2 else pixels
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or 0 in pixels.shape:
        raise ValueError(
            "an image array must have shape (height, width) or (height, width, channels) "
            f"with 1 to 4 channels, got shape {pixels.shape}"
        )
    if np.issubdtype(pixels.dtype, np.floating):
        if not (np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1):
            raise ValueError("a float image array must hold finite values in [0, 1]")
    elif pixels.dtype != np.uint8:
        raise ValueError(f"an image array must be uint8 or float, got {pixels.dtype}")
    return pixels


def _usable_mode(image):
    if image.mode in _KEPT_MODES:
        return image.mode
    if image.mode == "P":
        return "RGBA" if "transparency" in image.info else "RGB"
    if image.mode in _CONVERTED_MODES:
        return _CONVERTED_MODES[image.mode]
    return "RGB"  # CMYK, YCbCr, LAB, HSV, ...


def _split_alpha(pixels):
    """Colour channels (1 or 3) and the alpha channel (None without one)."""
    if pixels.shape[2] in (2, 4):
        return pixels[:, :, :-1], pixels[:, :, -1:]
    return pixels, None


def _distinct_colours(X, n_colors):
    """The image's own colours as the palette, if there are at most ``n_colors`` of them.

    Returns ``(None, None)`` when there are more (k-means is needed).
    """
    # A quick bound first: a sample with more distinct colours settles it.
    sample = X[:: max(1, len(X) // 4096)]
    if len(np.unique(sample, axis=0)) > n_colors:
        return None, None
    palette, labels = np.unique(X, axis=0, return_inverse=True)
    if len(palette) > n_colors:
        return None, None
    warnings.warn(
        f"The image has {len(palette)} distinct colours, no more than n_colors={n_colors}: "
        "they are kept as they are.",
        UserWarning,
        stacklevel=3,
    )
    return palette, labels.reshape(-1)


def _kmeans_palette(X, n_colors, method, sample_size, random_state, params):
    """Fit on all pixels or a sample of them; the centres and every pixel's label."""
    from sklearn.utils import check_random_state

    from ._kmeans import KMeans
    from ._minibatch_kmeans import MiniBatchKMeans

    estimator = {"KMeans": KMeans, "MiniBatchKMeans": MiniBatchKMeans}[METHODS[method]]
    rng = check_random_state(random_state)
    fit_on = X
    if sample_size is not None and sample_size < len(X):
        if sample_size < n_colors:
            raise ValueError(f"sample_size={sample_size} must be at least n_colors={n_colors}")
        fit_on = X[rng.permutation(len(X))[:sample_size]]
    model = estimator(n_colors, random_state=rng, **params).fit(fit_on)
    labels = model.labels_ if fit_on is X else model.predict(X)
    return model.cluster_centers_, labels


def _to_uint8(values):
    return np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)


def _as_input_kind(quantised, dtype, shape):
    """A Pillow image for Pillow input (``shape`` None), else an array of the input's shape and dtype.

    Pillow picks the mode from the channels: L, LA, RGB or RGBA, the mode
    the input was read in.
    """
    if shape is None:
        return Image.fromarray(quantised[:, :, 0] if quantised.shape[2] == 1 else quantised)
    return quantised.reshape(shape).astype(dtype, copy=False)


def psnr(original, quantised):
    """Peak signal-to-noise ratio of ``quantised`` against ``original``, in dB (8-bit scale).

    Both are Pillow images or arrays of the same shape; inf when they are equal.
    """
    original, quantised = _pixels(original), _pixels(quantised)
    a, b = original.astype(np.float64), quantised.astype(np.float64)
    if np.issubdtype(original.dtype, np.floating):
        a, b = a * 255, b * 255
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def save(result, path):
    """Write a :func:`quantize` result (Pillow image) to ``path``, atomically.

    A PNG with at most 256 colours and no alpha is written as a palette
    ('P' mode) image, which makes a smaller file; anything else as it is. The
    file appears only once complete: nothing is left behind on failure.

    Raises
    ------
    fastkm._files.OutputError
        When ``path`` cannot be written (no such directory, no permission, a
        read-only file there).
    """
    image = result.image
    if _is_png(path) and image.mode in ("RGB", "L") and len(result.palette) <= 256:
        image = _palette_image(result)
    _save_image(image, path)


def _save_image(image, path):
    extension = os.path.splitext(path)[1]
    file_format = Image.registered_extensions()[extension.lower()]
    with _files.replacing(path, suffix=extension) as partial:
        image.save(partial, format=file_format)


# Formats a label mask is written in: lossless, keeping a palette image's values (BMP makes 2 colours 1-bit).
LABEL_EXTENSIONS = (".png", ".tif", ".tiff")


def brightness_order(palette):
    """The rank of each palette colour by brightness, 0 the darkest (ties by palette order).

    Brightness is the grey value Pillow converts to (ITU-R 601 luma:
    0.299 R + 0.587 G + 0.114 B) for colours, the value itself for grey.
    """
    palette = np.asarray(palette, dtype=np.float64)
    luma = palette[:, 0] if palette.shape[1] == 1 else palette[:, :3] @ np.array([0.299, 0.587, 0.114])
    ranks = np.empty(len(palette), dtype=np.int64)
    ranks[np.argsort(luma, kind="stable")] = np.arange(len(palette))
    return ranks


def label_image(result):
    """Each pixel's cluster as an 8-bit label image: clusters ordered by brightness, 0 the darkest.

    A segmentation mask: with ``n_colors=2`` the darker cluster (the
    background of dark-background scans, such as the seeds' coins) is 0 and
    the other 1. The image is a palette ('P') image whose values are the
    labels; its palette shows them as greys from black to white, so the
    mask is visible as it is.

    Parameters
    ----------
    result : Quantized
        A :func:`quantize` result with at most 256 colours.

    Returns
    -------
    PIL.Image.Image
    """
    n = len(result.palette)
    if n > 256:
        raise ValueError(f"a label image holds at most 256 clusters, got {n}")
    labels = brightness_order(result.palette)[result.labels].astype(np.uint8)
    image = Image.fromarray(labels)  # 'L': the labels
    greys = np.rint(np.arange(n) * (255 / max(n - 1, 1))).astype(np.uint8)
    image.putpalette(np.repeat(greys, 3).tolist())  # now 'P'
    return image


def save_labels(result, path):
    """Write :func:`label_image` of ``result`` to ``path`` (PNG or TIFF), atomically.

    Raises
    ------
    ValueError
        For another format (a lossy one would change the labels).
    fastkm._files.OutputError
        When ``path`` cannot be written.
    """
    if os.path.splitext(path)[1].lower() not in LABEL_EXTENSIONS:
        raise ValueError(f"a label image is written as {', '.join(LABEL_EXTENSIONS)}, not {path}")
    _save_image(label_image(result), path)


def _is_png(path):
    return os.path.splitext(path)[1].lower() == ".png"


def _palette_image(result):
    """The result as a 'P' mode image: its labels index its palette."""
    palette = result.palette
    if palette.shape[1] == 1:
        palette = np.repeat(palette, 3, axis=1)
    image = Image.fromarray(result.labels.astype(np.uint8))  # 'L': the indices
    image.putpalette(palette.astype(np.uint8).ravel().tolist())  # now 'P'
    return image
