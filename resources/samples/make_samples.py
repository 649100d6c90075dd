"""Renders the sample digit images `digit_<d>.png` from `digit_strokes.json`.

    python resources/samples/make_samples.py

(The phone photos `photo_<d>.jpg` beside them come from the test set's generator:
`python -m tests.helpers.photo_sheet --seed 5 --sample ruled 7 resources/samples/photo_7.jpg`
and `... --sample phone 4 resources/samples/photo_4.jpg`.)

The strokes are a person's pen path in a unit box (x right, y down). Each sample is drawn
the way a pen on paper would draw it: the path is smoothed with a centripetal
Catmull-Rom spline, stamped with a round nib whose width swells and thins a little, in
dark ink on off-white paper, 4x supersampled for antialiasing. Every digit gets its own
slight slant, rotation, wobble and image size, from a fixed seed: the output is the same
on every run (bump SEED to get a different, equally valid set).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SEED = 2024
SUPERSAMPLE = 4
PAPER = (250, 248, 242)
INK = (28, 32, 52)

Point = tuple[float, float]


def catmull_rom(points: list[Point], step: float) -> list[Point]:
    """A smooth curve through `points` (centripetal Catmull-Rom, alpha 0.5), sampled
    every `step` units or closer; the ends are extended by mirroring."""
    pts = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    if len(pts) < 2:
        return pts
    first = (2 * pts[0][0] - pts[1][0], 2 * pts[0][1] - pts[1][1])
    last = (2 * pts[-1][0] - pts[-2][0], 2 * pts[-1][1] - pts[-2][1])
    ext = [first, *pts, last]
    out: list[Point] = [pts[0]]
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]

        def knot(t: float, a: Point, b: Point) -> float:
            return t + max(math.dist(a, b), 1e-9) ** 0.5

        t0 = 0.0
        t1 = knot(t0, p0, p1)
        t2 = knot(t1, p1, p2)
        t3 = knot(t2, p2, p3)
        n = max(2, math.ceil(math.dist(p1, p2) / step))
        for k in range(1, n + 1):
            t = t1 + (t2 - t1) * k / n
            a1 = _lerp(p0, p1, (t - t0) / (t1 - t0))
            a2 = _lerp(p1, p2, (t - t1) / (t2 - t1))
            a3 = _lerp(p2, p3, (t - t2) / (t3 - t2))
            b1 = _lerp(a1, a2, (t - t0) / (t2 - t0))
            b2 = _lerp(a2, a3, (t - t1) / (t3 - t1))
            out.append(_lerp(b1, b2, (t - t1) / (t2 - t1)))
    return out


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def render_digit(strokes: list[list[Point]], rng: random.Random) -> Image.Image:
    """One hand-drawn-looking image of a digit given by its pen strokes."""
    w, h = rng.randint(200, 400), rng.randint(200, 400)
    s = SUPERSAMPLE
    digit_h = min(w, h) * rng.uniform(0.58, 0.72)
    cx, cy = w * rng.uniform(0.45, 0.55), h * rng.uniform(0.45, 0.55)
    rot = math.radians(rng.uniform(-6, 6))
    slant = math.tan(math.radians(rng.uniform(-4, 12)))  # most writers lean right
    squash = rng.uniform(0.85, 1.1)  # width relative to height
    pen = digit_h * rng.uniform(0.075, 0.10)
    wobble = [(rng.uniform(0, math.tau), rng.uniform(0.004, 0.010)) for _ in range(2)]

    def place(x: float, y: float) -> Point:
        # Hand tremor: a slow, small displacement along the unit box.
        x += wobble[0][1] * math.sin(7 * y + wobble[0][0])
        y += wobble[1][1] * math.sin(7 * x + wobble[1][0])
        u, v = (x - 0.5) * squash - (y - 0.5) * slant, y - 0.5
        u, v = u * math.cos(rot) - v * math.sin(rot), u * math.sin(rot) + v * math.cos(rot)
        return ((cx + u * digit_h) * s, (cy + v * digit_h) * s)

    img = Image.new("RGB", (w * s, h * s), PAPER)
    draw = ImageDraw.Draw(img)
    for stroke in strokes:
        path = catmull_rom([place(x, y) for x, y in stroke], step=pen * s / 6)
        phase = rng.uniform(0, math.tau)
        total = len(path)
        for i, (x, y) in enumerate(path):
            # Pressure: a little lighter where the pen lands and lifts, and a slow swell.
            ramp = min(1.0, (i + 1) / (0.08 * total + 1), (total - i) / (0.08 * total + 1))
            r = pen * s / 2 * (0.8 + 0.2 * ramp) * (1 + 0.08 * math.sin(phase + i / total * 5))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=INK)
    img = img.filter(ImageFilter.GaussianBlur(s * 0.35))  # soft ink edge
    return img.resize((w, h), Image.Resampling.LANCZOS)


def main() -> None:
    data = json.loads((HERE / "digit_strokes.json").read_text(encoding="utf-8"))
    for digit, strokes in sorted(data["digits"].items()):
        rng = random.Random(f"{SEED}-{digit}")
        img = render_digit([[(float(x), float(y)) for x, y in s] for s in strokes], rng)
        out = HERE / f"digit_{digit}.png"
        img.save(out, optimize=True)
        print(f"{out.name}: {img.width}x{img.height}")


if __name__ == "__main__":
    main()
