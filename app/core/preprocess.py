"""One preprocessing function for every path into a model: the canvas, dropped files,
the CLI, evaluation and export all call `prepare()`.

Handwriting models get every image through the document front end
(`app.core.document.find_digit`: photos and scans of a digit on paper, whiteboards,
blackboards), which finds the digit and hands its ink to the MNIST normalization below.
Only the canvas, whose drawings are clean, asks for the fast path (`clean=True`).

Digits are normalized the way MNIST was made (LeCun et al.): ink on a dark background,
cropped to its bounding box, the longest side scaled to 20 px with antialiasing, pasted
into 28x28 with the centre of mass at the centre. Extra care makes real-world input look
like that: alpha is composited, the polarity detected, the contrast stretched, and
strokes that would vanish when shrunk (a thin pen on a big image) are thickened first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from app.core.document import find_digit
from app.core.images import HIGH_DEPTH_MODES, full_scale, load_image, to_array
from app.core.models import MNIST_SPEC, InputSpec
from app.core.placement import Placement

# --- digit normalization constants (measured on the 5k MNIST training digits) -----------
DIGIT_BOX = 20  # MNIST: the longest side of the ink's bounding box is 20 px
STROKE_TARGET = 2.8  # median stroke width of MNIST digits at 28x28 scale, px (2*area/perimeter)
COM_TARGET = (14.0, 14.0)  # where MNIST puts the ink's centre of mass (row, col), 0-based
MIN_CONTRAST = 0.2  # ink must differ from the paper by this much of the full range
MIN_INK_EXTENT = 3  # px in the source; a smaller blob is noise, not a digit
DOT_MAX_FRACTION = 0.15  # a blob (no strokes) smaller than this share of the image is a dot
WORK_SIZE = 320  # huge crops are first box-filtered to this size (speed, and no aliasing)
NO_HANDWRITING = "nothing to classify: no handwriting found on this image"
BAND_PIXELS = 1 << 20  # resize mode converts a large image this many pixels at a time


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


def _flatten_alpha(a: np.ndarray) -> np.ndarray:
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


def _as_float_image(image: Image.Image | np.ndarray) -> np.ndarray:
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


def _border(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    m = max(1, min(h, w) // 20)
    return np.concatenate([a[:m].ravel(), a[-m:].ravel(), a[:, :m].ravel(), a[:, -m:].ravel()])


def _max_filter(a: np.ndarray, radius: int) -> np.ndarray:
    """Separable square max filter (grey dilation), same size output."""
    if radius <= 0:
        return a
    k = 2 * radius + 1
    view = np.lib.stride_tricks.sliding_window_view
    p = np.pad(a, ((radius, radius), (0, 0)))
    a = view(p, k, axis=0).max(axis=-1)
    p = np.pad(a, ((0, 0), (radius, radius)))
    return view(p, k, axis=1).max(axis=-1)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask, 2*area/perimeter (px)."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    p = np.pad(mask, 1)
    interior = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    perimeter = area - int(interior.sum())
    return 2.0 * area / max(perimeter, 1)


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    img = Image.fromarray(a.astype(np.float32), mode="F")
    shrinking = width < a.shape[1] or height < a.shape[0]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    # np.array, not asarray: callers scale the result in place (a PIL-backed array is read-only)
    return np.array(img.resize((width, height), method), dtype=np.float32)


def _ink_on_dark(gray: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Makes ink bright on a dark background and stretches it to [0, 1].

    Returns the image, the ink/paper contrast before stretching, and the paper's noise
    level (robust sigma of the border, in the same units as the contrast).
    """
    border = _border(gray)
    bg = float(np.median(border))
    if bg > 0.5:  # dark ink on light paper -> invert, as MNIST is light ink on black
        gray, border, bg = 1.0 - gray, 1.0 - border, 1.0 - bg
    sigma = 1.4826 * float(np.median(np.abs(border - bg)))
    ink = float(gray.max())
    contrast = ink - bg
    if contrast <= 1e-6:
        return np.zeros_like(gray), 0.0, sigma
    x = np.clip((gray - bg) / contrast, 0.0, 1.0)
    return x, contrast, sigma


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _paste_centered_on_mass(x: np.ndarray, size: int) -> tuple[np.ndarray, int, int]:
    """Returns the pasted image and the (top, left) where `x` went."""
    h, w = x.shape
    total = float(x.sum())
    if total > 0:
        cy = float((x.sum(axis=1) * np.arange(h)).sum() / total)
        cx = float((x.sum(axis=0) * np.arange(w)).sum() / total)
    else:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    scale = size / 28.0
    top = int(round(COM_TARGET[0] * scale - cy))
    left = int(round(COM_TARGET[1] * scale - cx))
    # Keep the whole digit in the frame (MNIST never cuts a digit off).
    top = min(max(top, 0), size - h)
    left = min(max(left, 0), size - w)
    out = np.zeros((size, size), dtype=np.float32)
    out[top : top + h, left : left + w] = x
    return out, top, left


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _blank(spec: InputSpec, reason: str) -> PreparedImage:
    shape = (spec.size, spec.size) if spec.channels == 1 else (spec.size, spec.size, 3)
    return PreparedImage(np.zeros(shape, dtype=np.uint8), blank=True, reason=reason)


