"""Test images: digits drawn from the bundled pen strokes, and the MNIST files.

Rendering is deterministic (PIL line drawing), so a test that uses these images sees
the same pixels on every machine.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from app.core.resources import resource_path

REPO = Path(__file__).resolve().parents[2]
# RESNET_STUDIO_DATA (DIR/mnist, as the app reads it) lets a checkout elsewhere, e.g. a
# git worktree, find the shared files.
MNIST_DIR = (
    Path(os.environ["RESNET_STUDIO_DATA"]) / "mnist"
    if os.environ.get("RESNET_STUDIO_DATA")
    else REPO.parent / "shared" / "data" / "mnist"
)
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_MISSING = f"MNIST files not found at {MNIST_DIR} (../shared/data/mnist beside the repo)"
FASHION_MISSING = (
    f"Fashion-MNIST not installed at {FASHION_DIR} (apt package dataset-fashion-mnist)"
)


@cache
def digit_strokes() -> dict[str, list[list[tuple[float, float]]]]:
    """The pen strokes of the digits 0-9 in a unit box (x right, y down)."""
    data = json.loads(resource_path("samples", "digit_strokes.json").read_text())
    return {k: [[(float(x), float(y)) for x, y in s] for s in v] for k, v in data["digits"].items()}


def draw_digit(
    digit: str | int,
    size: int | tuple[int, int] = 280,
    *,
    pen: float | None = None,
    box: tuple[float, float, float, float] | None = None,
    ink: int | tuple[int, ...] = 0,
    paper: int | tuple[int, ...] | None = 255,
    mode: str = "L",
) -> Image.Image:
    """A digit drawn with a round pen.

    Args:
        size: canvas (w, h), or one number for a square.
        pen: pen width in px (default: 1/14 of the digit box height, about MNIST's ratio).
        box: where the unit box goes, (left, top, width, height) in px (default: the
            middle 70% of the canvas).
        ink, paper: colours in `mode`; paper None = transparent (mode must have alpha).
    """
    w, h = (size, size) if isinstance(size, int) else size
    if box is None:
        side = 0.7 * min(w, h)
        box = ((w - side) / 2, (h - side) / 2, side, side)
    left, top, bw, bh = box
    if pen is None:
        pen = max(1.0, bh / 14)
    if paper is None:
        paper = (0,) * len(mode)
    img = Image.new(mode, (w, h), paper)
    draw = ImageDraw.Draw(img)
    r = pen / 2
    for stroke in digit_strokes()[str(digit)]:
        pts = [(left + x * bw, top + y * bh) for x, y in stroke]
        draw.line(pts, fill=ink, width=max(1, round(pen)), joint="curve")
        for x, y in pts:  # round caps
            draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    return img


def ink_bbox(pixels: np.ndarray, threshold: int = 40) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) exclusive bounds of the pixels above `threshold`."""
    rows = np.flatnonzero((pixels > threshold).any(axis=1))
    cols = np.flatnonzero((pixels > threshold).any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    a = pixels.astype(np.float64)
    total = a.sum()
    rows, cols = np.indices(a.shape)
    return float((rows * a).sum() / total), float((cols * a).sum() / total)


def similarity(a: np.ndarray, b: np.ndarray, max_shift: int = 2) -> float:
    """Correlation of two 28x28 images, forgiving a shift of a pixel or two (a digit
    centred one pixel lower is the same digit to a person and to the model)."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    best = -1.0
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            s = np.roll(np.roll(b, dy, axis=0), dx, axis=1)
            if a.std() == 0 or s.std() == 0:
                continue
            best = max(best, float(np.corrcoef(a.ravel(), s.ravel())[0, 1]))
    return best


def save_with_exif_orientation(img: Image.Image, path: Path, orientation: int) -> None:
    """Writes a JPEG whose EXIF orientation tag says how to turn it for display."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, quality=95, exif=exif.tobytes())
