"""Resize mode (models trained on image folders): the centre square of a photo, in the
model's channels, resized to its input size. Work and memory are bounded by the source's
pixels whatever its shape."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.core.images import HIGH_DEPTH_MODES, full_scale, to_array
from app.core.models import InputSpec
from app.core.placement import Placement
from app.core.prepared import PreparedImage, as_float_image, blank_image, flatten_alpha, to_uint8

BAND_PIXELS = 1 << 20  # a large image is converted this many pixels at a time


def _model_channels(a: np.ndarray, channels: int) -> np.ndarray:
    """Float gray/RGB/RGBA -> the model's channels; transparent areas become white."""
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3:4]
        a = a[..., :3] * alpha + (1.0 - alpha)
    if channels == 1:
        return flatten_alpha(a) if a.ndim == 3 else a
    return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Means of f x f blocks (the last row and column of blocks may be smaller)."""
    if f == 1:
        return a
    h, w = a.shape[:2]
    rows, cols = np.arange(0, h, f), np.arange(0, w, f)
    total = np.add.reduceat(np.add.reduceat(a, rows, axis=0), cols, axis=1)
    count = np.outer(np.diff(np.append(rows, h)), np.diff(np.append(cols, w))).astype(np.float32)
    return total / (count[..., None] if a.ndim == 3 else count)


def _centre_square(image: Image.Image | np.ndarray, spec: InputSpec) -> tuple[np.ndarray, float]:
    """The centre square that resize mode keeps, in the model's channels, box-averaged
    down to about 2..4x the model's input size; and the side of the square in the
    returned array's pixels (a last, partial block of the average is a fraction of one).

    Only that square is ever converted, and a band of rows at a time: the work and the
    memory are bounded by the source's pixels whatever its aspect ratio (resizing the
    shorter side of a 1x50000 strip first would make a 64x3,200,000 image), and a 50 MP
    photo is never held as float32 whole.
    """
    if not isinstance(image, Image.Image):
        a = np.asarray(image)
        if a.ndim not in (2, 3) or a.shape[0] == 0 or a.shape[1] == 0:
            return as_float_image(a), 0.0
        h, w = a.shape[:2]
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        f = max(1, side // (2 * spec.size))
        square = _model_channels(as_float_image(a[y0 : y0 + side, x0 : x0 + side]), spec.channels)
        return _block_mean(square, f), side / f
    w, h = image.size
    side = min(w, h)
    if side == 0:
        return np.zeros((h, w), dtype=np.float32), 0.0
    x0, y0 = (w - side) // 2, (h - side) // 2
    f = max(1, side // (2 * spec.size))  # as Pillow's reducing_gap=2: average to >= 2x first
    band = max(f, BAND_PIXELS // side // f * f)  # rows per band: whole blocks
    boxes = [(x0, y, x0 + side, min(y + band, y0 + side)) for y in range(y0, y0 + side, band)]
    scale = None
    if image.mode in HIGH_DEPTH_MODES:  # one scale for all bands, as for the whole image
        tops = [np.asarray(image.crop(b), dtype=np.float64) for b in boxes]
        top = max(float(np.nanmax(t)) if image.mode == "F" else float(t.max()) for t in tops)
        scale = full_scale(top, image.mode)
        del tops
    parts = [
        _block_mean(_model_channels(to_array(image.crop(b), scale), spec.channels), f) for b in boxes
    ]
    return np.concatenate(parts, axis=0), side / f


def prepare_resize(image: Image.Image | np.ndarray, spec: InputSpec) -> PreparedImage:
    """Photos: the centre square, resized to `size`; gray or RGB as the spec says."""
    a, extent = _centre_square(image, spec)
    if a.ndim not in (2, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        return blank_image(spec, "nothing to classify: the image has no pixels")
    if float(a.max() - a.min()) < 1.0 / 255:
        return blank_image(spec, "nothing to classify: the image is a single flat colour")
    small = Image.fromarray(to_uint8(a), mode="L" if a.ndim == 2 else "RGB")
    resized = small.resize(
        (spec.size, spec.size), Image.Resampling.BILINEAR, box=(0, 0, extent, extent), reducing_gap=2.0
    )
    # The centre square (side x side at x0, y0) becomes the input, whatever the averaging.
    w, h = image.size if isinstance(image, Image.Image) else np.asarray(image).shape[1::-1]
    side = min(w, h)
    placed = Placement.identity(w, h).shifted(-((w - side) // 2), -((h - side) // 2))
    placed = placed.scaled(spec.size / side, spec.size / side)
    return PreparedImage(np.ascontiguousarray(np.asarray(resized)), placement=placed)
