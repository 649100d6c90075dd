"""Synthetic outliers: images that belong to none of a model's classes, made from
nothing but random pen strokes, noise and the training images themselves.

Outlier exposure (Hendrycks, Mazeika & Dietterich 2019) trains a classifier to give a
flat (uniform) answer on such images, which teaches it what "none of these" looks like;
its confidence then separates real inputs from foreign ones far better than a
post-hoc score on a model that never saw one (bench/outlier_exposure.py). No outlier dataset
is needed: these are generated on the fly, for any class names.

Kinds (all passed through the app's own `prepare()` where the spec normalizes ink, so
they look exactly like what a user's image becomes):

- ``strokes``: one to four random smooth pen strokes (random control points).
- ``polygon``: one closed shape of 3-8 straight sides at random angles and radii,
  outlined (the pen) or filled with ink, half and half.
- ``glyph``: two or three pen primitives (straight segments, bent lines, arcs, small
  loops) at random places: made-up letters and symbols.
- ``blobs``: smooth random noise cut at a threshold: filled ink shapes.
- ``shuffled``: a training image cut into 2x2..4x4 tiles put back in a random order.
- ``overlay``: two training images of different classes on top of each other, shifted.
- ``letters``: for digit models only, letters and symbols of the Hershey vector fonts
  written with the canvas's pen (`app.core.glyph_outliers`), never a digit or a glyph
  that looks like one.

No outline font, no named shape and no photo is used: the tests draw those (DejaVu
letters, hand-made letter skeletons, shapes, clothing: tests/helpers/ood.py), so they
measure how the learnt "none of these" carries over to input it never saw. Some random drawings will look like a class now and then;
the real examples' own loss keeps those classes confident.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from app.core import glyph_outliers
from app.core.models import InputSpec
from app.core.preprocess import prepare

# Share of each kind. Pen drawings are the commonest foreign input a canvas sees; the
# others keep the model from learning "pen strokes = outlier" alone. Letters (digit models
# only) take 30%, the rest keep their ratios; without letters the rest are renormalized.
# Closed shapes passed most after letters were added (docs/calibration.md), so polygons
# take 15% (they took 8.4%), from the strokes and made-up glyphs.
MIX = {
    "strokes": 0.142, "polygon": 0.15, "glyph": 0.142, "blobs": 0.056, "shuffled": 0.105, "overlay": 0.105,
    "letters": 0.3,
}  # fmt: skip
KINDS = tuple(MIX)
_DRAWN = ("strokes", "polygon", "glyph", "blobs", "letters")  # need no training images (_DRAW)
_CANVAS = 96  # px: strokes and blobs are drawn at this size, then prepared


def _smooth_path(points: np.ndarray, per_segment: int = 10) -> list[tuple[float, float]]:
    """A Catmull-Rom curve through the points (ends repeated)."""
    if len(points) < 3:
        return [tuple(p) for p in points]
    p = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        seg = 0.5 * (
            2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3
        )
        out.extend(map(tuple, seg))
    out.append(tuple(points[-1]))
    return out


def _strokes(rng: np.random.Generator) -> np.ndarray:
    img = Image.new("L", (_CANVAS, _CANVAS), 0)
    draw = ImageDraw.Draw(img)
    pen = rng.uniform(3, 10)
    count = int(rng.integers(1, 5))
    for _ in range(count):
        # A lone stroke through 3-4 points is too often a 1, 2, 7 or 0: one stroke needs
        # at least 5 turns to be a scribble rather than a digit.
        pts = rng.uniform(8, _CANVAS - 8, (int(rng.integers(5 if count == 1 else 3, 9)), 2))
        path = _smooth_path(pts)
        draw.line(path, fill=255, width=round(pen), joint="curve")
        r = pen / 2
        for x, y in (path[0], path[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(img.filter(ImageFilter.GaussianBlur(0.8)))


def _pen(rng: np.random.Generator) -> tuple[Image.Image, ImageDraw.ImageDraw, float]:
    img = Image.new("L", (_CANVAS, _CANVAS), 0)
    return img, ImageDraw.Draw(img), float(rng.uniform(3, 10))


def _line(draw: ImageDraw.ImageDraw, pts, pen: float) -> None:
    pts = [tuple(map(float, p)) for p in pts]
    draw.line(pts, fill=255, width=round(pen), joint="curve")
    r = pen / 2
    for x, y in pts:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


def _polygon(rng: np.random.Generator) -> np.ndarray:
    img, draw, pen = _pen(rng)
    n = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.45, 1.0, n) * _CANVAS * 0.4
    c = _CANVAS / 2
    pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles) * rng.uniform(0.6, 1.4)], 1)
    if rng.random() < 0.5:
        draw.polygon([tuple(map(float, p)) for p in pts], fill=255, outline=255)
    else:
        _line(draw, np.concatenate([pts, pts[:1]]), pen)
    return np.asarray(img.filter(ImageFilter.GaussianBlur(0.8)))


def _glyph(rng: np.random.Generator) -> np.ndarray:
    img, draw, pen = _pen(rng)
    lo, hi = 0.1 * _CANVAS, 0.9 * _CANVAS
    for _ in range(int(rng.integers(2, 4))):
        kind = rng.choice(["segment", "bent", "arc", "loop"])
        if kind == "segment":
            _line(draw, rng.uniform(lo, hi, (2, 2)), pen)
        elif kind == "bent":
            _line(draw, rng.uniform(lo, hi, (int(rng.integers(3, 5)), 2)), pen)
        else:
            r = rng.uniform(0.08, 0.3 if kind == "arc" else 0.15) * _CANVAS
            cx, cy = rng.uniform(lo + r, hi - r, 2)
            a0 = rng.uniform(0, 2 * np.pi)
            span = rng.uniform(0.5, 1.7) * np.pi if kind == "arc" else 2 * np.pi
            t = np.linspace(a0, a0 + span, 24)
            squash = rng.uniform(0.6, 1.4)
            _line(draw, np.stack([cx + r * np.cos(t), cy + r * squash * np.sin(t)], 1), pen)
    return np.asarray(img.filter(ImageFilter.GaussianBlur(0.8)))


def _blobs(rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(3, 8))
    coarse = Image.fromarray(rng.uniform(0, 255, (k, k)).astype(np.uint8))
    field = np.asarray(coarse.resize((_CANVAS, _CANVAS), Image.Resampling.BICUBIC), dtype=np.float32)
    cut = np.quantile(field, rng.uniform(0.6, 0.9))
    return np.where(field > cut, 255, 0).astype(np.uint8)


def _shuffled(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    g = int(rng.integers(2, 5))
    ys, xs = np.linspace(0, h, g + 1).astype(int), np.linspace(0, w, g + 1).astype(int)
    tiles = [image[ys[i] : ys[i + 1], xs[j] : xs[j + 1]] for i in range(g) for j in range(g)]
    out = np.zeros_like(image)
    order = rng.permutation(len(tiles))
    for k, src in enumerate(order):
        i, j = divmod(k, g)
        tile = tiles[src]
        th, tw = min(tile.shape[0], ys[i + 1] - ys[i]), min(tile.shape[1], xs[j + 1] - xs[j])
        out[ys[i] : ys[i] + th, xs[j] : xs[j] + tw] = tile[:th, :tw]
    return out


def _overlay(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    dy, dx = (int(v) for v in rng.integers(-h // 4, h // 4 + 1, 2))
    return np.maximum(a, np.roll(np.roll(b, dy, 0), dx, 1))


# The drawn kinds: each takes the rng and gives a white-on-black uint8 drawing.
_DRAW = {
    "strokes": _strokes, "polygon": _polygon, "glyph": _glyph, "blobs": _blobs,
    "letters": lambda rng: glyph_outliers.letter_outlier(rng, _CANVAS),
}  # fmt: skip


def synthetic_outliers(
    n: int,
    spec: InputSpec,
    rng: np.random.Generator,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
) -> np.ndarray:
    """`n` outlier images shaped like the model's input, uint8 (n, C, H, W).

    Args:
        spec: the model's input spec; in "digit" mode every image goes through
            `prepare()` (crop, 20 px box, centre of mass) as a user's drawing would.
        rng: the only source of randomness (seeded by the caller: reproducible).
        images, labels: training images (N, C, H, W) uint8 and their classes, for the
            shuffled and overlaid kinds; without them only the drawn kinds are made.
        classes: the model's class names; letters are drawn only when they are the ten
            digits (`glyph_outliers.usable_for`).
    """
    kinds = list(MIX) if images is not None and len(images) > 1 else list(_DRAWN)
    if not glyph_outliers.usable_for(classes):
        kinds.remove("letters")
    weights = np.array([MIX[k] for k in kinds])
    picks = rng.choice(len(kinds), size=n, p=weights / weights.sum())
    c, size = spec.channels, spec.size
    out = np.zeros((n, c, size, size), dtype=np.uint8)
    for i, pick in enumerate(picks):
        kind = kinds[pick]
        if kind in _DRAWN:
            raw = _DRAW[kind](rng)
            if spec.mode != "digit":  # objects and photos: ink on a random mid-grey ground
                bg = rng.uniform(0, 0.6)
                raw = (bg * 255 + raw.astype(np.float32) * (1 - bg)).astype(np.uint8)
        else:
            assert images is not None
            a = int(rng.integers(len(images)))
            img_a = np.moveaxis(images[a], 0, -1)
            if kind == "shuffled":
                raw = _shuffled(img_a, rng)
            else:
                b = int(rng.integers(len(images)))
                if labels is not None:
                    for _ in range(8):  # another class: two of the same is just a bold one
                        if labels[b] != labels[a]:
                            break
                        b = int(rng.integers(len(images)))
                raw = _overlay(img_a, np.moveaxis(images[b], 0, -1), rng)
            raw = raw[..., 0] if raw.shape[-1] == 1 else raw
        if spec.mode == "digit":
            prepared = prepare(raw, spec)
            pixels = prepared.pixels if not prepared.blank else np.zeros((size, size), np.uint8)
        else:
            pixels = np.asarray(
                Image.fromarray(raw).resize((size, size), Image.Resampling.BILINEAR)
            ) if raw.shape[:2] != (size, size) else raw  # fmt: skip
            if c == 3 and pixels.ndim == 2:
                pixels = np.repeat(pixels[..., None], 3, axis=2)
            if c == 1 and pixels.ndim == 3:
                pixels = pixels.mean(2).astype(np.uint8)
        out[i] = pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
    return out