def _prepare_digit(gray: np.ndarray, spec: InputSpec) -> PreparedImage:
    """The clean path (canvas drawings): polarity, contrast and a noise floor, then the
    MNIST normalization."""
    x, contrast, sigma = _ink_on_dark(gray)
    if contrast < max(MIN_CONTRAST, 6.0 * sigma):
        return _blank(spec, "nothing to classify: the image is blank")
    # A floor above the paper's noise removes texture and JPEG/sensor noise, which would
    # otherwise average into a grey haze when the image is shrunk.
    floor = min(0.6, max(0.15, 3.0 * sigma / contrast))
    x = np.clip((x - floor) / (1.0 - floor), 0.0, 1.0)
    return _normalize_ink(x, spec, max(gray.shape), Placement.identity(gray.shape[1], gray.shape[0]))


def _normalize_ink(x: np.ndarray, spec: InputSpec, frame: int, placed: Placement) -> PreparedImage:
    """Ink bright on dark, in [0, 1] -> the MNIST picture: bounding box, 20 px box,
    centre of mass. `frame`: the long side of the image the ink came from (px of x);
    `placed`: the map from the source image to x's pixels."""
    box = _bbox(x > 0.35)
    if box is None:
        return _blank(spec, "nothing to classify: the image is blank")
    y0, y1, x0, x1 = box
    extent = max(y1 - y0, x1 - x0)
    if extent < MIN_INK_EXTENT:
        return _blank(spec, "nothing to classify: only a speck of ink")
    crop = x[y0:y1, x0:x1]
    placed = placed.shifted(-x0, -y0)
    # A lone dot (a tap on the canvas, a speck of dirt) has no strokes: it is about twice
    # as long as it is wide, where a digit is several stroke widths long. Scaled up to the
    # 20 px box it would look like a bold 0. Big filled shapes are left to the model.
    if extent < DOT_MAX_FRACTION * frame and extent < 3 * stroke_width(crop > 0.35):
        return _blank(spec, "nothing to classify: only a dot")
    h, w = crop.shape
    if max(h, w) > WORK_SIZE:  # box-filter huge crops first; re-stretch thin faint strokes
        f = WORK_SIZE / max(h, w)
        crop = _resize(crop, max(1, round(w * f)), max(1, round(h * f)))
        crop /= max(float(crop.max()), 1e-6)
        placed = placed.scaled(crop.shape[1] / w, crop.shape[0] / h)
        h, w = crop.shape
    box_px = DIGIT_BOX * spec.size / 28.0
    scale = box_px / max(h, w)
    # Thicken strokes that would end up thinner than MNIST's (a fine pen on a big canvas).
    width = stroke_width(crop > 0.5)
    wanted = STROKE_TARGET * spec.size / 28.0 / scale
    if width * scale < 0.6 * STROKE_TARGET:
        r = int(round((wanted - width) / 2))
        crop = _max_filter(np.pad(crop, r), r)
        placed = placed.shifted(r, r)
        h, w = crop.shape
        scale = box_px / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.clip(_resize(crop, new_w, new_h), 0.0, 1.0)
    top = float(small.max())
    if top <= 0:
        return _blank(spec, "nothing to classify: the image is blank")
    small /= top  # MNIST strokes reach full intensity
    pasted, top_px, left_px = _paste_centered_on_mass(small, spec.size)
    placed = placed.scaled(new_w / w, new_h / h).shifted(left_px, top_px)
    return PreparedImage(_to_uint8(pasted), placement=placed)




