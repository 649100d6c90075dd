"""Draws the app icon: `app.png` (256 px) and `app.ico` (16-256 px, for Windows builds).

    python resources/icons/make_icon.py

A rounded indigo tile with a hand-drawn white "5" (ResNet's first digit-reading job)
and a teal skip-connection arc around it, the residual in ResNet. Drawn at 4x and
downsampled for clean antialiased edges; deterministic.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZE = 256
S = 4  # supersampling factor

# The "5" as pen strokes in a unit box (x right, y down), like resources/samples.
FIVE = [
    [(0.70, 0.14), (0.36, 0.14), (0.32, 0.46)],
    [(0.32, 0.46), (0.46, 0.40), (0.62, 0.43), (0.71, 0.56), (0.69, 0.71), (0.58, 0.83),
     (0.43, 0.86), (0.29, 0.80)],
]  # fmt: skip


def _pen_path(draw: ImageDraw.ImageDraw, pts: list[tuple[float, float]], width: float, fill) -> None:
    """A polyline with round joins and caps, densely stamped so it reads as one stroke."""
    r = width / 2
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        n = max(1, int(math.dist((x0, y0), (x1, y1)) / (r / 4)))
        for k in range(n + 1):
            x, y = x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _smooth(pts: list[tuple[float, float]], n: int = 12) -> list[tuple[float, float]]:
    """Chaikin corner cutting: a rounder path through the same corners."""
    for _ in range(3):
        out = [pts[0]]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            out += [(0.75 * x0 + 0.25 * x1, 0.75 * y0 + 0.25 * y1), (0.25 * x0 + 0.75 * x1, 0.25 * y0 + 0.75 * y1)]
        pts = out + [pts[-1]]
    return pts


def draw_icon() -> Image.Image:
    big = SIZE * S
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    # Background: a vertical indigo gradient in a rounded square.
    grad = Image.new("RGBA", (big, big))
    gd = ImageDraw.Draw(grad)
    top, bottom = (67, 56, 202), (30, 27, 95)
    for y in range(big):
        t = y / (big - 1)
        gd.line([(0, y), (big, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)) + (255,))
    mask = Image.new("L", (big, big), 0)
    margin = 8 * S
    ImageDraw.Draw(mask).rounded_rectangle((margin, margin, big - margin, big - margin), radius=52 * S, fill=255)
    img.paste(grad, (0, 0), mask)
    draw = ImageDraw.Draw(img)
    # Skip connection: an arc from the top-left around to the bottom-right, with an arrow.
    box = (46 * S, 46 * S, 210 * S, 210 * S)
    draw.arc(box, start=200, end=340, fill=(45, 212, 191, 255), width=14 * S)
    cx, cy, rad = 128 * S, 128 * S, 82 * S
    ang = math.radians(340)
    tip = (cx + rad * math.cos(ang), cy + rad * math.sin(ang))
    d = 22 * S
    head = [
        (tip[0] + d * math.cos(ang + math.pi / 2 + 0.35), tip[1] + d * math.sin(ang + math.pi / 2 + 0.35)),
        (tip[0] + d * 0.9 * math.cos(ang - 0.9), tip[1] + d * 0.9 * math.sin(ang - 0.9)),
        (tip[0] + d * math.cos(ang - math.pi / 2 - 0.35) * 0.2, tip[1] + d * math.sin(ang - math.pi / 2 - 0.35) * 0.2),
    ]
    draw.polygon(head, fill=(45, 212, 191, 255))
    # The digit.
    left, topy, side = 70 * S, 78 * S, 124 * S
    for stroke in FIVE:
        pts = _smooth([(left + x * side, topy + y * side) for x, y in stroke])
        _pen_path(draw, pts, 17 * S, (255, 255, 255, 255))
    return img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def main() -> None:
    icon = draw_icon()
    icon.save(HERE / "app.png", optimize=True)
    icon.save(HERE / "app.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    print(f"wrote {HERE / 'app.png'} and app.ico")


if __name__ == "__main__":
    main()
