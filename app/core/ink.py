"""The MNIST normalization of a digit's ink (LeCun et al.), and fit mode for
Fashion-MNIST style objects.

Digits are normalized the way MNIST was made: ink on a dark background, cropped to its
bounding box, the longest side scaled to 20 px with antialiasing, pasted into 28x28 with
the centre of mass at the centre. Extra care makes real-world input look like that: the
polarity detected, the contrast stretched, and strokes that would vanish when shrunk (a
thin pen on a big image) are thickened first.
"""

from __future__ import annotations

import numpy as np

from app.core.models import InputSpec
from app.core.placement import Placement
from app.core.prepared import PreparedImage, blank_image, resize_float, to_uint8

# --- digit normalization constants (measured on the 5k MNIST training digits) -----------
DIGIT_BOX = 20  # MNIST: the longest side of the ink's bounding box is 20 px
STROKE_TARGET = 2.8  # median stroke width of MNIST digits at 28x28 scale, px (2*area/perimeter)
COM_TARGET = (14.0, 14.0)  # where MNIST puts the ink's centre of mass (row, col), 0-based
MIN_CONTRAST = 0.2  # ink must differ from the paper by this much of the full range
MIN_INK_EXTENT = 3  # px in the source; a smaller blob is noise, not a digit
DOT_MAX_FRACTION = 0.15  # a blob (no strokes) smaller than this share of the image is a dot
WORK_SIZE = 320  # huge crops are first box-filtered to this size (speed, and no aliasing)


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


def prepare_digit(gray: np.ndarray, spec: InputSpec, placed: Placement | None = None) -> PreparedImage:
    """The clean path (canvas drawings): polarity, contrast and a noise floor, then the
    MNIST normalization. `placed`: the map from the source image to `gray` (default: it
    is the source)."""
    x, contrast, sigma = _ink_on_dark(gray)
    if contrast < max(MIN_CONTRAST, 6.0 * sigma):
        return blank_image(spec, "nothing to classify: the image is blank")
    # A floor above the paper's noise removes texture and JPEG/sensor noise, which would
    # otherwise average into a grey haze when the image is shrunk.
    floor = min(0.6, max(0.15, 3.0 * sigma / contrast))
    x = np.clip((x - floor) / (1.0 - floor), 0.0, 1.0)
    placed = placed or Placement.identity(gray.shape[1], gray.shape[0])
    return normalize_ink(x, spec, max(gray.shape), placed)


def normalize_ink(x: np.ndarray, spec: InputSpec, frame: int, placed: Placement) -> PreparedImage:
    """Ink bright on dark, in [0, 1] -> the MNIST picture: bounding box, 20 px box,
    centre of mass. `frame`: the long side of the image the ink came from (px of x);
    `placed`: the map from the source image to x's pixels."""
    box = _bbox(x > 0.35)
    if box is None:
        return blank_image(spec, "nothing to classify: the image is blank")
    y0, y1, x0, x1 = box
    extent = max(y1 - y0, x1 - x0)
    if extent < MIN_INK_EXTENT:
        return blank_image(spec, "nothing to classify: only a speck of ink")
    crop = x[y0:y1, x0:x1]
    placed = placed.shifted(-x0, -y0)
    # A lone dot (a tap on the canvas, a speck of dirt) has no strokes: it is about twice
    # as long as it is wide, where a digit is several stroke widths long. Scaled up to the
    # 20 px box it would look like a bold 0. Big filled shapes are left to the model.
    if extent < DOT_MAX_FRACTION * frame and extent < 3 * stroke_width(crop > 0.35):
        return blank_image(spec, "nothing to classify: only a dot")
    h, w = crop.shape
    if max(h, w) > WORK_SIZE:  # box-filter huge crops first; re-stretch thin faint strokes
        f = WORK_SIZE / max(h, w)
        crop = resize_float(crop, max(1, round(w * f)), max(1, round(h * f)))
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
    small = np.clip(resize_float(crop, new_w, new_h), 0.0, 1.0)
    top = float(small.max())
    if top <= 0:
        return blank_image(spec, "nothing to classify: the image is blank")
    small /= top  # MNIST strokes reach full intensity
    pasted, top_px, left_px = _paste_centered_on_mass(small, spec.size)
    placed = placed.scaled(new_w / w, new_h / h).shifted(left_px, top_px)
    return PreparedImage(to_uint8(pasted), placement=placed)


def prepare_fit(gray: np.ndarray, spec: InputSpec, placed: Placement | None = None) -> PreparedImage:
    """Fashion-MNIST style: object light on dark, trimmed and fitted into the square.
    `placed`: the map from the source image to `gray` (default: it is the source)."""
    bg = float(np.median(_border(gray)))
    if bg > 0.5:
        gray, bg = 1.0 - gray, 1.0 - bg
    box = _bbox(np.abs(gray - bg) > 0.08)
    if box is None or float(gray.max() - gray.min()) < 0.05:
        return blank_image(spec, "nothing to classify: the image is blank")
    y0, y1, x0, x1 = box
    crop = np.clip(gray[y0:y1, x0:x1] - bg, 0.0, 1.0) / max(1.0 - bg, 1e-6)
    h, w = crop.shape
    scale = spec.size / max(h, w)
    small = np.clip(resize_float(crop, max(1, round(w * scale)), max(1, round(h * scale))), 0, 1)
    out = np.zeros((spec.size, spec.size), dtype=np.float32)
    sh, sw = small.shape
    top, left = (spec.size - sh) // 2, (spec.size - sw) // 2
    out[top : top + sh, left : left + sw] = small
    placed = (placed or Placement.identity(gray.shape[1], gray.shape[0])).shifted(-x0, -y0)
    placed = placed.scaled(sw / w, sh / h).shifted(left, top)
    return PreparedImage(to_uint8(out), placement=placed)
