"""The handwriting canvas: strokes from mouse events, undo, clear, pen width."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.preprocess import stroke_width
from app.gui.canvas import DrawingCanvas
from tests.helpers.digits import digit_strokes
from tests.helpers.qt_drawing import draw_strokes


@pytest.fixture
def canvas(qtbot):
    c = DrawingCanvas()
    qtbot.addWidget(c)
    c.resize(400, 400)
    c.show()
    qtbot.waitExposed(c)
    return c


def test_mouse_strokes_become_ink(canvas, qtbot):
    assert canvas.is_empty() and canvas.render_array().min() == 255
    with qtbot.waitSignals([canvas.stroke_finished, canvas.stroke_finished]):
        draw_strokes(canvas, digit_strokes()["4"])
    assert len(canvas.strokes()) == len(digit_strokes()["4"])
    ink = canvas.render_array() < 128
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    # drawn into the middle 70%: the ink spans most of that and stays inside the paper
    assert 0.5 < (rows[-1] - rows[0]) / ink.shape[0] < 0.85
    assert 0.05 < rows[0] / ink.shape[0] and cols[0] / ink.shape[1] > 0.05


def test_undo_removes_the_last_stroke_and_clear_everything(canvas, qtbot):
    draw_strokes(canvas, digit_strokes()["4"])
    n = len(canvas.strokes())
    before = canvas.render_array()
    with qtbot.waitSignal(canvas.drawing_changed):
        canvas.undo()
    assert len(canvas.strokes()) == n - 1
    assert (canvas.render_array() < 128).sum() < (before < 128).sum()
    canvas.clear()
    assert canvas.is_empty() and canvas.render_array().min() == 255
    with qtbot.assertNotEmitted(canvas.drawing_changed):
        canvas.undo()  # nothing left to undo: nothing happens


def test_default_pen_draws_mnist_like_strokes(canvas):
    """A digit filling the canvas has strokes about 1/12 to 1/10 of the side thick."""
    draw_strokes(canvas, digit_strokes()["1"], fill=0.9)
    a = canvas.render_array()
    width = stroke_width(a < 128) / a.shape[0]
    assert 1 / 14 < width < 1 / 9


def test_pen_width_is_clamped_and_redraws(canvas, qtbot):
    draw_strokes(canvas, digit_strokes()["1"])
    thin = (canvas.render_array() < 128).sum()
    with qtbot.waitSignal(canvas.drawing_changed):
        canvas.set_pen_width(0.15)
    assert (canvas.render_array() < 128).sum() > thin
    canvas.set_pen_width(5.0)
    assert canvas.pen_width() <= 0.25
