"""The core's stroke renderer draws what the canvas draws (the same model input)."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.preprocess import prepare
from app.core.strokes import Drawing, prepared_pixels, render
from app.gui.canvas import DrawingCanvas
from tests.helpers.digits import digit_strokes


@pytest.mark.parametrize("digit", ["0", "4", "7", "8"])
def test_saved_strokes_render_to_the_canvas_input(qtbot, digit):
    canvas = DrawingCanvas()
    qtbot.addWidget(canvas)
    canvas._strokes = [list(s) for s in digit_strokes()[digit]]  # as drawn with the mouse
    drawing = Drawing.of(canvas.strokes(), canvas.pen_width())
    qt = canvas.render_array().astype(int)
    ours = render(drawing).astype(int)
    assert np.abs(qt - ours).mean() < 1.0  # of 255: antialiasing differs only at edges
    model_qt = prepare(qt.astype(np.uint8), clean=True).pixels.astype(int)
    model_ours = prepared_pixels(drawing).astype(int)
    assert np.abs(model_qt - model_ours).max() <= 12
    assert np.abs(model_qt - model_ours).mean() < 0.5
