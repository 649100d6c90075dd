"""Pen strokes without Qt: reading, writing and rendering a canvas drawing.

A drawing is a list of strokes, each a list of (x, y) points in unit coordinates (0..1
of the paper's side, y down), plus the pen width as a fraction of the side: exactly what
the canvas (`app.gui.canvas.DrawingCanvas.strokes()` / `pen_width()`) keeps. `render()`
draws it the way the canvas's `render_array()` does (QPainter: a quadratic curve through
the midpoints of consecutive points, round caps and joins, antialiased, ink #111111 on
white), so a drawing saved as strokes re-renders to the same model input, here, in the
CLI or in a test, without a display.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.core import fields

Stroke = list[tuple[float, float]]
STROKES_FORMAT = 1
RENDER_SIZE = 280  # the canvas renders at this size for the model (gui settings.render_size)
DEFAULT_PEN_WIDTH = 0.09  # the canvas's default pen width (gui settings.pen_width)
PAPER = 255
INK = 0x11
MAX_STROKES = 1000
MAX_POINTS = 100_000
_CURVE_PX = 3.0  # a quadratic curve is drawn as line pieces of at most this many px


class StrokesError(ValueError):
    """Strokes data that cannot be used; str() says what is wrong."""


@dataclass(frozen=True)
class Drawing:
    """A canvas drawing: strokes in unit coordinates and the pen width (fraction of the side)."""

    strokes: tuple[tuple[tuple[float, float], ...], ...]
    pen_width: float = DEFAULT_PEN_WIDTH

    @classmethod
    def of(cls, strokes: Sequence[Sequence[Sequence[float]]], pen_width: float = DEFAULT_PEN_WIDTH) -> Drawing:
        """Checks and freezes strokes given as nested lists (the canvas's `strokes()`).

        Raises:
            StrokesError: no strokes, too many, a point that is not two finite numbers, or
                a pen width outside (0, 0.5].
        """
        if not (isinstance(pen_width, (int, float)) and math.isfinite(pen_width) and 0 < pen_width <= 0.5):
            raise StrokesError(f"pen width must be a fraction in (0, 0.5], not {pen_width!r}")
        if not isinstance(strokes, (list, tuple)) or not strokes:
            raise StrokesError("a drawing needs at least one stroke")
        if len(strokes) > MAX_STROKES:
            raise StrokesError(f"too many strokes ({len(strokes)}; at most {MAX_STROKES})")
        out = []
        total = 0
        for i, stroke in enumerate(strokes):
            if not isinstance(stroke, (list, tuple)) or not stroke:
                raise StrokesError(f"stroke {i + 1} has no points")
            total += len(stroke)
            if total > MAX_POINTS:
                raise StrokesError(f"too many points (more than {MAX_POINTS})")
            pts = []
            for p in stroke:
                if not (isinstance(p, (list, tuple)) and len(p) == 2 and all(fields.is_number(v) for v in p)):
                    raise StrokesError(f"stroke {i + 1}: a point must be two numbers, not {str(p)[:40]}")
                pts.append((min(max(float(p[0]), 0.0), 1.0), min(max(float(p[1]), 0.0), 1.0)))
            out.append(tuple(pts))
        return cls(tuple(out), float(pen_width))

    def to_json(self) -> str:
        return json.dumps(
            {"format": STROKES_FORMAT, "pen_width": self.pen_width,
             "strokes": [[[round(x, 5), round(y, 5)] for x, y in s] for s in self.strokes]}
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str | bytes) -> Drawing:
        """Raises StrokesError for anything but a strokes file this version reads."""
        try:
            d = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise StrokesError(f"not a strokes file (not JSON: {e})") from None
        if not isinstance(d, dict) or "strokes" not in d:
            raise StrokesError("not a strokes file (no 'strokes')")
        fmt = d.get("format", STROKES_FORMAT)
        if not isinstance(fmt, int) or fmt > STROKES_FORMAT:
            raise StrokesError(f"strokes format {fmt!r} is newer than this version reads")
        return cls.of(d["strokes"], d.get("pen_width", DEFAULT_PEN_WIDTH))


def _quad(p0: np.ndarray, c: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Points along a quadratic Bezier from p0 to p1 (control c), p0 excluded."""
    hull = float(np.hypot(*(c - p0)) + np.hypot(*(p1 - c)))  # >= the curve's length
    steps = max(2, int(math.ceil(hull / _CURVE_PX)))
    t = np.linspace(0.0, 1.0, steps + 1)[1:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p1


def polyline(stroke: Sequence[tuple[float, float]], side: float) -> np.ndarray:
    """The canvas's path through a stroke (`app.gui.canvas.stroke_path`) as a polyline in
    pixels of a `side`-px square: a straight line to the first midpoint, quadratic curves
    through each point to the next midpoint, a line to the last point."""
    pts = np.asarray(stroke, dtype=np.float64) * side
    if len(pts) <= 2:
        return pts
    out = [pts[:1]]
    start = pts[0]
    for i in range(1, len(pts) - 1):
        mid = (pts[i] + pts[i + 1]) / 2.0
        out.append(_quad(start, pts[i], mid))
        start = mid
    out.append(pts[-1:])
    return np.concatenate(out)


def _segment_distance(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    dd = float(d @ d)
    if dd < 1e-12:
        return np.hypot(px - a[0], py - a[1])
    t = np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / dd, 0.0, 1.0)
    return np.hypot(px - (a[0] + t * d[0]), py - (a[1] + t * d[1]))


def coverage(drawing: Drawing, size: int = RENDER_SIZE) -> np.ndarray:
    """Ink coverage in [0, 1], float32 (size, size): a round pen of the drawing's width
    swept along every path, antialiased over one pixel as QPainter does."""
    cov = np.zeros((size, size), dtype=np.float32)
    radius = max(1.0, drawing.pen_width * size) / 2.0
    reach = radius + 1.0
    for stroke in drawing.strokes:
        line = polyline(stroke, float(size))
        segments = zip(line[:-1], line[1:]) if len(line) > 1 else [(line[0], line[0])]
        for a, b in segments:
            x0 = max(int(math.floor(min(a[0], b[0]) - reach)), 0)
            x1 = min(int(math.ceil(max(a[0], b[0]) + reach)) + 1, size)
            y0 = max(int(math.floor(min(a[1], b[1]) - reach)), 0)
            y1 = min(int(math.ceil(max(a[1], b[1]) + reach)) + 1, size)
            if x0 >= x1 or y0 >= y1:
                continue
            px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5  # pixel centres
            py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
            dist = _segment_distance(px, py, a, b)
            ink = np.clip(radius + 0.5 - dist, 0.0, 1.0).astype(np.float32)
            np.maximum(cov[y0:y1, x0:x1], ink, out=cov[y0:y1, x0:x1])
    return cov


def render(drawing: Drawing, size: int = RENDER_SIZE) -> np.ndarray:
    """The drawing as the canvas renders it for the model: uint8 (size, size), dark ink
    on white paper. Feed it to `prepare(..., clean=True)` as the canvas does."""
    cov = coverage(drawing, size)
    return np.rint(PAPER - cov * (PAPER - INK)).astype(np.uint8)


def prepared_pixels(drawing: Drawing, spec=None) -> np.ndarray | None:
    """The model input (uint8, spec size) of a drawing, through the canvas's path
    (`prepare(render(...), clean=True)`); None when there is nothing to classify."""
    from app.core.models import MNIST_SPEC
    from app.core.preprocess import prepare

    prepared = prepare(render(drawing), spec or MNIST_SPEC, clean=True)
    return None if prepared.blank else prepared.pixels
