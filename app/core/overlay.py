"""Heat maps drawn over images, with numpy and PIL only (no matplotlib in the app).

Positive maps (Grad-CAM, the positive part of integrated gradients) use a black-body
ramp, dark red -> orange -> yellow, whose opacity grows with the value, so cold
regions leave the image as it is. Signed maps (integrated gradients) add blue for
evidence against the class.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.core.explain import METHODS, Explanation
from app.core.placement import Placement, warp_to_source

# (value, RGB) anchors, interpolated linearly into 256-entry tables
_HOT = [(0.0, (0.35, 0.0, 0.05)), (0.35, (0.85, 0.1, 0.05)), (0.7, (1.0, 0.6, 0.0)), (1.0, (1.0, 1.0, 0.35))]
_COLD = [(0.0, (0.0, 0.1, 0.4)), (0.5, (0.1, 0.35, 1.0)), (1.0, (0.45, 0.95, 1.0))]
MAX_OPACITY = 0.75  # the hottest pixel still lets the image through
GAMMA = 1.0  # opacity grows linearly with the value: cold regions stay clear


def _lut(anchors: list[tuple[float, tuple[float, float, float]]]) -> np.ndarray:
    xs = np.linspace(0.0, 1.0, 256)
    pos = [a[0] for a in anchors]
    return np.stack([np.interp(xs, pos, [a[1][c] for a in anchors]) for c in range(3)], 1).astype(np.float32)


HOT_LUT, COLD_LUT = _lut(_HOT), _lut(_COLD)


def _rgb(image: np.ndarray | Image.Image) -> np.ndarray:
    """Any image as float RGB (H, W, 3) in [0, 1]; uint8 is scaled."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.shape[2] == 4:
        a = a[..., :3]
    return np.clip(a, 0.0, 1.0)


