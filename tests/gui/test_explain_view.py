""""Show why" on the Classify tab: heat over the drawing and the model input, "why not
9?" from the probability bars, dropped images, and off again."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.gui.qt_image import qimage_to_array
from app.gui.topk_view import ROW_H
from tests.helpers.digits import digit_strokes, draw_digit
from tests.helpers.qt_drawing import draw_strokes


def explained(tab, qtbot):
    panel = tab.explain
    return qtbot.waitSignal(
        panel.explanation_shown, timeout=30_000, check_params_cb=lambda rid: rid == panel.last_request_id
    )


def click_row(tab, index: int) -> None:
    QTest.mouseClick(tab.result.top_k, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(40, 2 + index * ROW_H + ROW_H // 2))  # fmt: skip


def test_show_why_puts_the_heat_on_the_strokes_and_the_model_input(classify_tab, qtbot):
    tab = classify_tab
    tab.explain.toggle.setChecked(True)
    # a small 7 in the left part of the paper: the map must come back there
    small = [[(0.05 + 0.3 * x, 0.3 + 0.4 * y) for x, y in s] for s in digit_strokes()["7"]]
    with explained(tab, qtbot):
        draw_strokes(tab.canvas, small, fill=1.0)
    assert tab.result.prediction_label.text() == "7"
    assert tab.explain.caption.text().startswith("Why 7")
    assert tab.result.model_input.overlay() is not None
    heat = qimage_to_array(tab.canvas.heat())[..., 3].astype(float)
    ink = tab.canvas.render_array() < 128  # the drawing, in the heat layer's pixels
    assert heat.shape == ink.shape and heat.sum() > 0
    cx = (heat.sum(0) * np.arange(heat.shape[1])).sum() / heat.sum() / heat.shape[1]
    ink_x = np.nonzero(ink)[1] / ink.shape[1]
    assert ink_x.min() < cx < ink_x.max(), "the heat must sit on the digit"
    assert heat[:, heat.shape[1] // 2 :].sum() < 0.02 * heat.sum(), "not on the empty right half"


def test_clicking_a_bar_asks_why_not_and_clicking_again_returns(classify_tab, qtbot):
    tab = classify_tab
    with qtbot.waitSignal(tab.prediction_shown, timeout=30_000):
        draw_strokes(tab.canvas, digit_strokes()["7"])
    assert not tab.explain.toggle.isChecked()
    with explained(tab, qtbot):
        click_row(tab, 9)  # ten digits: row i is class i
    assert tab.explain.toggle.isChecked() and tab.explain.target() == 9
    assert tab.explain.caption.text().startswith("Why not 9 (")
    before = tab.result.model_input.overlay()
    with explained(tab, qtbot):
        click_row(tab, 9)
    assert tab.explain.target() is None and tab.explain.caption.text().startswith("Why 7")
    assert tab.result.model_input.overlay() != before


def test_switching_off_and_clearing_remove_the_heat(classify_tab, qtbot):
    tab = classify_tab
    tab.explain.toggle.setChecked(True)
    with explained(tab, qtbot):
        draw_strokes(tab.canvas, digit_strokes()["3"])
    tab.explain.toggle.setChecked(False)
    assert tab.canvas.heat() is None and tab.result.model_input.overlay() is None
    tab.explain.toggle.setChecked(True)
    with explained(tab, qtbot):
        pass
    assert tab.canvas.heat() is not None
    tab.clear()
    assert tab.canvas.heat() is None


def test_a_dropped_file_gets_the_heat_on_the_image(classify_tab, qtbot, tmp_path):
    tab = classify_tab
    tab.explain.toggle.setChecked(True)
    draw_digit(2, 200).save(tmp_path / "two.png")
    with explained(tab, qtbot):
        tab.classify_paths([str(tmp_path / "two.png")])
    assert tab.canvas.heat() is None
    shown = qimage_to_array(tab.result.found_view.pixmap().toImage())
    assert shown.ndim == 3 and (np.abs(shown[..., 0].astype(int) - shown[..., 2]) > 40).any(), "no colour"
    assert tab.explain.caption.text().startswith("Why 2")


def test_while_drawing_the_canvas_is_explained_once_it_is_still(classify_tab, qtbot):
    tab = classify_tab
    tab.explain.toggle.setChecked(True)
    with explained(tab, qtbot):
        draw_strokes(tab.canvas, digit_strokes()["1"])
    before = tab.explain.last_request_id
    for _ in range(5):  # five live predictions in a row, as while a stroke is drawn
        tab.explain.show_canvas()
    assert tab.explain.last_request_id == before  # nothing asked yet: the model stays free
    with explained(tab, qtbot):
        pass
    assert tab.explain.last_request_id == before + 1
