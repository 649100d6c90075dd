"""One preprocessing function for every path into a model: the canvas, dropped files,
the CLI, evaluation and export all call `prepare()`.

Handwriting models get every image through the document front end
(`app.core.document.find_digit`: photos and scans of a digit on paper, whiteboards,
blackboards), which finds the digit and hands its ink to the MNIST normalization
(`app.core.ink`). Only the canvas, whose drawings are clean, asks for the fast path
(`clean=True`). Fit mode (Fashion-MNIST) is in `app.core.ink` too; resize mode (image
folders) in `app.core.resize_mode`; `PreparedImage` and the shared array helpers in
`app.core.prepared`.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace

import numpy as np
from PIL import Image

from app.core.document import find_digit
from app.core.images import load_image, reduced
from app.core.ink import (  # noqa: F401  (re-exported: the constants' public home was here)
    COM_TARGET,
    DIGIT_BOX,
    DOT_MAX_FRACTION,
    MIN_CONTRAST,
    MIN_INK_EXTENT,
    STROKE_TARGET,
    WORK_SIZE,
    normalize_ink,
    prepare_digit,
    prepare_fit,
    stroke_width,
)
from app.core.models import MNIST_SPEC, InputSpec
from app.core.placement import Placement
from app.core.prepared import PreparedImage, as_float_image, blank_image, flatten_alpha
from app.core.resize_mode import BAND_PIXELS, prepare_resize  # noqa: F401

NO_HANDWRITING = "nothing to classify: no handwriting found on this image"
# Fit mode and clean drawings work on at most this many pixels along the longest side: the
# output is 28 px, and the ink's box and strokes are found as well at this size.
WORK_SIDE = 1024


def _prepare_photo(image: Image.Image | np.ndarray, spec: InputSpec) -> PreparedImage:
    """Photos and scans: the document front end finds the digit, then MNIST normalization."""
    found = find_digit(image)
    if found.ink is None:
        return blank_image(spec, NO_HANDWRITING)
    # The crop is the found region at the working copy's scale.
    (x0, y0, x1, y1), (ch, cw) = found.region, found.ink.shape
    placed = Placement.identity(*found.source_size).shifted(-x0, -y0)
    placed = placed.scaled(cw / max(x1 - x0, 1), ch / max(y1 - y0, 1))
    prepared = normalize_ink(found.ink, spec, found.frame, placed)
    note = f"found {found.count} digits; classified the largest" if found.count > 1 else ""
    return replace(prepared, region=None if prepared.blank else found.region, note=note)


def prepare(
    image: Image.Image | np.ndarray, spec: InputSpec = MNIST_SPEC, *, clean: bool = False
) -> PreparedImage:
    """Turns any image into the model's input.

    Args:
        image: a PIL image in any mode, or an array (H, W[, C]) of uint8/uint16/float.
        spec: the model's input spec (its `mode` picks the pipeline).
        clean: the image is a clean drawing (the canvas: ink on an even background and
            nothing else), so handwriting models skip the photo front end (~10x faster).

    Returns:
        A PreparedImage; `blank` is set (with a reason) when there is nothing to classify.
    """
    if spec.mode == "resize":
        return prepare_resize(image, spec)
    if spec.mode == "digit" and not clean and _has_pixels(image):
        prepared = _prepare_photo(_sanitized(image), spec)
        return _as_channels(prepared, spec)
    placed = None
    if isinstance(image, Image.Image) and max(image.size) > WORK_SIDE:
        # Bounded before any float conversion: a 49 MP RGBA image as float32 is 784 MB.
        w, h = image.size
        image = reduced(image, math.ceil(max(w, h) / WORK_SIDE))
        placed = Placement.identity(w, h).scaled(image.width / w, image.height / h)
    a = as_float_image(image)
    if a.ndim not in (2, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        return blank_image(spec, "nothing to classify: the image has no pixels")
    gray = flatten_alpha(a)
    if spec.mode == "fit":
        prepared = prepare_fit(gray, spec, placed)
    else:
        prepared = prepare_digit(gray, spec, placed)
    return _as_channels(prepared, spec)


def _as_channels(prepared: PreparedImage, spec: InputSpec) -> PreparedImage:
    if spec.channels == 3 and not prepared.blank:
        return replace(prepared, pixels=np.repeat(prepared.pixels[..., None], 3, axis=2))
    if spec.channels == 3:
        return replace(prepared, pixels=np.zeros((spec.size, spec.size, 3), np.uint8))
    return prepared


def _has_pixels(image: Image.Image | np.ndarray) -> bool:
    if isinstance(image, Image.Image):
        return image.width > 0 and image.height > 0
    shape = np.shape(image)
    return len(shape) in (2, 3) and shape[0] > 0 and shape[1] > 0


def _sanitized(image: Image.Image | np.ndarray) -> Image.Image | np.ndarray:
    """Arrays of any dtype -> float32 in [0, 1] (NaN as background); PIL images as they are
    (the front end reduces big ones before converting)."""
    if isinstance(image, Image.Image):
        return image
    a = as_float_image(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[2] == 2:  # gray + alpha
        a = np.concatenate([np.repeat(a[..., :1], 3, axis=2), a[..., 1:]], axis=2)
    elif a.ndim == 3 and a.shape[2] > 4:
        a = a[..., :3]
    return a


def prepare_file(path: str | os.PathLike, spec: InputSpec = MNIST_SPEC) -> PreparedImage:
    """`load_image` + `prepare` (a file is never a clean drawing). Raises ImageLoadError
    for unreadable files."""
    return prepare(load_image(path), spec)
