"""One explanation made ready to show: what the app's views draw for "Show why".

The GUI's inference thread calls `explain_image` (the model never runs in the GUI
thread); the result holds only numpy pictures and numbers, so it can cross threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.core.explain import METHODS, Explanation
from app.core.images import load_image
from app.core.overlay import heat_rgba, input_overlay, overlay
from app.core.placement import warp_to_source

SOURCE_SIDE = 280  # px; the source picture is reduced to at most this for display
INPUT_ZOOM = 5  # the 28x28 input is shown at 140 px, as the result panel's model view


@dataclass(frozen=True)
class ExplanationViews:
    """An explanation and its pictures, all uint8.

    input_overlay: RGB, the model input enlarged INPUT_ZOOM times with the map over it.
    source_overlay: RGB, the source image (at most SOURCE_SIDE px) with the map warped
        back onto the region the model saw.
    source_heat: RGBA, the warped map alone at the same size (transparent where cold),
        for a view that paints its own picture under it (the canvas).
    caption: what was explained, in words ("why 7", "why not 9 (3.1%)").
    """

    explanation: Explanation
    input_overlay: np.ndarray
    source_overlay: np.ndarray
    source_heat: np.ndarray
    caption: str


def caption(e: Explanation, classes: list[str]) -> str:
    """'why 7: Grad-CAM' or 'why not 9 (3.1%): Grad-CAM'."""
    name = classes[e.target] if e.target < len(classes) else str(e.target)
    why = f"why {name}" if e.target == e.predicted else f"why not {name} ({e.probabilities[e.target]:.1%})"
    return f"{why}: {METHODS[e.method]}"


def explain_image(
    predictor,
    image: np.ndarray | Image.Image | str | os.PathLike,
    *,
    clean: bool = False,
    target: int | None = None,
    method: str = "gradcam",
) -> ExplanationViews:
    """Prepares `image` as the Predictor does, explains it and draws the pictures.

    Args:
        predictor: a `Predictor` (prepare, explain, classes).
        image: pixels (a canvas drawing, a pasted image) or a file path (read again here).
        clean: a canvas drawing (the fast preprocessing path, as `predict(clean=True)`).
        target: the class to explain; None: the predicted one.
        method: "gradcam" or "ig" (signed: blue is evidence against the class).

    Raises:
        ValueError: nothing to explain (a blank image), bad target or method.
        ImageLoadError: the file cannot be read.
    """
    source = load_image(image) if isinstance(image, (str, os.PathLike)) else image
    prepared = predictor.prepare(source, clean)
    e = predictor.explain(prepared, target, method)
    signed = method == "ig"
    values = e.attribution if signed else e.heatmap
    pil = source if isinstance(source, Image.Image) else Image.fromarray(np.asarray(source))
    sw, sh = pil.size
    f = min(1.0, SOURCE_SIDE / max(sw, sh))
    size = (max(1, round(sw * f)), max(1, round(sh * f)))
    shown = pil.convert("RGB").resize(size, Image.Resampling.BOX if f < 1 else Image.Resampling.NEAREST)
    assert prepared.placement is not None  # a prepared, non-blank image has one
    warped = warp_to_source(np.asarray(values, dtype=np.float32), prepared.placement, size)
    return ExplanationViews(
        e,
        np.asarray(input_overlay(prepared.pixels, values, zoom=INPUT_ZOOM, signed=signed)),
        overlay(shown, warped, signed=signed),
        heat_rgba(warped, signed=signed),
        caption(e, predictor.classes),
    )
