"""Handwritten digits as ink coverage masks, from many writers.

Three sources of handwriting, so that a test set is not one person's hand:

- the pen strokes bundled with the app (resources/samples/digit_strokes.json);
- `STYLES` below: more ways people write each digit (open and closed 4, crossed 7,
  flat-topped 3, curly 2, a 9 with a straight stem, ...);
- real MNIST digits (`mnist_ink`), upsampled smoothly into a pen-like mask.

Every rendering is varied from a seeded `random.Random`: slant, rotation, proportions,
tremor, pen width and pressure. A mask is float32 coverage in [0, 1] (1 = full ink), with
no colour and no paper: `tests.helpers.photos` puts it on a page.
"""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from tests.helpers.digits import digit_strokes

Point = tuple[float, float]
SUPERSAMPLE = 3

# More styles per digit, in the unit box (x right, y down). A point listed twice in a row
# is a sharp corner (the pen turns there); elsewhere the path is a smooth spline.
STYLES: dict[str, list[list[list[Point]]]] = {
    "0": [
        [[(0.62, 0.12), (0.45, 0.1), (0.3, 0.25), (0.24, 0.5), (0.3, 0.78), (0.48, 0.9), (0.66, 0.8),
          (0.74, 0.52), (0.7, 0.25), (0.58, 0.1), (0.48, 0.12)]],
        [[(0.5, 0.08), (0.33, 0.18), (0.28, 0.5), (0.36, 0.85), (0.52, 0.92), (0.66, 0.8), (0.72, 0.48),
          (0.64, 0.16), (0.5, 0.08), (0.42, 0.14)]],
    ],
    "1": [
        [[(0.5, 0.08), (0.5, 0.92)]],
        [[(0.36, 0.24), (0.56, 0.08), (0.56, 0.08), (0.5, 0.92)]],
        [[(0.42, 0.2), (0.6, 0.06), (0.6, 0.06), (0.56, 0.5), (0.52, 0.93)]],
    ],
    "2": [
        [[(0.26, 0.3), (0.4, 0.12), (0.6, 0.1), (0.72, 0.25), (0.66, 0.45), (0.45, 0.68), (0.25, 0.9),
          (0.25, 0.9), (0.78, 0.88)]],
        [[(0.24, 0.22), (0.45, 0.08), (0.68, 0.14), (0.7, 0.34), (0.5, 0.6), (0.26, 0.86), (0.3, 0.74),
          (0.44, 0.8), (0.6, 0.9), (0.8, 0.86)]],
        [[(0.3, 0.2), (0.5, 0.08), (0.7, 0.2), (0.62, 0.42), (0.24, 0.92), (0.24, 0.92), (0.82, 0.92)]],
    ],
    "3": [
        [[(0.26, 0.1), (0.74, 0.1), (0.74, 0.1), (0.46, 0.42), (0.66, 0.46), (0.76, 0.68), (0.6, 0.9),
          (0.4, 0.92), (0.24, 0.8)]],
        [[(0.28, 0.2), (0.45, 0.08), (0.66, 0.14), (0.66, 0.34), (0.44, 0.48), (0.44, 0.48), (0.68, 0.56),
          (0.74, 0.76), (0.56, 0.92), (0.3, 0.86)]],
    ],
    "4": [
        [[(0.3, 0.08), (0.24, 0.56), (0.24, 0.56), (0.78, 0.56)], [(0.64, 0.1), (0.62, 0.92)]],
        [[(0.64, 0.92), (0.64, 0.08), (0.64, 0.08), (0.2, 0.64), (0.2, 0.64), (0.82, 0.64)]],
        [[(0.28, 0.1), (0.28, 0.5), (0.28, 0.5), (0.7, 0.5)], [(0.66, 0.12), (0.68, 0.92)]],
    ],
    "5": [
        [[(0.32, 0.1), (0.28, 0.46), (0.28, 0.46), (0.5, 0.38), (0.7, 0.5), (0.72, 0.72), (0.54, 0.9),
          (0.26, 0.86)], [(0.32, 0.1), (0.74, 0.1)]],
        [[(0.74, 0.08), (0.36, 0.1), (0.36, 0.1), (0.32, 0.44), (0.52, 0.42), (0.7, 0.58), (0.66, 0.82),
          (0.44, 0.92), (0.26, 0.82)]],
    ],
    "6": [
        [[(0.64, 0.08), (0.42, 0.26), (0.3, 0.55), (0.34, 0.82), (0.52, 0.92), (0.68, 0.78), (0.64, 0.6),
          (0.46, 0.54), (0.32, 0.64)]],
        [[(0.7, 0.14), (0.52, 0.08), (0.34, 0.22), (0.26, 0.55), (0.34, 0.86), (0.56, 0.9), (0.72, 0.72),
          (0.6, 0.52), (0.38, 0.56), (0.3, 0.7)]],
    ],
    "7": [
        [[(0.24, 0.12), (0.76, 0.12), (0.76, 0.12), (0.46, 0.92)], [(0.38, 0.5), (0.74, 0.5)]],
        [[(0.24, 0.16), (0.78, 0.1), (0.78, 0.1), (0.6, 0.42), (0.52, 0.7), (0.5, 0.92)]],
        [[(0.24, 0.1), (0.24, 0.2), (0.24, 0.2), (0.74, 0.12), (0.74, 0.12), (0.42, 0.92)]],
    ],
    "8": [
        [[(0.5, 0.48), (0.32, 0.34), (0.34, 0.14), (0.5, 0.08), (0.66, 0.14), (0.66, 0.34), (0.5, 0.48),
          (0.3, 0.64), (0.3, 0.84), (0.5, 0.92), (0.7, 0.84), (0.7, 0.64), (0.5, 0.48)]],
        [[(0.66, 0.18), (0.5, 0.08), (0.32, 0.18), (0.4, 0.38), (0.64, 0.56), (0.7, 0.8), (0.5, 0.93),
          (0.3, 0.8), (0.36, 0.58), (0.6, 0.4), (0.7, 0.24), (0.66, 0.18)]],
    ],
    "9": [
        [[(0.68, 0.24), (0.52, 0.1), (0.34, 0.18), (0.32, 0.38), (0.5, 0.46), (0.68, 0.34), (0.68, 0.24),
          (0.68, 0.24), (0.66, 0.92)]],
        [[(0.7, 0.3), (0.6, 0.1), (0.38, 0.12), (0.3, 0.32), (0.44, 0.48), (0.66, 0.4), (0.7, 0.3),
          (0.66, 0.62), (0.54, 0.86), (0.36, 0.92)]],
    ],
}  # fmt: skip