def _colour(v: np.ndarray, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Colour (H, W, 3) and opacity (H, W), floats in [0, 1], of a map."""
    # Pixel attributions have a few extreme pixels; scaling to the 99th percentile of
    # the magnitude (Captum's outlier_perc) keeps the rest of the strokes visible.
    top = float(np.percentile(np.abs(v), 99)) if signed else float(v.max(initial=0.0))
    if signed and top <= 0:
        top = float(np.abs(v).max(initial=0.0))
    v = v / top if top > 0 else np.zeros_like(v)
    pos = np.clip(v, 0.0, 1.0)
    color = HOT_LUT[np.rint(pos * 255).astype(np.int64)]
    alpha = MAX_OPACITY * pos**GAMMA
    if signed:
        neg = np.clip(-v, 0.0, 1.0)
        use_cold = neg > pos
        color = np.where(use_cold[..., None], COLD_LUT[np.rint(neg * 255).astype(np.int64)], color)
        alpha = np.where(use_cold, MAX_OPACITY * neg**GAMMA, alpha)
    return color, alpha


def overlay(image: np.ndarray | Image.Image, values: np.ndarray, *, signed: bool = False) -> np.ndarray:
    """Draws a map over an image of the same size.

    Args:
        image: gray or RGB, uint8 or float in [0, 1], (H, W[, C]) (or a PIL image).
        values: (H, W) map; positive maps are scaled to their maximum, signed ones to
            the 99th percentile of their magnitude (negative values drawn blue).

    Returns:
        uint8 RGB (H, W, 3): the image as gray, the map in colour over it.
    """
    base = _rgb(image)
    v = np.asarray(values, dtype=np.float32)
    if v.shape != base.shape[:2]:
        raise ValueError(f"map {v.shape} and image {base.shape[:2]} differ in size")
    gray = base.mean(2, keepdims=True).repeat(3, 2)  # colour would compete with the map
    color, alpha = _colour(v, signed)
    out = gray * (1.0 - alpha[..., None]) + color * alpha[..., None]
    return np.rint(np.clip(out, 0.0, 1.0) * 255).astype(np.uint8)


def input_overlay(pixels: np.ndarray, values: np.ndarray, *, zoom: int = 10, signed: bool = False) -> Image.Image:
    """The model input, enlarged `zoom` times with square pixels, and the map over it
    (bilinear, so a 28x28 map reads as a smooth field over the blocky input)."""
    px = np.asarray(pixels)
    h, w = px.shape[:2]
    big = Image.fromarray(px if px.ndim == 2 else px[..., :3]).resize((w * zoom, h * zoom), Image.Resampling.NEAREST)
    v = Image.fromarray(np.asarray(values, dtype=np.float32), mode="F")
    v_big = np.asarray(v.resize((w * zoom, h * zoom), Image.Resampling.BILINEAR))
    return Image.fromarray(overlay(big, v_big, signed=signed))


def source_overlay(
    source: Image.Image, values: np.ndarray, placement: Placement, *, max_side: int = 560, signed: bool = False
) -> Image.Image:
    """The original image (downscaled to at most `max_side`) with the map warped back
    onto the region the model saw; the rest of the image keeps its own pixels."""
    sw, sh = placement.source_size
    f = min(1.0, max_side / max(sw, sh))
    size = (max(1, round(sw * f)), max(1, round(sh * f)))
    shown = source.convert("RGB").resize(size, Image.Resampling.BOX if f < 1 else Image.Resampling.NEAREST)
    warped = warp_to_source(np.asarray(values, dtype=np.float32), placement, size)
    return Image.fromarray(overlay(shown, warped, signed=signed))


def sheet(panels: list[Image.Image], caption: str, *, height: int = 280, pad: int = 8) -> Image.Image:
    """Panels side by side at one height, under a one-line caption (a PNG per input)."""
    scaled = [p.resize((max(1, round(p.width * height / p.height)), height), Image.Resampling.BILINEAR) if p.height != height else p for p in panels]
    font = ImageFont.load_default()
    text_h = 18
    width = sum(p.width for p in scaled) + pad * (len(scaled) + 1)
    out = Image.new("RGB", (width, height + text_h + 2 * pad), (255, 255, 255))
    ImageDraw.Draw(out).text((pad, pad // 2 + 2), caption, fill=(0, 0, 0), font=font)
    x = pad
    for p in scaled:
        out.paste(p, (x, text_h + pad))
        x += p.width + pad
    return out


def explanation_sheet(
    explanation: Explanation,
    pixels: np.ndarray,
    classes: list[str],
    source: Image.Image | None = None,
    placement: Placement | None = None,
) -> Image.Image:
    """One picture per explained image: the model input with the map, and the original
    image with the map warped back (when its placement is known), under a caption that
    says what was explained. Integrated gradients are drawn signed (blue: against)."""
    e = explanation
    signed = e.method == "ig"
    values = e.attribution if signed else e.heatmap
    panels = [input_overlay(pixels, values, signed=signed)]
    if source is not None and placement is not None:
        panels.append(source_overlay(source, values, placement, signed=signed))
    name = METHODS[e.method] + (f" on {e.layer}" if e.layer else "")
    why = f"why {classes[e.target]}" if e.target == e.predicted else (
        f"why not {classes[e.target]} ({e.probabilities[e.target]:.1%})"
    )
    caption = f"predicted {classes[e.predicted]} ({e.probabilities[e.predicted]:.1%}); {why}: {name}"
    if signed:
        caption += "; red for, blue against"
    return sheet(panels, caption)


def heat_rgba(values: np.ndarray, *, signed: bool = False) -> np.ndarray:
    """The map alone as uint8 RGBA (H, W, 4), transparent where it is cold: a layer for
    a view to paint over its own picture (the canvas). Colours and scaling as `overlay`."""
    color, alpha = _colour(np.asarray(values, dtype=np.float32), signed)
    rgba = np.concatenate([color, alpha[..., None]], axis=2)
    return np.rint(np.clip(rgba, 0.0, 1.0) * 255).astype(np.uint8)
