"""What `prepare()` hands a model (`PreparedImage`), and the array helpers that every
preprocessing pipeline shares: float conversion, alpha flattening, resizing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.core.images import to_array
from app.core.models import InputSpec
from app.core.placement import Placement


@dataclass(frozen=True)
class PreparedImage:
    """Exactly what the model gets, before its built-in normalization.

    pixels: uint8, (size, size) for 1-channel specs or (size, size, 3).
    blank: nothing to classify (empty canvas, blank image); `reason` says why.
    region: where the digit was found, (x0, y0, x1, y1) in source-image pixels (photo path
        of handwriting models only; None otherwise).
    note: something the user should know about a result, e.g. that the image held several
        digits and the largest was classified.
    placement: where the pixels came from in the source image (maps heat maps back
        onto it); None for blank images.
    """

    pixels: np.ndarray
    blank: bool = False
    reason: str = ""
    region: tuple[int, int, int, int] | None = None
    note: str = ""
    placement: Placement | None = None


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def flatten_alpha(a: np.ndarray) -> np.ndarray:
    """RGBA/RGB/gray float -> gray. Transparent areas become a background that contrasts
    with the opaque pixels (the ink), whatever the ink's colour."""
    if a.ndim == 2:
        return a
    if a.shape[2] == 4:
        gray, alpha = _luminance(a[..., :3]), a[..., 3]
        if float(alpha.min()) > 0.98:
            return gray
        weight = float(alpha.sum())
        ink = float((gray * alpha).sum() / weight) if weight > 1e-6 else 0.0
        bg = 1.0 if ink < 0.5 else 0.0
        return alpha * gray + (1.0 - alpha) * bg
    if a.shape[2] == 1:
        return a[..., 0]
    return _luminance(a[..., :3])


def as_float_image(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return to_array(image)
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if a.dtype == bool:
        return a.astype(np.float32)
    a = a.astype(np.float32)
    finite = np.isfinite(a)
    if not finite.all():  # missing data (NaN, inf) is background, not black ink
        a = np.where(finite, a, np.median(a[finite]) if finite.any() else 0.0).astype(np.float32)
    top = float(a.max()) if a.size else 1.0
    return np.clip(a / top if top > 1.0 else a, 0.0, 1.0)


def resize_float(a: np.ndarray, width: int, height: int) -> np.ndarray:
    img = Image.fromarray(a.astype(np.float32), mode="F")
    shrinking = width < a.shape[1] or height < a.shape[0]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    # np.array, not asarray: callers scale the result in place (a PIL-backed array is read-only)
    return np.array(img.resize((width, height), method), dtype=np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def blank_image(spec: InputSpec, reason: str) -> PreparedImage:
    shape = (spec.size, spec.size) if spec.channels == 1 else (spec.size, spec.size, 3)
    return PreparedImage(np.zeros(shape, dtype=np.uint8), blank=True, reason=reason)
