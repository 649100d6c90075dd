"""Letters and symbols drawn as pen strokes, from the Hershey vector fonts: outliers for a
digit model's outlier exposure (`app.core.outliers`, kind ``letters``).

Why these fonts (the `Hershey-Fonts` package, module `HersheyFonts`): each glyph is a
list of pen strokes (A. V. Hershey, 1967: public domain), so it is drawn with the app's
own stroke renderer (`app.core.strokes`, the canvas's pen) and comes out as a hand would
write it, not as a filled outline; the package is pure Python with its fonts inside it
(nothing to install, nothing PyInstaller has to be told about). It is a source apart from
the non-digit test set, which draws DejaVu outlines and hand-made letter skeletons
(tests/helpers/ood.py).

Each image: one glyph of one style (Latin: simplex to triplex roman, italic, script,
cursive, gothic; Greek; geometric markers), its strokes cut into short pieces, then a
random slant, rotation, squash, smooth wobble and pen width. A glyph that is a digit or
could honestly be read as one is never drawn (`LOOKALIKES`, the same list by shape as the
test set's), nor a mark too small to be anything once normalized (. , ' : ;): a digit
model must not learn that a 1-like stroke is foreign.

Only for models whose classes are the digits (`usable_for`): for a letter model these
would be its own classes, for a photo model they add nothing the other kinds do not.
Without the package the kind is left out (`available()`), with a note in the log.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from functools import cache

import numpy as np

from app.core.strokes import Drawing, coverage

log = logging.getLogger(__name__)

try:  # pragma: no cover - exercised by whichever way the environment is
    from HersheyFonts import HersheyFonts
except ImportError:  # pragma: no cover
    HersheyFonts = None

# Shapes a person could read as a digit once normalized: the test set's list
# (tests/helpers/ood.py LOOKALIKES), plus the Greek capitals and small letters drawn like
# those Latin ones, and the circle.
LOOKALIKES = frozenset("0123456789OoDQIlij|/\\()[]!ZzSsbGBagq" + "ΟοΙιΖΒ" + "◯○◍")
TOO_SMALL = frozenset(".,'`\":;-_")  # marks that normalize to a dot or a bar
LATIN_FONTS = (
    "futural", "futuram", "rowmans", "rowmand", "rowmant", "timesr", "timesi", "timesrb", "timesib",
    "scripts", "scriptc", "cursive", "gothiceng", "gothicger", "gothicita",
)  # fmt: skip
# What the Greek fonts draw for each ASCII key (read off their glyphs; 'greek' and
# 'timesg' share one layout). Keys missing here are not drawn.
_GREEK_KEYS = dict(
    zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "ΑΒΧΔΕΦΓΗΙ□ΚΛΜΝΟΠΘΡΣΤΥ◯ΩΞΨΖ"),
    **dict(zip("abcdefghijklmnopqrstuvwxyz", "αβχδεφγηι×κλμνοπϑρστυ÷ωξψζ")),
)
GREEK_FONTS = ("greek", "timesg")
# The markers font: circle, square, triangle, diamond, star, outlined cross, plus, cross,
# asterisk, hatched circle, hatched square, hatched triangle, three pointed triangles.
_MARKER_KEYS = dict(zip("ABCDEFGHIJKLMNOP", "○□△◇☆✚+×*◍▥▲◁▽▷▽"))


def available() -> bool:
    """Whether the Hershey fonts can be read here."""
    return HersheyFonts is not None


def usable_for(classes: Sequence[str] | None) -> bool:
    """Letters are outliers for a model whose classes are the ten digits, not for others."""
    digits = classes is not None and sorted(map(str, classes)) == [str(d) for d in range(10)]
    return digits and bool(glyphs())


def _keep(char: str) -> bool:
    return char.strip() != "" and char not in LOOKALIKES and char not in TOO_SMALL


@cache
def glyphs() -> tuple[tuple[str, str, tuple[tuple[tuple[float, float], ...], ...]], ...]:
    """Every glyph drawn: (font, character, strokes in font units, y down)."""
    if HersheyFonts is None:
        log.info("Hershey-Fonts is not installed: outlier exposure draws no letters")
        return ()
    out = []
    tables = [(f, {chr(c): chr(c) for c in range(33, 127)}) for f in LATIN_FONTS]
    tables += [(f, _GREEK_KEYS) for f in GREEK_FONTS] + [("markers", _MARKER_KEYS)]
    for font, table in tables:
        h = HersheyFonts()
        h.load_default_font(font)
        for key, char in table.items():
            if not _keep(char):
                continue
            strokes = tuple(tuple((float(x), float(y)) for x, y in s) for s in h.strokes_for_text(key) if len(s) > 1)
            if strokes:
                out.append((font, char, strokes))
    return tuple(out)


def _densify(stroke: np.ndarray, step: float) -> np.ndarray:
    """The polyline with points at most `step` apart, so the renderer's smoothing (curves
    through midpoints) rounds its corners only a little."""
    pieces = [stroke[:1]]
    for a, b in zip(stroke[:-1], stroke[1:]):
        n = max(1, int(math.ceil(float(np.hypot(*(b - a))) / step)))
        pieces.append(a + (b - a) * np.linspace(0, 1, n + 1)[1:, None])
    return np.concatenate(pieces)


def draw_glyph(strokes: Sequence[Sequence[tuple[float, float]]], rng: np.random.Generator, size: int) -> np.ndarray:
    """One glyph written by a random hand: white ink on black, float coverage as uint8."""
    pts = np.concatenate([np.asarray(s, float) for s in strokes])
    lo, hi = pts.min(0), pts.max(0)
    span = float(max((hi - lo).max(), 1e-6))
    centre = (lo + hi) / 2
    angle = math.radians(rng.uniform(-15, 15))
    shear = rng.uniform(-0.35, 0.35)
    sx, sy = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    m = rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy]) / span
    # A smooth wobble: two low-frequency waves of random phase (a hand, not a plotter).
    amp = rng.uniform(0.0, 0.03, 2)
    freq, phase = rng.uniform(1, 3, 2), rng.uniform(0, 2 * np.pi, 2)
    out = []
    for s in strokes:
        p = (_densify(np.asarray(s, float), span / 25) - centre) @ m.T
        p = p + amp * np.sin(freq * p[:, ::-1] * 2 * np.pi + phase) + rng.normal(0, 0.004, p.shape)
        out.append(p)
    allp = np.concatenate(out)
    reach = float((allp.max(0) - allp.min(0)).max())
    fit = 0.7 / max(reach, 1e-6)  # the glyph fills ~70% of the paper
    mid = (allp.max(0) + allp.min(0)) / 2
    unit = [tuple(map(tuple, np.clip((p - mid) * fit + 0.5, 0, 1))) for p in out]
    pen = float(rng.uniform(0.035, 0.11))  # the canvas's default is 0.09
    return np.rint(coverage(Drawing(tuple(unit), pen), size) * 255).astype(np.uint8)


def letter_outlier(rng: np.random.Generator, size: int) -> np.ndarray | None:
    """A random glyph, randomly written (uint8, white on black), or None without fonts."""
    table = glyphs()
    if not table:
        return None
    return draw_glyph(table[int(rng.integers(len(table)))][2], rng, size)
