"""Strokes without Qt: checking, JSON round trip, and rendering the canvas's way."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.strokes import Drawing, StrokesError, coverage, polyline, prepared_pixels, render
from tests.helpers.digits import digit_strokes


def test_json_round_trip_keeps_the_drawing():
    d = Drawing.of(digit_strokes()["4"], 0.1)
    back = Drawing.from_json(d.to_json())
    assert back.pen_width == 0.1 and len(back.strokes) == len(d.strokes)
    assert np.allclose(np.asarray(back.strokes[0]), np.asarray(d.strokes[0]), atol=1e-5)


@pytest.mark.parametrize(
    "strokes, pen, message",
    [([], 0.09, "at least one stroke"), ([[]], 0.09, "no points"), ([[(0.1, "x")]], 0.09, "two numbers"),
     ([[(0.1, float("nan"))]], 0.09, "two numbers"), ([[(0.1, 0.2)]], 0.0, "pen width")],
)  # fmt: skip
def test_bad_strokes_are_refused_with_a_reason(strokes, pen, message):
    with pytest.raises(StrokesError, match=message):
        Drawing.of(strokes, pen)


def test_not_a_strokes_file_is_refused():
    for text in ("{", "[1, 2]", '{"format": 99, "strokes": [[[0, 0]]]}'):
        with pytest.raises(StrokesError):
            Drawing.from_json(text)


def test_points_outside_the_paper_are_clamped():
    d = Drawing.of([[(-1.0, 0.5), (2.0, 0.5)]])
    assert d.strokes[0] == ((0.0, 0.5), (1.0, 0.5))


def test_a_line_renders_with_the_pen_width_and_round_caps():
    d = Drawing.of([[(0.2, 0.5), (0.8, 0.5)]], pen_width=0.1)
    cov = coverage(d, 100)
    column = cov[:, 50]
    assert 9.0 <= column.sum() <= 11.0  # 10 px wide
    row = cov[50]
    assert 69.0 <= row.sum() <= 71.0  # 60 px long + two 5 px caps
    img = render(d, 100)
    assert img.dtype == np.uint8 and img.max() == 255 and img.min() == 0x11


def test_curves_pass_through_midpoints_like_the_canvas_path():
    pts = [(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]
    line = polyline(pts, 10.0)
    assert tuple(line[0]) == (0.0, 0.0) and tuple(line[-1]) == (10.0, 0.0)
    # a quadratic curve from (0,0) via control (5,10) to the midpoint (7.5, 5), then a line
    assert np.allclose(line[-2], (7.5, 5.0))
    assert len(line) > 5


def test_a_drawn_digit_becomes_an_mnist_like_input():
    px = prepared_pixels(Drawing.of(digit_strokes()["7"]))
    assert px.shape == (28, 28) and px.max() == 255
    rows = np.flatnonzero((px > 40).any(1))
    assert 18 <= rows[-1] - rows[0] + 1 <= 21  # the 20 px box
    assert prepared_pixels(Drawing.of([[(0.5, 0.5)]], 0.01)) is None  # a speck is blank