def all_styles(digit: int | str) -> list[list[list[Point]]]:
    """The bundled style of `digit` first, then the styles above."""
    return [digit_strokes()[str(digit)], *STYLES[str(digit)]]


def _spline(points: list[Point], step: float) -> list[Point]:
    """Centripetal Catmull-Rom through `points`, sampled about every `step` units."""
    pts = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    if len(pts) < 2:
        return pts
    ext = [
        (2 * pts[0][0] - pts[1][0], 2 * pts[0][1] - pts[1][1]),
        *pts,
        (2 * pts[-1][0] - pts[-2][0], 2 * pts[-1][1] - pts[-2][1]),
    ]
    out = [pts[0]]
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1 : i + 3]
        t1 = math.dist(p0, p1) ** 0.5 + 1e-9
        t2 = t1 + math.dist(p1, p2) ** 0.5 + 1e-9
        t3 = t2 + math.dist(p2, p3) ** 0.5 + 1e-9
        n = max(2, math.ceil(math.dist(p1, p2) / step))
        for k in range(1, n + 1):
            t = t1 + (t2 - t1) * k / n
            a1 = _mix(p0, p1, t / t1)
            a2 = _mix(p1, p2, (t - t1) / (t2 - t1))
            a3 = _mix(p2, p3, (t - t2) / (t3 - t2))
            b1 = _mix(a1, a2, t / t2)
            b2 = _mix(a2, a3, (t - t1) / (t3 - t1))
            out.append(_mix(b1, b2, (t - t1) / (t2 - t1)))
    return out