def _prepare_photo(image: Image.Image | np.ndarray, spec: InputSpec) -> PreparedImage:
    """Photos and scans: the document front end finds the digit, then MNIST normalization."""
    found = find_digit(image)
    if found.ink is None:
        return _blank(spec, NO_HANDWRITING)
    # The crop is the found region at the working copy's scale.
    (x0, y0, x1, y1), (ch, cw) = found.region, found.ink.shape
    placed = Placement.identity(*found.source_size).shifted(-x0, -y0)
    placed = placed.scaled(cw / max(x1 - x0, 1), ch / max(y1 - y0, 1))
    prepared = _normalize_ink(found.ink, spec, found.frame, placed)
    note = f"found {found.count} digits; classified the largest" if found.count > 1 else ""
    return replace(prepared, region=None if prepared.blank else found.region, note=note)


def _prepare_fit(gray: np.ndarray, spec: InputSpec) -> PreparedImage:
    """Fashion-MNIST style: object light on dark, trimmed and fitted into the square."""
    bg = float(np.median(_border(gray)))
    if bg > 0.5:
        gray, bg = 1.0 - gray, 1.0 - bg
    box = _bbox(np.abs(gray - bg) > 0.08)
    if box is None or float(gray.max() - gray.min()) < 0.05:
        return _blank(spec, "nothing to classify: the image is blank")
    y0, y1, x0, x1 = box
    crop = np.clip(gray[y0:y1, x0:x1] - bg, 0.0, 1.0) / max(1.0 - bg, 1e-6)
    h, w = crop.shape
    scale = spec.size / max(h, w)
    small = np.clip(_resize(crop, max(1, round(w * scale)), max(1, round(h * scale))), 0, 1)
    out = np.zeros((spec.size, spec.size), dtype=np.float32)
    sh, sw = small.shape
    top, left = (spec.size - sh) // 2, (spec.size - sw) // 2
    out[top : top + sh, left : left + sw] = small
    placed = Placement.identity(gray.shape[1], gray.shape[0]).shifted(-x0, -y0)
    placed = placed.scaled(sw / w, sh / h).shifted(left, top)
    return PreparedImage(_to_uint8(out), placement=placed)


def _model_channels(a: np.ndarray, channels: int) -> np.ndarray:
    """Float gray/RGB/RGBA -> the model's channels; transparent areas become white."""
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3:4]
        a = a[..., :3] * alpha + (1.0 - alpha)
    if channels == 1:
        return _flatten_alpha(a) if a.ndim == 3 else a
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
            return _as_float_image(a), 0.0
        h, w = a.shape[:2]
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        f = max(1, side // (2 * spec.size))
        square = _model_channels(_as_float_image(a[y0 : y0 + side, x0 : x0 + side]), spec.channels)
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


def _prepare_resize(image: Image.Image | np.ndarray, spec: InputSpec) -> PreparedImage:
    """Photos: the centre square, resized to `size`; gray or RGB as the spec says."""
    a, extent = _centre_square(image, spec)
    if a.ndim not in (2, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        return _blank(spec, "nothing to classify: the image has no pixels")
    if float(a.max() - a.min()) < 1.0 / 255:
        return _blank(spec, "nothing to classify: the image is a single flat colour")
    small = Image.fromarray(_to_uint8(a), mode="L" if a.ndim == 2 else "RGB")
    resized = small.resize(
        (spec.size, spec.size), Image.Resampling.BILINEAR, box=(0, 0, extent, extent), reducing_gap=2.0
    )
    # The centre square (side x side at x0, y0) becomes the input, whatever the averaging.
    w, h = image.size if isinstance(image, Image.Image) else np.asarray(image).shape[1::-1]
    side = min(w, h)
    placed = Placement.identity(w, h).shifted(-((w - side) // 2), -((h - side) // 2))
    placed = placed.scaled(spec.size / side, spec.size / side)
    return PreparedImage(np.ascontiguousarray(np.asarray(resized)), placement=placed)


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
        return _prepare_resize(image, spec)
    if spec.mode == "digit" and not clean and _has_pixels(image):
        prepared = _prepare_photo(_sanitized(image), spec)
        return _as_channels(prepared, spec)
    a = _as_float_image(image)
    if a.ndim not in (2, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        return _blank(spec, "nothing to classify: the image has no pixels")
    gray = _flatten_alpha(a)
    if spec.mode == "fit":
        prepared = _prepare_fit(gray, spec)
    else:
        prepared = _prepare_digit(gray, spec)
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
    a = _as_float_image(image)
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
