"""Building blocks of the generated photos (tests.helpers.photos): paper, rulings, ink,
light, camera geometry, sensor noise and JPEG. Float RGB arrays in [0, 1], (h, w, 3)."""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageFilter

INKS = {  # RGB in [0, 1]
    "blue": (0.1, 0.14, 0.45),
    "black": (0.08, 0.08, 0.1),
    "pencil": (0.22, 0.22, 0.24),
}


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int, amp: float) -> np.ndarray:
    """Low-frequency noise around 1.0 (paper mottling, uneven light)."""
    small = rng.normal(0, 1, (cells, cells)).astype(np.float32)
    img = Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BICUBIC)
    f = np.asarray(img)
    return 1.0 + amp * f / max(float(np.abs(f).max()), 1e-6)


def _paper(rng: np.random.Generator, h: int, w: int, tint: tuple[float, float, float]) -> np.ndarray:
    page = np.empty((h, w, 3), np.float32)
    page[:] = tint
    page *= _smooth_field(rng, h, w, 6, 0.02)[..., None]
    return page


def _paper_tint(rng: random.Random, warm: float = 0.06) -> tuple[float, float, float]:
    """White to cream paper: one brightness, a little less blue (and green) when warm."""
    v, k = rng.uniform(0.9, 1.0), rng.uniform(0, warm)
    return (v, v * (1 - 0.35 * k), v * (1 - k))


def _lines(h: int, w: int, pos: np.ndarray, thick: float, axis: int) -> np.ndarray:
    """Antialiased coverage of straight lines at `pos` (rows if axis 0, columns if 1)."""
    n = h if axis == 0 else w
    coord = np.arange(n, dtype=np.float32)[:, None]
    dist = np.abs(coord - pos[None, :].astype(np.float32)).min(axis=1)
    cov = np.clip(thick / 2 + 0.5 - dist, 0.0, 1.0)
    return np.broadcast_to(cov[:, None] if axis == 0 else cov[None, :], (h, w))


def _paint(page: np.ndarray, cov: np.ndarray, colour, alpha: float = 1.0) -> None:
    a = (cov * alpha)[..., None]
    page *= 1 - a
    page += a * np.asarray(colour, np.float32)


def _ruled(page: np.ndarray, rng: random.Random, spacing: float, margin: bool) -> np.ndarray:
    """Notebook rulings: light-blue lines every `spacing` px, a red margin. Returns the
    y of each ruling (for writing on the lines)."""
    h, w, _ = page.shape
    start = rng.uniform(0, spacing)
    ys = np.arange(start, h, spacing)
    blue = (rng.uniform(0.5, 0.7), rng.uniform(0.68, 0.82), rng.uniform(0.86, 0.97))
    _paint(page, _lines(h, w, ys, rng.uniform(1.0, 2.4), 0), blue, rng.uniform(0.6, 0.95))
    if margin:
        xs = np.array([rng.uniform(0.06, 0.2) * w])
        if rng.random() < 0.3:
            xs = np.append(xs, xs[0] + rng.uniform(4, 8))
        red = (rng.uniform(0.85, 0.97), rng.uniform(0.3, 0.5), rng.uniform(0.35, 0.55))
        _paint(page, _lines(h, w, xs, rng.uniform(1.2, 2.6), 1), red, rng.uniform(0.7, 0.95))
    return ys


def _grid(page: np.ndarray, rng: random.Random, spacing: float) -> None:
    h, w, _ = page.shape
    colour = (
        (rng.uniform(0.55, 0.7), rng.uniform(0.7, 0.8), rng.uniform(0.82, 0.92))
        if rng.random() < 0.6
        else (rng.uniform(0.62, 0.72),) * 3
    )
    thick, alpha = rng.uniform(0.9, 1.8), rng.uniform(0.55, 0.85)
    _paint(page, _lines(h, w, np.arange(rng.uniform(0, spacing), h, spacing), thick, 0), colour, alpha)
    _paint(page, _lines(h, w, np.arange(rng.uniform(0, spacing), w, spacing), thick, 1), colour, alpha)


