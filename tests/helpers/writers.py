"""Seeded synthetic writers: people whose digits an MNIST model misreads, drawn as pen
strokes (what the canvas records), so they go through the app's own drawing path
(`app.core.strokes`).

Each writer has habits: a heavy slant, sevens crossed in the middle, European ones (a
long up-stroke that looks like a 7 without its bar), fours with a closed top, zeros with
a slash, nines with a straight stem. Every drawing varies: the points wobble, the digit
is rotated, scaled and stretched a little, the pen width changes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from app.core.strokes import Drawing, prepared_pixels
from tests.helpers.digits import digit_strokes

Point = tuple[float, float]
Strokes = list[list[Point]]

# Habits, in the unit box (x right, y down); a point listed twice is a sharp corner.
SLASHED_ZERO: Strokes = [
    [(0.5, 0.08), (0.3, 0.2), (0.24, 0.5), (0.3, 0.8), (0.5, 0.92), (0.7, 0.8), (0.76, 0.5), (0.7, 0.2),
     (0.5, 0.08)],
    [(0.74, 0.12), (0.26, 0.88)],
]  # fmt: skip
EUROPEAN_ONE: Strokes = [[(-0.2, 0.5), (0.2, 0.28), (0.62, 0.06), (0.62, 0.06), (0.62, 0.94)]]
CROSSED_SEVEN: Strokes = [
    [(0.2, 0.14), (0.8, 0.1), (0.8, 0.1), (0.56, 0.5), (0.42, 0.92)],
    [(0.34, 0.52), (0.8, 0.5)],
]
CLOSED_FOUR: Strokes = [[(0.62, 0.94), (0.62, 0.06), (0.62, 0.06), (0.18, 0.64), (0.18, 0.64), (0.84, 0.64)]]
STRAIGHT_NINE: Strokes = [
    [(0.7, 0.26), (0.52, 0.08), (0.32, 0.16), (0.3, 0.38), (0.5, 0.48), (0.7, 0.34), (0.7, 0.26),
     (0.7, 0.26), (0.7, 0.94)],
]  # fmt: skip
HABITS: dict[str, dict[str, Strokes]] = {
    "slashed 0": {"0": SLASHED_ZERO},
    "European 1": {"1": EUROPEAN_ONE},
    "crossed 7": {"7": CROSSED_SEVEN},
    "closed 4": {"4": CLOSED_FOUR},
    "straight 9": {"9": STRAIGHT_NINE},
}
# A plus sign, a new symbol to teach (two crossing strokes).
PLUS: Strokes = [[(0.5, 0.12), (0.5, 0.88)], [(0.12, 0.5), (0.88, 0.5)]]


@dataclass(frozen=True)
class Writer:
    """A person's way of writing: habits (see HABITS), a slant (x shift per unit of
    height, + leans right) and how much their drawings vary."""

    name: str
    habits: tuple[str, ...] = ()
    slant: float = 0.0
    tilt: float = 0.0  # degrees the whole digit is turned (+ clockwise on screen)
    aspect: float = 1.0  # width / height of their digits, relative to the templates
    wobble: float = 0.018  # point jitter, units of the box
    glyphs: dict[str, Strokes] = field(default_factory=dict)  # extra symbols, e.g. "+"

    def template(self, label: str) -> Strokes:
        if label in self.glyphs:
            return self.glyphs[label]
        for habit in self.habits:
            if label in HABITS[habit]:
                return HABITS[habit][label]
        return digit_strokes()[label]

    def drawing(self, label: str, rng: random.Random) -> Drawing:
        """One drawing of `label`, varied by `rng`."""
        angle = math.radians(self.tilt + rng.uniform(-6, 6))
        sy = rng.uniform(0.8, 1.0)
        sx = sy * rng.uniform(0.9, 1.1) * self.aspect
        slant = self.slant + rng.uniform(-0.06, 0.06)
        cx, cy = 0.5 + rng.uniform(-0.06, 0.06), 0.5 + rng.uniform(-0.06, 0.06)
        cos, sin = math.cos(angle), math.sin(angle)
        strokes = []
        for stroke in self.template(label):
            pts = []
            for x, y in stroke:
                x, y = x + rng.gauss(0, self.wobble), y + rng.gauss(0, self.wobble)
                x, y = (x - 0.5) * sx, (y - 0.5) * sy
                x += slant * -y
                x, y = x * cos - y * sin, x * sin + y * cos
                pts.append((cx + x, cy + y))
            strokes.append(pts)
        return Drawing.of(strokes, rng.uniform(0.07, 0.11))

    def pixels(self, labels: list[str], seed: int) -> np.ndarray:
        """Model inputs (N, 28, 28) uint8 of one drawing per label, the canvas's way."""
        rng = random.Random(f"{self.name}:{seed}")
        out = []
        for label in labels:
            px = None
            while px is None:  # a drawing is never blank, but be sure
                px = prepared_pixels(self.drawing(label, rng))
            out.append(px)
        return np.stack(out)


WRITERS = {
    "slanted": Writer("slanted", slant=0.55),
    "crossed 7s": Writer("crossed 7s", ("crossed 7", "slashed 0")),
    "European 1s": Writer("European 1s", ("European 1", "crossed 7")),
    "closed 4s": Writer("closed 4s", ("closed 4", "straight 9")),
    # A narrow hand leaning hard, with European 1s: the shipped model reads ~60% of it
    # (1s as 7s; 2s, 4s and 7s too).
    "continental": Writer("continental", ("European 1",), slant=0.6, tilt=8, aspect=0.45),
}
