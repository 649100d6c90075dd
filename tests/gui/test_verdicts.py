"""How sure the app says it is: the result panel, the batch table and the canvas show
the calibrated probability, "not sure: 4 or 9?" and "this does not look like a digit"
instead of one bold label."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from app.core.predictor import Prediction
from app.gui.batch_items import BatchItem
from app.gui.result_panel import ResultPanel
from app.gui.results_table import ResultsModel
from tests.helpers.qt_drawing import draw_strokes

CLASSES = [str(i) for i in range(10)]


def _prediction(verdict: str, top: list[tuple[str, float]], message: str = "") -> Prediction:
    probs = [0.0] * 10
    for lbl, p in top:
        probs[int(lbl)] = p
    return Prediction(
        top[0][0], int(top[0][0]), top[0][1], top, probs, np.zeros((28, 28), np.uint8),
        verdict=verdict, verdict_message=message, calibrated=True,
    )  # fmt: skip


OK = _prediction("ok", [("7", 0.996), ("1", 0.002)])
UNSURE = _prediction("unsure", [("4", 0.551), ("9", 0.402)], "not sure: 4 or 9?")
FOREIGN = _prediction("foreign", [("0", 0.714), ("8", 0.1)], "this does not look like a digit")


@pytest.fixture
def panel(qtbot):
    p = ResultPanel()
    qtbot.addWidget(p)
    p.set_classes(CLASSES)
    p.show()
    return p


def test_a_confident_answer_is_the_label_and_its_calibrated_probability(panel):
    panel.show_prediction(OK, CLASSES)
    assert panel.prediction_label.text() == "7"
    assert panel.confidence_label.text() == "99.6% confident"
    assert panel.hint_label.isHidden()


def test_not_sure_shows_both_candidates_not_one_bold_label(panel):
    panel.show_prediction(UNSURE, CLASSES)
    assert panel.prediction_label.text() == "4 or 9?"
    assert panel.confidence_label.text() == "Not sure: 4 or 9?"
    assert panel.hint_label.text() == "4 55.1% · 9 40.2%" and not panel.hint_label.isHidden()


def test_an_image_that_is_no_digit_says_so_and_names_the_closest_class(panel):
    panel.show_prediction(FOREIGN, CLASSES)
    assert panel.prediction_label.text() == "?"
    assert panel.confidence_label.text() == "This does not look like a digit"
    assert panel.hint_label.text() == "closest: 0 (71.4%)"
    panel.show_prediction(OK, CLASSES)  # the next answer is plain again
    assert panel.prediction_label.text() == "7" and panel.hint_label.isHidden()


def test_batch_table_rows_and_csv_say_not_sure_and_not_a_digit(qtbot, tmp_path):
    model = ResultsModel()
    model.reset(["a.png", "b.png", "c.png"])
    model.fill(0, [BatchItem("a.png", OK), BatchItem("b.png", UNSURE), BatchItem("c.png", FOREIGN)])
    assert model.status(0) == ("7", "99.6%", "")
    assert model.status(1) == ("not sure: 4 or 9?", "55.1%", "")
    assert model.status(2) == ("this does not look like a digit", "71.4%", "")
    out = tmp_path / "r.csv"
    model.export_csv(out)
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert [r["verdict"] for r in rows] == ["ok", "not sure: 4 or 9?", "this does not look like a digit"]
    assert [r["label"] for r in rows] == ["7", "4", "0"]  # the top class stays in its column


def test_a_hash_sign_on_the_canvas_does_not_look_like_a_digit_and_a_seven_is_sure(classify_tab, qtbot):
    def draw(strokes):
        classify_tab.clear()
        with qtbot.waitSignal(
            classify_tab.prediction_shown, timeout=30_000,
            check_params_cb=lambda rid: rid == classify_tab.last_request_id,
        ):  # fmt: skip
            draw_strokes(classify_tab.canvas, strokes)

    draw([[(0.35, 0.15), (0.3, 0.85)], [(0.65, 0.15), (0.6, 0.85)], [(0.15, 0.38), (0.85, 0.38)], [(0.15, 0.62), (0.85, 0.62)]])
    assert classify_tab.result.prediction_label.text() == "?"
    assert classify_tab.result.confidence_label.text() == "This does not look like a digit"
    draw([[(0.2, 0.2), (0.8, 0.2), (0.45, 0.85)]])
    assert classify_tab.result.prediction_label.text() == "7"
    conf = float(classify_tab.result.confidence_label.text().split("%")[0])
    assert conf >= 98.0  # calibrated: a clear digit no longer shows ~92%