def _mix(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def _pen_path(stroke: list[Point], step: float) -> list[Point]:
    """Splits the stroke at corners (a repeated point) and splines each piece."""
    pieces: list[list[Point]] = [[stroke[0]]]
    for prev, p in zip(stroke, stroke[1:]):
        if p == prev:
            pieces.append([p])
        else:
            pieces[-1].append(p)
    out: list[Point] = []
    for piece in pieces:
        path = _spline(piece, step) if len(piece) > 2 else _line(piece, step)
        out.extend(path if not out else path[1:])
    return out


def _line(piece: list[Point], step: float) -> list[Point]:
    if len(piece) < 2:
        return piece
    a, b = piece
    n = max(2, math.ceil(math.dist(a, b) / step))
    return [_mix(a, b, k / n) for k in range(n + 1)]


def stroke_ink(
    strokes: list[list[Point]],
    rng: random.Random,
    height: float,
    pen: float,
    pressure: float = 0.25,
) -> np.ndarray:
    """Renders pen strokes as a coverage mask.

    Args:
        strokes: the digit's pen path in the unit box.
        height: digit height in px (the unit box's height).
        pen: pen width in px at full pressure.
        pressure: how much the pen width swells and thins along a stroke (0..0.5).
    """
    s = SUPERSAMPLE
    slant = math.tan(math.radians(rng.uniform(-14, 24)))
    rot = math.radians(rng.uniform(-10, 10))
    squash = rng.uniform(0.72, 1.2)
    jitter = rng.uniform(0.0, 0.035)
    wobble = [(rng.uniform(0, math.tau), rng.uniform(0.0, 0.02), rng.uniform(4, 9)) for _ in range(2)]

    def place(x: float, y: float) -> Point:
        x += wobble[0][1] * math.sin(wobble[0][2] * y + wobble[0][0])
        y += wobble[1][1] * math.sin(wobble[1][2] * x + wobble[1][0])
        u, v = (x - 0.5) * squash - (y - 0.5) * slant, y - 0.5
        return (u * math.cos(rot) - v * math.sin(rot), u * math.sin(rot) + v * math.cos(rot))

    paths = []
    for stroke in strokes:
        moved = [(x + rng.uniform(-jitter, jitter), y + rng.uniform(-jitter, jitter)) for x, y in stroke]
        # Corners stay corners: the same jitter for a repeated point.
        moved = [moved[i - 1] if i and stroke[i] == stroke[i - 1] else p for i, p in enumerate(moved)]
        # Stamps at most a third of a pen width apart: a continuous stroke.
        step = min(0.01, 0.3 * pen / height)
        paths.append([place(x, y) for x, y in _pen_path(moved, step)])
    pts = np.array([p for path in paths for p in path])
    pad = pen * 2 + 2
    x0, y0 = pts.min(axis=0) * height - pad
    x1, y1 = pts.max(axis=0) * height + pad
    w, h = max(1, math.ceil(x1 - x0)), max(1, math.ceil(y1 - y0))
    img = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(img)
    for path in paths:
        phase, total = rng.uniform(0, math.tau), len(path)
        for i, (x, y) in enumerate(path):
            ramp = min(1.0, (i + 1) / (0.1 * total + 1), (total - i) / (0.1 * total + 1))
            r = pen * s / 2 * (1 - pressure * (1 - ramp)) * (1 + pressure * 0.5 * math.sin(phase + 6 * i / total))
            cx, cy = (x * height - x0) * s, (y * height - y0) * s
            r = max(r, 0.5)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    img = img.resize((w, h), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32) / 255.0


def mnist_ink(digit28: np.ndarray, rng: random.Random, height: float, thin: float = 0.0) -> np.ndarray:
    """A real MNIST digit upsampled smoothly into a pen-like mask `height` px tall.

    thin: 0 keeps MNIST's stroke width (about 1/7 of the height); up to 1 thins the
    strokes toward a fine pen by cutting the soft stroke profile higher up.
    """
    a = np.asarray(digit28, dtype=np.float32) / 255.0
    rows, cols = np.flatnonzero(a.max(axis=1) > 0.1), np.flatnonzero(a.max(axis=0) > 0.1)
    a = np.pad(a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], 2)
    scale = height / max(1, rows[-1] - rows[0] + 1)
    w, h = max(2, round(a.shape[1] * scale)), max(2, round(a.shape[0] * scale))
    img = Image.fromarray(a, mode="F").resize((w, h), Image.Resampling.BICUBIC)
    img = Image.fromarray(ndi.gaussian_filter(np.asarray(img), scale * 0.45))  # round off the 28 px blocks
    shear = math.tan(math.radians(rng.uniform(-8, 8)))
    img = img.transform(img.size, Image.Transform.AFFINE, (1, shear, -shear * h / 2, 0, 1, 0),
                        Image.Resampling.BILINEAR)  # fmt: skip
    v = np.array(img, dtype=np.float32)
    v /= max(float(v.max()), 1e-6)
    cut = 0.35 + 0.2 * thin  # where the soft edge becomes paper
    soft = max(0.04, 0.5 / scale)  # an antialiased edge about one pixel wide
    return np.clip((v - cut) / soft + 0.5, 0.0, 1.0).astype(np.float32)


def random_digit_ink(
    digit: int,
    rng: random.Random,
    height: float,
    pen_ratio: tuple[float, float],
    mnist: tuple[np.ndarray, np.ndarray] | None = None,
    index: int = 0,
) -> tuple[np.ndarray, str]:
    """Ink of `digit` from one of the writers: (mask, writer name).

    With `mnist` = (images, labels), every other call (by `index`) draws a real MNIST
    digit of that class; otherwise a stroke style, chosen at random.
    """
    pen = max(1.0, height * rng.uniform(*pen_ratio))
    if mnist is not None and index % 2 == 1:
        images, labels = mnist
        choices = np.flatnonzero(labels == digit)
        k = int(choices[rng.randrange(len(choices))])
        thin = float(np.clip(1.0 - (pen / height - 0.03) / 0.09, 0.0, 1.0))
        return mnist_ink(images[k], rng, height, thin), f"mnist#{k}"
    styles = all_styles(digit)
    i = rng.randrange(len(styles))
    return stroke_ink(styles[i], rng, height, pen, rng.uniform(0.05, 0.4)), f"style{i}"