def _put_ink(page: np.ndarray, mask: np.ndarray, cx: float, cy: float, ink: str, rng: random.Random,
             colour=None, grain: float = 0.0) -> tuple[int, int, int, int]:  # fmt: skip
    """Writes `mask` centred on (cx, cy); pencil and chalk get a grainy texture."""
    h, w = mask.shape
    H, W, _ = page.shape
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if xa >= xb or ya >= yb:
        return xa, ya, xa, ya
    cov = mask[ya - y0 : yb - y0, xa - x0 : xb - x0]
    if ink == "pencil":
        grain = grain or rng.uniform(0.2, 0.4)
    if grain:
        nprng = np.random.default_rng(rng.randrange(2**32))
        cov = cov * np.clip(1 - grain * nprng.random(cov.shape, np.float32), 0, 1)
    density = rng.uniform(0.7, 0.95) if ink == "pencil" else rng.uniform(0.85, 1.0)
    tone = np.asarray(colour if colour is not None else INKS[ink], np.float32)
    tone = np.clip(tone + np.float32(rng.uniform(-0.06, 0.06)), 0, 1)
    _paint(page[ya:yb, xa:xb], cov, tone, density)
    return xa, ya, xb, yb


def _light(page: np.ndarray, rng: random.Random, gradient: float, vignette: float, shadow: float) -> None:
    """Uneven light: a linear gradient from a random direction, vignetting, and a soft
    shadow (a dark half-plane with a blurry edge) across part of the page."""
    h, w, _ = page.shape
    sh, sw = max(2, h // 8), max(2, w // 8)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    yy, xx = yy / (sh - 1) - 0.5, xx / (sw - 1) - 0.5
    ang = rng.uniform(0, 2 * np.pi)
    field = 1 - gradient * (0.5 + np.cos(ang) * xx + np.sin(ang) * yy)
    field *= 1 - vignette * (xx**2 + yy**2) * 2
    if shadow > 0:
        a2 = rng.uniform(0, 2 * np.pi)
        d = np.cos(a2) * xx + np.sin(a2) * yy - rng.uniform(-0.2, 0.3)
        soft = rng.uniform(0.03, 0.12)
        field *= 1 - shadow / (1 + np.exp(-d / soft))
    full = np.asarray(Image.fromarray(field.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BILINEAR))
    page *= full[..., None]


def _perspective(img: Image.Image, rng: random.Random, keystone: float, rotate: float,
                 zoom: float = 1.0, fill=(0, 0, 0)) -> Image.Image:  # fmt: skip
    """A slightly tilted camera: corners moved by up to `keystone` of the size, turned by
    up to `rotate` degrees, zoomed in so the page fills the frame."""
    w, h = img.size
    ang = np.radians(rng.uniform(-rotate, rotate))
    c, s = np.cos(ang), np.sin(ang)
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    src = []
    for x, y in dst:
        u, v = (x - w / 2) / zoom, (y - h / 2) / zoom
        u, v = u * c - v * s, u * s + v * c
        src.append((u + w / 2 + rng.uniform(-keystone, keystone) * w, v + h / 2 + rng.uniform(-keystone, keystone) * h))
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coeffs = np.linalg.solve(np.array(a, np.float64), np.array(src, np.float64).ravel())
    return img.transform((w, h), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BILINEAR,
                         fillcolor=fill)  # fmt: skip


def _noise_image(rng: random.Random, h: int, w: int, sigma: float) -> np.ndarray:
    """Gaussian sensor noise in grey levels, int16, from the sample's own seed (Pillow's
    effect_noise would use C's unseeded rand())."""
    nprng = np.random.default_rng(rng.randrange(2**32))
    return (nprng.standard_normal((h, w), dtype=np.float32) * sigma).astype(np.int16)


def _finish(page: np.ndarray, rng: random.Random, noise: float, blur: float, quality: int | None,
            gray: bool = False) -> Image.Image:  # fmt: skip
    """Camera/scanner output: blur, sensor noise, 8 bits, JPEG (None: lossless PNG)."""
    img = Image.fromarray(np.clip(page * 255 + 0.5, 0, 255).astype(np.uint8))
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    if noise > 0:
        n = _noise_image(rng, img.height, img.width, noise)
        arr = np.asarray(img, np.int16) + n[..., None]
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if gray:
        img = img.convert("L")
    if quality is None:
        return img
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


