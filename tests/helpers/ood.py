"""A seeded set of images that are not digits, for testing "this does not look like a ...".

Families (each image is drawn the way a user would hand it to the app: dark ink on light
paper at a few hundred pixels, or a Fashion-MNIST item as a small image, then sent
through the app's own `prepare()`):

- ``font_letters``: Latin and Greek letters in the installed DejaVu fonts (8 styles).
- ``stroke_letters``: capital and small letters drawn as a hand would: pen strokes with
  jitter, slant, rotation, and a round nib.
- ``symbols``: typographic symbols in the fonts (@ # % & + = ? * < > { } and more).
- ``scribbles``: random smooth pen paths with many turns, one to three strokes, and
  tangles of loops.
- ``shapes``: squares, rectangles, triangles, stars, arrows, crosses, hearts, diamonds,
  hexagons, spirals, checkmarks, smileys, houses; outlined or filled; hand-jittered.
- ``fashion``: Fashion-MNIST test items (either polarity).
- ``noise``: random pixels, blurry blobs, stripes, checkerboards, speckled paper.

Look-alikes. Some non-digits honestly look like a digit after the MNIST normalization:
O/o/D/Q and a drawn circle or ellipse (0); I/l/i/j, | / \\ ( ) [ ] ! (1); Z/z (2);
S/s (5); b/G (6); B (8); a/g/q (9). A person might call those digits too, so an image of
one carries `lookalike` = the digit and is reported separately, never counted for or
against the >= 90% target. The list is fixed by shape, before any model saw the images.

Everything comes from `numpy.random.default_rng(seed)` and PIL drawing: the same seed
gives the same pixels on every machine (fonts permitting: a family whose fonts are
missing is left out, see `missing_families`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from app.core.preprocess import prepare
from tests.helpers.digits import FASHION_DIR

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-ExtraLight.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansCondensed-Bold.ttf",
)  # fmt: skip
FAMILIES = ("font_letters", "stroke_letters", "symbols", "scribbles", "shapes", "fashion", "noise")

# Shapes that a person could read as a digit once normalized (see the module docstring).
LOOKALIKES: dict[str, str] = {
    **dict.fromkeys("OoDQ", "0"), **dict.fromkeys("Ilij|/\\()[]!", "1"),
    **dict.fromkeys("Zz", "2"), **dict.fromkeys("Ss", "5"), **dict.fromkeys("bG", "6"),
    "B": "8", **dict.fromkeys("agq", "9"), "circle": "0", "ellipse": "0",
}  # fmt: skip
LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
GREEK = "ΓΔΘΛΞΠΣΦΨΩαβγδεζηθλμξπρσφψω"
SYMBOLS = "@#%&+=?*<>{}$€£¥§¶©®™~^±×÷√∞≈≠≤≥←→↑↓↔★☆♠♣♥♦♪✓✗|/\\()[]!"

Point = tuple[float, float]
Stroke = list[Point]


@dataclass(frozen=True)
class OODImage:
    """One non-digit image as the user would hand it over, and what the app makes of it.

    family: one of FAMILIES. name: what it shows ("A", "star", "Shirt", ...).
    lookalike: the digit it may honestly be read as, or "" (not counted for the target).
    raw: the image before preprocessing. pixels: `prepare(raw).pixels` (uint8 28x28).
    blank: `prepare()` found nothing to classify (the model never sees it).
    """

    family: str
    name: str
    lookalike: str
    raw: Image.Image
    pixels: np.ndarray
    blank: bool


# --- pen drawing -------------------------------------------------------------------------------


def _smooth(points: Sequence[Point], per_segment: int = 12) -> list[Point]:
    """A uniform Catmull-Rom curve through the points (the ends repeated)."""
    if len(points) < 3:
        return list(points)
    pts = [points[0], *points, points[-1]]
    out: list[Point] = [points[0]]
    for i in range(1, len(pts) - 2):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        for k in range(1, per_segment + 1):
            t = k / per_segment
            out.append(
                tuple(  # type: ignore[misc]
                    0.5 * (2 * p1[d] + (p2[d] - p0[d]) * t + (2 * p0[d] - 5 * p1[d] + 4 * p2[d] - p3[d]) * t * t
                           + (3 * p1[d] - p0[d] - 3 * p2[d] + p3[d]) * t ** 3)
                    for d in (0, 1)
                )
            )  # fmt: skip
    return out


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 16) -> Stroke:
    """Points on an elliptic arc from angle a0 to a1 (degrees, 0 = right, 90 = down)."""
    return [
        (cx + rx * math.cos(math.radians(a0 + (a1 - a0) * k / n)), cy + ry * math.sin(math.radians(a0 + (a1 - a0) * k / n)))
        for k in range(n + 1)
    ]


def _paper(rng: np.random.Generator) -> tuple[Image.Image, int, int]:
    """A sheet of off-white paper of a random size, and the ink and paper grey levels."""
    w, h = int(rng.integers(200, 400)), int(rng.integers(200, 400))
    paper = int(rng.integers(225, 256))
    ink = int(rng.integers(0, 70))
    return Image.new("L", (w * 2, h * 2), paper), ink, paper


def draw_strokes(
    strokes: Sequence[Stroke],
    rng: np.random.Generator,
    *,
    jitter: float = 0.02,
    smooth: bool = True,
    fill: Sequence[Sequence[Point]] = (),
) -> Image.Image:
    """Unit-box strokes (x right, y down) drawn by a hand: random size, place, slant,
    rotation, aspect and tremor, a round nib of random width, dark ink on paper.
    `fill`: closed polygons to fill with ink (filled shapes)."""
    img, ink, _ = _paper(rng)
    w, h = img.size
    side = min(w, h) * rng.uniform(0.45, 0.8)
    cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
    rot = math.radians(rng.uniform(-12, 12))
    slant = math.tan(math.radians(rng.uniform(-8, 15)))
    squash = rng.uniform(0.8, 1.15)
    pen = side * rng.uniform(0.05, 0.12)

    def place(p: Point) -> Point:
        x, y = p[0] + rng.normal(0, jitter), p[1] + rng.normal(0, jitter)
        u, v = (x - 0.5) * squash - (y - 0.5) * slant, y - 0.5
        u, v = u * math.cos(rot) - v * math.sin(rot), u * math.sin(rot) + v * math.cos(rot)
        return cx + u * side, cy + v * side

    draw = ImageDraw.Draw(img)
    for poly in fill:
        draw.polygon([place(p) for p in poly], fill=ink)
    r = pen / 2
    for stroke in strokes:
        pts = [place(p) for p in stroke]
        path = _smooth(pts) if smooth else pts
        if len(path) > 1:
            draw.line(path, fill=ink, width=max(1, round(pen)), joint="curve")
        for x, y in path:  # round nib
            draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    img = img.filter(ImageFilter.GaussianBlur(0.7))
    return img.resize((w // 2, h // 2), Image.Resampling.LANCZOS)


# --- letters drawn as strokes ---------------------------------------------------------------------

_LETTER_STROKES: dict[str, list[Stroke]] = {
    "A": [[(0.05, 1), (0.5, 0), (0.95, 1)], [(0.25, 0.6), (0.75, 0.6)]],
    "B": [[(0.15, 0), (0.15, 1)], [(0.15, 0), (0.6, 0), (0.75, 0.12), (0.75, 0.35), (0.6, 0.48), (0.15, 0.48)],
          [(0.15, 0.48), (0.7, 0.48), (0.85, 0.62), (0.85, 0.85), (0.7, 1), (0.15, 1)]],
    "C": [_arc(0.55, 0.5, 0.45, 0.5, -50, -310)],
    "D": [[(0.15, 0), (0.15, 1)], [(0.15, 0), (0.5, 0), (0.85, 0.25), (0.9, 0.5), (0.85, 0.75), (0.5, 1), (0.15, 1)]],
    "E": [[(0.9, 0), (0.15, 0), (0.15, 1), (0.9, 1)], [(0.15, 0.5), (0.7, 0.5)]],
    "F": [[(0.9, 0), (0.15, 0), (0.15, 1)], [(0.15, 0.48), (0.7, 0.48)]],
    "G": [_arc(0.5, 0.5, 0.45, 0.5, -40, -330) + [(0.95, 0.55), (0.6, 0.55)]],
    "H": [[(0.1, 0), (0.1, 1)], [(0.9, 0), (0.9, 1)], [(0.1, 0.5), (0.9, 0.5)]],
    "I": [[(0.5, 0), (0.5, 1)]],
    "J": [[(0.15, 0), (0.95, 0)], [(0.7, 0), (0.7, 0.75), *_arc(0.4, 0.75, 0.3, 0.25, 0, 180, 8)[1:]]],
    "K": [[(0.15, 0), (0.15, 1)], [(0.9, 0), (0.15, 0.6)], [(0.38, 0.42), (0.9, 1)]],
    "L": [[(0.15, 0), (0.15, 1), (0.85, 1)]],
    "M": [[(0.05, 1), (0.1, 0), (0.5, 0.65), (0.9, 0), (0.95, 1)]],
    "N": [[(0.1, 1), (0.1, 0), (0.9, 1), (0.9, 0)]],
    "O": [_arc(0.5, 0.5, 0.42, 0.5, -90, 270, 24)],
    "P": [[(0.15, 1), (0.15, 0), (0.6, 0), (0.85, 0.15), (0.85, 0.38), (0.6, 0.52), (0.15, 0.52)]],
    "Q": [_arc(0.5, 0.45, 0.42, 0.45, -90, 270, 24), [(0.55, 0.7), (0.95, 1)]],
    "R": [[(0.15, 1), (0.15, 0), (0.6, 0), (0.85, 0.15), (0.85, 0.38), (0.6, 0.52), (0.15, 0.52)],
          [(0.45, 0.52), (0.9, 1)]],
    "S": [[(0.85, 0.12), (0.55, 0), (0.2, 0.1), (0.2, 0.35), (0.5, 0.5), (0.8, 0.65), (0.8, 0.9), (0.45, 1), (0.1, 0.88)]],
    "T": [[(0.05, 0), (0.95, 0)], [(0.5, 0), (0.5, 1)]],
    "U": [[(0.1, 0), (0.1, 0.7), *_arc(0.5, 0.7, 0.4, 0.3, 180, 0, 10)[1:], (0.9, 0)]],
    "V": [[(0.05, 0), (0.5, 1), (0.95, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.3), (0.75, 1), (1, 0)]],
    "X": [[(0.1, 0), (0.9, 1)], [(0.9, 0), (0.1, 1)]],
    "Y": [[(0.05, 0), (0.5, 0.5), (0.95, 0)], [(0.5, 0.5), (0.5, 1)]],
    "Z": [[(0.1, 0), (0.9, 0), (0.1, 1), (0.9, 1)]],
    "a": [_arc(0.45, 0.65, 0.35, 0.35, -20, 340, 18), [(0.82, 0.3), (0.82, 1)]],
    "b": [[(0.2, 0), (0.2, 1)], _arc(0.5, 0.68, 0.3, 0.32, 180, 540, 18)],
    "d": [[(0.8, 0), (0.8, 1)], _arc(0.5, 0.68, 0.3, 0.32, 0, 360, 18)],
    "e": [[(0.15, 0.62), (0.85, 0.62), *_arc(0.5, 0.65, 0.36, 0.35, -10, -300, 14)[1:]]],
    "f": [[(0.8, 0.08), *_arc(0.55, 0.2, 0.22, 0.2, -30, -180, 6)[1:], (0.33, 1)], [(0.1, 0.45), (0.7, 0.45)]],
    "h": [[(0.2, 0), (0.2, 1)], [(0.2, 0.6), *_arc(0.52, 0.62, 0.3, 0.25, -180, 0, 8)[1:], (0.82, 1)]],
    "k": [[(0.2, 0), (0.2, 1)], [(0.8, 0.35), (0.2, 0.72)], [(0.42, 0.6), (0.85, 1)]],
    "m": [[(0.05, 1), (0.05, 0.35)], [(0.05, 0.5), *_arc(0.27, 0.5, 0.22, 0.18, -180, 0, 6)[1:], (0.49, 1)],
          [(0.49, 0.5), *_arc(0.71, 0.5, 0.22, 0.18, -180, 0, 6)[1:], (0.93, 1)]],
    "n": [[(0.15, 1), (0.15, 0.3)], [(0.15, 0.5), *_arc(0.5, 0.5, 0.35, 0.22, -180, 0, 8)[1:], (0.85, 1)]],
    "p": [[(0.2, 0.3), (0.2, 1.25)], _arc(0.5, 0.55, 0.3, 0.27, 180, 540, 18)],
    "r": [[(0.25, 1), (0.25, 0.3)], [(0.25, 0.55), *_arc(0.55, 0.55, 0.3, 0.22, -180, -30, 6)[1:]]],
    "t": [[(0.45, 0), (0.45, 0.85), *_arc(0.65, 0.85, 0.2, 0.15, 180, 60, 5)[1:]], [(0.1, 0.3), (0.85, 0.3)]],
    "u": [[(0.15, 0.3), (0.15, 0.75), *_arc(0.48, 0.75, 0.33, 0.25, 180, 0, 8)[1:]], [(0.82, 0.3), (0.82, 1)]],
    "v": [[(0.1, 0.3), (0.5, 1), (0.9, 0.3)]],
    "w": [[(0.0, 0.3), (0.25, 1), (0.5, 0.5), (0.75, 1), (1.0, 0.3)]],
    "x": [[(0.15, 0.3), (0.85, 1)], [(0.85, 0.3), (0.15, 1)]],
    "y": [[(0.1, 0.3), (0.5, 0.8)], [(0.9, 0.3), (0.35, 1.3)]],
    "z": [[(0.15, 0.3), (0.85, 0.3), (0.15, 1), (0.85, 1)]],
}  # fmt: skip


def stroke_letter(letter: str, rng: np.random.Generator) -> Image.Image:
    """A hand-drawn-looking letter (see `_LETTER_STROKES` for which exist)."""
    return draw_strokes(_LETTER_STROKES[letter], rng, jitter=rng.uniform(0.01, 0.03))


# --- fonts -------------------------------------------------------------------------------------------


@cache
def _font_paths() -> tuple[Path, ...]:
    return tuple(p for p in (FONT_DIR / f for f in FONT_FILES) if p.is_file())


@cache
def _fonts_with(ch: str) -> tuple[Path, ...]:
    """The fonts that have a glyph for `ch` (a missing one renders as an empty box, which
    would make a symbol into a rectangle)."""

    def mask(font: ImageFont.FreeTypeFont, c: str) -> tuple:
        m = font.getmask(c)
        return m.size, bytes(m)

    out = []
    for p in _font_paths():
        font = ImageFont.truetype(str(p), 48)
        if mask(font, ch) != mask(font, "\U0010fffd"):  # a private-use code point: no glyph
            out.append(p)
    return tuple(out)


def font_glyph(text: str, rng: np.random.Generator) -> Image.Image:
    """`text` (one character) typeset in a random DejaVu style that has it, at a random
    size and angle, on paper."""
    fonts = _fonts_with(text)
    font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), int(rng.integers(90, 200)))
    img, ink, paper = _paper(rng)
    w, h = img.size
    glyph = Image.new("L", (w, h), 0)
    ImageDraw.Draw(glyph).text((w / 2, h / 2), text, fill=255, font=font, anchor="mm")
    glyph = glyph.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BICUBIC, center=(w / 2, h / 2))
    img.paste(ink, mask=glyph)
    return img.resize((w // 2, h // 2), Image.Resampling.LANCZOS)


# --- scribbles and shapes ------------------------------------------------------------------------------


def scribble(rng: np.random.Generator) -> tuple[str, Image.Image]:
    """A random pen path with many turns (or a tangle of loops), one to three strokes."""
    kind = rng.choice(["path", "strokes", "loops", "zigzag"])
    if kind == "loops":
        n, r = int(rng.integers(3, 7)), rng.uniform(0.12, 0.25)
        t = np.linspace(0, n * 2 * math.pi, n * 14)
        x = 0.5 + (0.38 - r) * np.linspace(-1, 1, len(t)) + r * np.cos(t)
        y = 0.5 + r * np.sin(t) * rng.uniform(0.8, 1.6)
        strokes = [list(zip(x.tolist(), y.tolist()))]
    elif kind == "zigzag":
        n = int(rng.integers(4, 9))
        xs = np.linspace(0, 1, n + 1)
        ys = np.where(np.arange(n + 1) % 2 == 0, rng.uniform(0, 0.3, n + 1), rng.uniform(0.7, 1, n + 1))
        strokes = [list(zip(xs.tolist(), ys.tolist()))]
        return "zigzag", draw_strokes(strokes, rng, smooth=False)
    else:
        count = 1 if kind == "path" else int(rng.integers(2, 4))
        strokes = [
            [tuple(p) for p in rng.uniform(0, 1, (int(rng.integers(6, 12)) if count == 1 else int(rng.integers(3, 7)), 2))]
            for _ in range(count)
        ]
    return f"scribble ({kind})", draw_strokes(strokes, rng, jitter=0.0)


def _polygon(n: int, inner: float | None = None, start: float = -90) -> Stroke:
    pts: Stroke = []
    k = n * 2 if inner else n
    for i in range(k + 1):
        r = 0.5 if (inner is None or i % 2 == 0) else 0.5 * inner
        a = math.radians(start + 360 * i / k)
        pts.append((0.5 + r * math.cos(a), 0.5 + r * math.sin(a)))
    return pts


def _heart() -> Stroke:
    t = np.linspace(0, 2 * math.pi, 40)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return list(zip((0.5 + x / 34).tolist(), (0.5 - y / 34).tolist()))


def _spiral(turns: float) -> Stroke:
    t = np.linspace(0, turns * 2 * math.pi, int(turns * 24))
    r = 0.48 * t / t[-1]
    return list(zip((0.5 + r * np.cos(t)).tolist(), (0.5 + r * np.sin(t)).tolist()))


_ARROW: Stroke = [(0, 0.5), (1, 0.5)]
_ARROW_HEAD: Stroke = [(0.72, 0.25), (1, 0.5), (0.72, 0.75)]
SHAPES: dict[str, Callable[[], tuple[list[Stroke], list[Stroke], bool]]] = {
    # name -> (strokes, filled polygons, smooth the strokes)
    "square": lambda: ([_polygon(4, start=-45)], [], False),
    "rectangle": lambda: ([[(0, 0.25), (1, 0.25), (1, 0.75), (0, 0.75), (0, 0.25)]], [], False),
    "triangle": lambda: ([_polygon(3)], [], False),
    "filled triangle": lambda: ([], [_polygon(3)], False),
    "filled square": lambda: ([], [_polygon(4, start=-45)], False),
    "diamond": lambda: ([_polygon(4)], [], False),
    "hexagon": lambda: ([_polygon(6)], [], False),
    "star": lambda: ([_polygon(5, 0.4)], [], False),
    "filled star": lambda: ([], [_polygon(5, 0.4)], False),
    "arrow right": lambda: ([_ARROW, _ARROW_HEAD], [], False),
    "arrow up": lambda: ([[(y, 1 - x) for x, y in _ARROW], [(y, 1 - x) for x, y in _ARROW_HEAD]], [], False),
    "arrow down-left": lambda: ([[(1 - x, y) for x, y in _diag(_ARROW)], [(1 - x, y) for x, y in _diag(_ARROW_HEAD)]], [], False),
    "plus": lambda: ([[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]], [], False),
    "cross": lambda: ([[(0, 0), (1, 1)], [(1, 0), (0, 1)]], [], False),
    "heart": lambda: ([_heart()], [], True),
    "filled heart": lambda: ([], [_heart()], False),
    "spiral": lambda: ([_spiral(2.5)], [], True),
    "checkmark": lambda: ([[(0, 0.55), (0.35, 1), (1, 0)]], [], False),
    "smiley": lambda: ([_polygon(24), _arc(0.5, 0.55, 0.25, 0.2, 20, 160, 8), [(0.35, 0.35), (0.36, 0.37)],
                        [(0.65, 0.35), (0.66, 0.37)]], [], True),
    "house": lambda: ([[(0.1, 1), (0.1, 0.45), (0.5, 0), (0.9, 0.45), (0.9, 1), (0.1, 1)], [(0.1, 0.45), (0.9, 0.45)]], [], False),
    "circle": lambda: ([_polygon(24)], [], True),
    "ellipse": lambda: ([[(0.5 + 0.5 * math.cos(a), 0.5 + 0.3 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 25)]], [], True),
}  # fmt: skip


def _diag(stroke: Stroke) -> Stroke:
    """A stroke turned 45 degrees about the box centre (for diagonal arrows)."""
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    return [(0.5 + (x - 0.5) * c * 0.8 - (y - 0.5) * s * 0.8, 0.5 + (x - 0.5) * s * 0.8 + (y - 0.5) * c * 0.8) for x, y in stroke]


def shape(name: str, rng: np.random.Generator) -> Image.Image:
    strokes, fill, smooth = SHAPES[name]()
    return draw_strokes(strokes, rng, jitter=rng.uniform(0.005, 0.02), smooth=smooth, fill=fill)


# --- Fashion-MNIST and noise ----------------------------------------------------------------------------


@cache
def _fashion_test() -> tuple[np.ndarray, np.ndarray] | None:
    from app.core.data import read_idx_images, read_idx_labels

    images = FASHION_DIR / "t10k-images-idx3-ubyte.gz"
    labels = FASHION_DIR / "t10k-labels-idx1-ubyte.gz"
    if not images.is_file():
        return None
    return read_idx_images(images), read_idx_labels(labels)


def fashion_item(rng: np.random.Generator) -> tuple[str, Image.Image]:
    from app.core.data import FASHION_CLASSES

    data = _fashion_test()
    assert data is not None
    images, labels = data
    i = int(rng.integers(len(images)))
    pixels = images[i] if rng.random() < 0.5 else 255 - images[i]  # photo on white, or as stored
    scale = int(rng.integers(1, 6))
    img = Image.fromarray(pixels).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    return FASHION_CLASSES[int(labels[i])], img


def noise(rng: np.random.Generator) -> tuple[str, Image.Image]:
    kind = str(rng.choice(["pixels", "blobs", "stripes", "checkerboard", "speckles"]))
    size = int(rng.integers(64, 300))
    if kind == "pixels":
        a = rng.integers(0, 256, (size, size)).astype(np.uint8)
    elif kind == "blobs":
        coarse = rng.uniform(0, 255, (int(rng.integers(3, 9)),) * 2).astype(np.uint8)
        a = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
    elif kind == "stripes":
        period = rng.uniform(6, 40)
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:size, 0:size]
        a = (127.5 + 127.5 * np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)).astype(np.uint8)
    elif kind == "checkerboard":
        cell = int(rng.integers(4, 40))
        yy, xx = np.mgrid[0:size, 0:size]
        a = (((yy // cell + xx // cell) % 2) * 255).astype(np.uint8)
    else:  # dark specks scattered on paper
        a = np.full((size, size), 245, np.uint8)
        n = int(rng.integers(20, 200))
        ys, xs = rng.integers(0, size, n), rng.integers(0, size, n)
        r = int(rng.integers(1, 4))
        for y, x in zip(ys, xs):
            a[max(0, y - r) : y + r, max(0, x - r) : x + r] = 20
    return f"noise ({kind})", Image.fromarray(a)


# --- the set ---------------------------------------------------------------------------------------------


def missing_families() -> dict[str, str]:
    """Families that cannot be built on this machine, with the reason."""
    out = {}
    if not _font_paths():
        for fam in ("font_letters", "symbols"):
            out[fam] = f"no DejaVu fonts in {FONT_DIR}"
    if _fashion_test() is None:
        out["fashion"] = f"Fashion-MNIST not installed at {FASHION_DIR}"
    return out


def _one(family: str, rng: np.random.Generator) -> tuple[str, Image.Image]:
    if family == "font_letters":
        ch = str(rng.choice(list(LATIN + GREEK)))
        return ch, font_glyph(ch, rng)
    if family == "stroke_letters":
        ch = str(rng.choice(list(_LETTER_STROKES)))
        return ch, stroke_letter(ch, rng)
    if family == "symbols":
        ch = str(rng.choice(list(SYMBOLS)))
        return ch, font_glyph(ch, rng)
    if family == "scribbles":
        return scribble(rng)
    if family == "shapes":
        name = str(rng.choice(list(SHAPES)))
        return name, shape(name, rng)
    if family == "fashion":
        return fashion_item(rng)
    if family == "noise":
        return noise(rng)
    raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")


def ood_images(per_family: int = 100, seed: int = 0, families: Sequence[str] = FAMILIES) -> list[OODImage]:
    """`per_family` images of each available family, prepared as the app prepares a
    user's image. Each family draws from its own seeded stream, so adding images to one
    family does not change another."""
    missing = missing_families()
    out = []
    for f_index, family in enumerate(families):
        if family in missing:
            continue
        rng = np.random.default_rng([seed, f_index])
        for _ in range(per_family):
            name, raw = _one(family, rng)
            prepared = prepare(raw)
            out.append(OODImage(family, name, LOOKALIKES.get(name, ""), raw, prepared.pixels, prepared.blank))
    return out


def contact_sheet(items: Sequence[OODImage], columns: int = 20, scale: int = 2, note: Callable[[OODImage], str] | None = None) -> Image.Image:
    """The prepared 28x28 images in a grid, look-alikes framed in orange and blanks in
    grey; `note(item)` (e.g. the model's answer) is written under each."""
    cell_w, cell_h = 28 * scale + 6, 28 * scale + (18 if note else 6)
    rows = max(1, math.ceil(len(items) / columns))
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    fonts = _font_paths()  # the default font has no Greek or symbols
    font = ImageFont.truetype(str(fonts[0]), 10) if fonts else ImageFont.load_default(size=10)
    for i, it in enumerate(items):
        x, y = (i % columns) * cell_w, (i // columns) * cell_h
        tile = Image.fromarray(it.pixels).resize((28 * scale, 28 * scale), Image.Resampling.NEAREST)
        sheet.paste(tile.convert("RGB"), (x + 3, y + 3))
        if it.lookalike or it.blank:
            draw.rectangle([x + 1, y + 1, x + 28 * scale + 4, y + 28 * scale + 4], outline="orange" if it.lookalike else "grey", width=2)
        if note:
            draw.text((x + 3, y + 28 * scale + 5), note(it)[:12], fill="black", font=font)
    return sheet
