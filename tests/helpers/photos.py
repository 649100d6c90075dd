"""Realistic, seeded photos and scans of handwritten digits, for testing the photo front end.

    sample = make_sample("phone", index=3)          # a Sample: .image (PIL), .label, ...
    samples = make_set(CONDITIONS, per_condition=40, mnist=load_mnist_test())

Each condition imitates what people drop into a digit classifier (see CONDITIONS). Writers
come from tests.helpers.handwriting (bundled strokes, more styles per digit, real MNIST
digits); everything else is random too: ink colour and pen, stroke width, digit size and
position, rotation, paper tint, line spacing and colour, light direction, shadow, blur,
sensor noise, JPEG quality. The same (condition, index, seed) gives the same image.
`python -m tests.helpers.photo_sheet` writes a contact sheet to look at.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage as ndi

from tests.helpers.handwriting import random_digit_ink
from tests.helpers.photo_parts import (  # noqa: F401 (INKS: part of this module's API)
    INKS,
    _finish,
    _grid,
    _light,
    _noise_image,
    _paint,
    _paper,
    _paper_tint,
    _perspective,
    _put_ink,
    _ruled,
    _smooth_field,
)

CONDITIONS = (
    "plain",  # a scanned or photographed sheet, white paper, any pen
    "ruled",  # notebook paper: light-blue lines, red margin
    "grid",  # squared maths paper, written in pencil
    "phone",  # a phone photo of a page: uneven light, shadow, keystone, blur, JPEG 60-80
    "edge",  # a digit near the edge of the sheet, the table in a corner of the frame
    "whiteboard",  # marker, a glare band, ghosts of erased writing
    "fine12mp",  # a fine pen on a 12 MP photo, the digit ~150 px tall
    "chalk",  # chalk on a blackboard
    "lowres",  # blocky low-resolution scans
)
SLOW_CONDITIONS = ("fine12mp",)  # 12 MP images: seconds to make and to read



@dataclass(frozen=True)
class Sample:
    """One generated image and what a person reads on it."""

    image: Image.Image
    label: int
    condition: str
    writer: str
    ink: str


def load_mnist_test(path=None) -> tuple[np.ndarray, np.ndarray] | None:
    """The MNIST 10k test split (images, labels), or None when the files are absent."""
    from tests.helpers.digits import MNIST_DIR

    d = MNIST_DIR if path is None else path
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        return None
    from app.core.data import read_idx_images, read_idx_labels

    return read_idx_images(d / "t10k-images-idx3-ubyte.gz"), read_idx_labels(d / "t10k-labels-idx1-ubyte.gz")


# --- the conditions ------------------------------------------------------------------------


def _writer(rng: random.Random, digit: int, height: float, pen: tuple[float, float], mnist, index: int):
    return random_digit_ink(digit, rng, height, pen, mnist, index)


def _pick_ink(rng: random.Random, pencil: float = 0.2) -> str:
    return "pencil" if rng.random() < pencil else rng.choice(["blue", "black"])


def _plain(rng, nprng, digit, mnist, index):
    w, h = rng.randint(260, 900), rng.randint(260, 900)
    digital = rng.random() < 0.2  # a drawing exported from a program: pure white, no noise
    tint = (1.0, 1.0, 1.0) if digital else _paper_tint(rng)
    page = _paper(nprng, h, w, tint)
    ink = "black" if digital else _pick_ink(rng)
    mask, writer = _writer(rng, digit, min(w, h) * rng.uniform(0.35, 0.75), (0.035, 0.11), mnist, index)
    mh, mw = mask.shape
    cx = rng.uniform(min(w / 2, mw / 2 + 4), max(w / 2, w - mw / 2 - 4))
    cy = rng.uniform(min(h / 2, mh / 2 + 4), max(h / 2, h - mh / 2 - 4))
    _put_ink(page, mask, cx, cy, ink, rng)
    if digital:
        return _finish(page, rng, 0, 0, None), writer, ink
    _light(page, rng, rng.uniform(0, 0.15), rng.uniform(0, 0.15), 0)
    return _finish(page, rng, rng.uniform(1, 4), rng.uniform(0, 0.8), rng.choice([None, rng.randint(70, 95)])), writer, ink


def _notebook(rng, nprng, digit, mnist, index, grid: bool):
    w, h = rng.randint(480, 1000), rng.randint(420, 900)
    page = _paper(nprng, h, w, _paper_tint(rng))
    if grid:
        spacing = rng.uniform(20, 42)
        _grid(page, rng, spacing)
        height = spacing * rng.uniform(1.2, 2.6)
        ink = "pencil" if rng.random() < 0.8 else _pick_ink(rng, 0)
        margin_x = 0.0
    else:
        spacing = rng.uniform(26, 56)
        margin = rng.random() < 0.75
        ys = _ruled(page, rng, spacing, margin)
        height = spacing * rng.uniform(0.9, 1.7)
        ink = _pick_ink(rng, 0.15)
        margin_x = 0.25 * w if margin else 0.0
    mask, writer = _writer(rng, digit, height, (0.035, 0.09), mnist, index)
    mh, mw = mask.shape
    edge = 0.08 * min(w, h)  # a photo of the page may be turned and cropped a little
    cx = rng.uniform(margin_x + mw / 2 + edge, max(margin_x + mw / 2 + edge, w - mw / 2 - edge))
    cy = rng.uniform(mh / 2 + edge, max(mh / 2 + edge, h - mh / 2 - edge))
    if not grid and len(ys):  # people write on the line: the digit's foot near a ruling
        foot = ys[np.argmin(np.abs(ys - (cy + mh / 2)))]
        cy = float(np.clip(foot - mh / 2 + rng.uniform(-0.15, 0.1) * spacing, mh / 2 + edge, h - mh / 2 - edge))
    _put_ink(page, mask, cx, cy, ink, rng)
    _light(page, rng, rng.uniform(0, 0.25), rng.uniform(0, 0.2), rng.uniform(0, 0.2) if rng.random() < 0.3 else 0)
    img = _finish(page, rng, 0, 0, None)
    if rng.random() < 0.6:  # photographed rather than scanned
        img = _perspective(img, rng, 0.02, 3, zoom=1.12)
    return _finish(np.asarray(img, np.float32) / 255, rng, rng.uniform(1, 4), rng.uniform(0, 1.0),
                   rng.randint(65, 92)), writer, ink  # fmt: skip


def _phone(rng, nprng, digit, mnist, index):
    w, h = (1200, 1600) if rng.random() < 0.7 else (1600, 1200)
    warm = (rng.uniform(0.93, 0.99), rng.uniform(0.88, 0.95), rng.uniform(0.76, 0.88))
    page = _paper(nprng, h, w, warm)
    kind = rng.random()
    if kind < 0.25:
        _ruled(page, rng, rng.uniform(38, 60), rng.random() < 0.5)
    elif kind < 0.4:
        _grid(page, rng, rng.uniform(28, 45))
    ink = _pick_ink(rng, 0.2)
    mask, writer = _writer(rng, digit, rng.uniform(90, 260), (0.03, 0.08), mnist, index)
    mh, mw = mask.shape
    cx = w * rng.uniform(0.2, 0.8)
    cy = h * rng.uniform(0.2, 0.8)
    _put_ink(page, mask, cx, cy, ink, rng)
    _light(page, rng, rng.uniform(0.15, 0.35), rng.uniform(0.15, 0.35), rng.uniform(0.2, 0.4))
    img = _perspective(_finish(page, rng, 0, 0, None), rng, 0.035, 4, zoom=1.1)
    return _finish(np.asarray(img, np.float32) / 255, rng, rng.uniform(2, 5), rng.uniform(0.6, 1.6),
                   rng.randint(60, 80)), writer, ink  # fmt: skip


def _table(rng, nprng, h, w):
    kind = rng.choice(["wood", "grey desk", "black laminate"])
    if kind == "wood":
        base = np.array([rng.uniform(0.25, 0.4), rng.uniform(0.14, 0.22), rng.uniform(0.06, 0.12)], np.float32)
        warp = 3 * (_smooth_field(nprng, h, w, 5, 1.0) - 1)  # grain lines bend
        stripes = 0.12 * np.sin(np.linspace(0, rng.uniform(40, 90), w)[None, :] + warp)
        table = base * (1 + stripes)[..., None]
    elif kind == "grey desk":
        table = np.empty((h, w, 3), np.float32)
        table[:] = rng.uniform(0.42, 0.6)
        table *= _smooth_field(nprng, h, w, 8, 0.05)[..., None]
    else:
        table = np.empty((h, w, 3), np.float32)
        table[:] = rng.uniform(0.05, 0.12)
        table *= _smooth_field(nprng, h, w, 4, 0.4)[..., None]
    return np.clip(table, 0, 1), kind


def _edge(rng, nprng, digit, mnist, index):
    w, h = rng.randint(900, 1400), rng.randint(800, 1200)
    table, kind = _table(rng, nprng, h, w)
    page = _paper(nprng, h, w, _paper_tint(rng, 0.1))
    if rng.random() < 0.3:
        _ruled(page, rng, rng.uniform(32, 50), False)
    # The sheet ends at x = ex and/or y = ey: the table shows in a corner or along a side.
    ex, ey = w * rng.uniform(0.6, 0.85), h * rng.uniform(0.55, 0.85)
    mask, writer = _writer(rng, digit, rng.uniform(110, 240), (0.035, 0.09), mnist, index)
    mh, mw = mask.shape
    gap = rng.uniform(0.15, 0.8) * mh
    yy, xx = np.mgrid[0:h, 0:w]
    tilt = rng.uniform(-0.05, 0.05)
    right, below = (xx - ex - tilt * (yy - ey)) > 0, (yy - ey - tilt * (xx - ex)) > 0
    layout = rng.choice(["corner", "side", "bottom"])
    off_sheet = {"corner": right & below, "side": right, "bottom": below}[layout]
    beside = (ex - gap - mw / 2, rng.uniform(ey + mh / 2 + 5, max(ey + mh / 2 + 6, h - mh / 2 - 10)))
    above = (rng.uniform(ex + mw / 2 + 5, max(ex + mw / 2 + 6, w - mw / 2 - 10)), ey - gap - mh / 2)
    if layout == "side":
        cx, cy = ex - gap - mw / 2, rng.uniform(mh, h - mh)
    elif layout == "bottom":
        cx, cy = rng.uniform(mw, w - mw), ey - gap - mh / 2
    elif h - ey > mh + 20 and (w - ex < mw + 20 or rng.random() < 0.5):
        cx, cy = beside  # left of the sheet's side edge, below the corner
    elif w - ex > mw + 20:
        cx, cy = above  # above the sheet's bottom edge, right of the corner
    else:
        cx, cy = ex - gap - mw / 2, ey - gap - mh / 2  # diagonally off the corner
    cx, cy = min(max(cx, mw / 2 + 10), w - mw / 2 - 10), min(max(cy, mh / 2 + 10), h - mh / 2 - 10)
    ink = _pick_ink(rng, 0.15)
    _put_ink(page, mask, cx, cy, ink, rng)
    shade = np.asarray(Image.fromarray((off_sheet * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(4, 14))), np.float32) / 255  # fmt: skip
    table *= (1 - 0.4 * shade * (1 - off_sheet))[..., None]  # the sheet casts a soft shadow
    scene = np.where(off_sheet[..., None], table * (1 - 0.35 * (1 - shade))[..., None], page)
    _light(scene, rng, rng.uniform(0.1, 0.35), rng.uniform(0.1, 0.3), rng.uniform(0, 0.3))
    img = _perspective(_finish(scene, rng, 0, 0, None), rng, 0.02, 3, zoom=1.05)
    out = _finish(np.asarray(img, np.float32) / 255, rng, rng.uniform(2, 5), rng.uniform(0.4, 1.2),
                  rng.randint(65, 90))  # fmt: skip
    return out, f"{writer}, {kind}", ink


def _whiteboard(rng, nprng, digit, mnist, index):
    w, h = rng.randint(900, 1600), rng.randint(700, 1200)
    board = _paper(nprng, h, w, (rng.uniform(0.88, 0.96), rng.uniform(0.9, 0.97), rng.uniform(0.92, 0.99)))
    # Ghosts of erased writing: other digits, faint and smeared.
    for _ in range(rng.randint(2, 5)):
        g, _ = _writer(rng, rng.randrange(10), h * rng.uniform(0.15, 0.4), (0.06, 0.12), None, 0)
        g = ndi.gaussian_filter(g, rng.uniform(1.5, 5))
        _put_ink(board, g * rng.uniform(0.08, 0.2), rng.uniform(0, w), rng.uniform(0, h), "black", rng,
                 colour=(0.45, 0.47, 0.5))  # fmt: skip
    colours = {"black": (0.1, 0.1, 0.12), "blue": (0.08, 0.2, 0.6), "red": (0.75, 0.1, 0.12),
               "green": (0.05, 0.45, 0.2)}  # fmt: skip
    name = rng.choice(list(colours))
    mask, writer = _writer(rng, digit, h * rng.uniform(0.25, 0.6), (0.07, 0.13), mnist, index)
    mh, mw = mask.shape
    cx = rng.uniform(mw / 2 + 10, max(mw / 2 + 11, w - mw / 2 - 10))
    cy = rng.uniform(mh / 2 + 10, max(mh / 2 + 11, h - mh / 2 - 10))
    _put_ink(board, mask, cx, cy, "black", rng, colour=colours[name])
    _light(board, rng, rng.uniform(0.1, 0.3), rng.uniform(0.1, 0.3), 0)
    # A glare band: the room's lights reflected, pushing the board toward white.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    d = (np.cos(ang) * (xx - w * rng.uniform(0.2, 0.8)) + np.sin(ang) * (yy - h * rng.uniform(0.2, 0.8)))
    band = rng.uniform(0.2, 0.45) * np.exp(-(d / (min(w, h) * rng.uniform(0.05, 0.15))) ** 2)
    board += band[..., None] * (1 - board)
    return _finish(board, rng, rng.uniform(2, 5), rng.uniform(0.3, 1.0), rng.randint(70, 90)), writer, f"{name} marker"


def _fine12mp(rng, nprng, digit, mnist, index):
    w, h = (4000, 3000) if rng.random() < 0.5 else (3000, 4000)
    sw, sh = w // 8, h // 8  # the page and its light at 1/8 size, then scaled up
    small = _paper(nprng, sh, sw, _paper_tint(rng, 0.1))
    _light(small, rng, rng.uniform(0.1, 0.35), rng.uniform(0.1, 0.35), rng.uniform(0, 0.35))
    big = Image.fromarray(np.clip(small * 255, 0, 255).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
    mask, writer = _writer(rng, digit, rng.uniform(130, 175), (0.014, 0.03), mnist, index)
    mh, mw = mask.shape
    cx, cy = w * rng.uniform(0.25, 0.75), h * rng.uniform(0.25, 0.75)
    x0, y0 = int(cx - mw / 2) - 4, int(cy - mh / 2) - 4
    box = (x0, y0, x0 + mw + 8, y0 + mh + 8)
    patch = np.asarray(big.crop(box), np.float32) / 255
    ink = rng.choice(["blue", "black"])
    _put_ink(patch, mask, patch.shape[1] / 2, patch.shape[0] / 2, ink, rng)
    big.paste(Image.fromarray(np.clip(patch * 255 + 0.5, 0, 255).astype(np.uint8)), box[:2])
    big = big.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.3)))
    noise = _noise_image(rng, h, w, rng.uniform(2, 4))
    arr = np.clip(np.asarray(big, np.int16) + noise[..., None], 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=rng.randint(75, 90))
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out, writer, f"{ink} fineliner"


def _chalk(rng, nprng, digit, mnist, index):
    w, h = rng.randint(400, 1100), rng.randint(360, 900)
    tone = (rng.uniform(0.12, 0.2), rng.uniform(0.2, 0.3), rng.uniform(0.16, 0.22)) if rng.random() < 0.6 else (
        (rng.uniform(0.1, 0.2),) * 3)  # fmt: skip
    board = _paper(nprng, h, w, tone)
    haze = _smooth_field(nprng, h, w, 5, 1.0) - 1.0  # smeared chalk dust from wiping
    board += np.clip(haze, 0, None)[..., None] * rng.uniform(0.03, 0.1)
    mask, writer = _writer(rng, digit, min(w, h) * rng.uniform(0.35, 0.7), (0.05, 0.12), mnist, index)
    mh, mw = mask.shape
    cx = rng.uniform(mw / 2 + 6, max(mw / 2 + 7, w - mw / 2 - 6))
    cy = rng.uniform(mh / 2 + 6, max(mh / 2 + 7, h - mh / 2 - 6))
    _put_ink(board, mask, cx, cy, "black", rng, colour=(0.92, 0.92, 0.86), grain=rng.uniform(0.2, 0.55))
    _light(board, rng, rng.uniform(0, 0.3), rng.uniform(0, 0.3), 0)
    return _finish(board, rng, rng.uniform(2, 5), rng.uniform(0.3, 1.0), rng.randint(70, 92)), writer, "chalk"


def _lowres(rng, nprng, digit, mnist, index):
    side = rng.randint(16, 40)
    big = _paper(nprng, side * 8, side * 8, (rng.uniform(0.85, 1.0),) * 3)
    mask, writer = _writer(rng, digit, side * 8 * rng.uniform(0.55, 0.8), (0.07, 0.13), mnist, index)
    ink = rng.choice(["black", "blue"])
    _put_ink(big, mask, side * 4 + rng.uniform(-side, side), side * 4 + rng.uniform(-side, side), ink, rng)
    img = _finish(big, rng, 0, 0, None, gray=True).resize((side, side), Image.Resampling.BOX)
    if rng.random() < 0.3:  # a 1-bit fax-like scan
        img = img.point(lambda v: 255 if v > 150 else 0)
    if rng.random() < 0.5:  # shown blocky: scaled up without smoothing
        k = rng.randint(3, 8)
        img = img.resize((side * k, side * k), Image.Resampling.NEAREST)
    quality = rng.choice([None, rng.randint(50, 90)])
    return _finish(np.asarray(img.convert("RGB"), np.float32) / 255, rng, 0, 0, quality, gray=True), writer, ink


_MAKERS = {
    "plain": _plain,
    "ruled": lambda *a: _notebook(*a, grid=False),
    "grid": lambda *a: _notebook(*a, grid=True),
    "phone": _phone,
    "edge": _edge,
    "whiteboard": _whiteboard,
    "fine12mp": _fine12mp,
    "chalk": _chalk,
    "lowres": _lowres,
}


def make_sample(condition: str, index: int, seed: int = 0, mnist=None) -> Sample:
    """The `index`-th image of `condition` (digit = index % 10). With `mnist` (the output
    of load_mnist_test), every other image is written by a real MNIST writer."""
    rng = random.Random(f"{seed}-{condition}-{index}")
    nprng = np.random.default_rng(rng.randrange(2**32))
    digit = index % 10
    image, writer, ink = _MAKERS[condition](rng, nprng, digit, mnist, index)
    return Sample(image, digit, condition, writer, ink)


def make_set(conditions=CONDITIONS, per_condition: int = 40, seed: int = 0, mnist=None) -> list[Sample]:
    return [make_sample(c, i, seed, mnist) for c in conditions for i in range(per_condition)]
