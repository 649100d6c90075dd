"""The Evaluate tab: a model file on an image folder, off the GUI thread; the confusion
matrix opens its cells as a gallery worst first, with saliency, a large view,
precision/recall/F1 and the suspect-label list with its CSV export."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialog

from app.core.datarequest import DataRequest
from app.core.evaluation_run import EvalSource
from app.core.folders import folder_spec
from tests.helpers.digits import draw_digit
from tests.helpers.models import write_model


@pytest.fixture
def source(tmp_path) -> EvalSource:
    root = tmp_path / "digits"
    for c, d in zip("abc", (1, 4, 7)):
        (root / c).mkdir(parents=True)
        for i in range(5):
            draw_digit((d + i) % 10, 40 + 4 * i).save(root / c / f"{c}{i}.png")
    model = write_model(tmp_path / "m.safetensors", classes=list("abc"), spec=folder_spec(28, 1))
    return EvalSource(str(model), DataRequest(str(root)))


@pytest.fixture
def view(qtbot):
    from app.gui.evaluate_view import EvaluateView

    v = EvaluateView()
    qtbot.addWidget(v)
    v.resize(1100, 700)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.shutdown()


def evaluated(view, qtbot, source, cell=None):
    with qtbot.waitSignal(view.evaluation_done, timeout=60_000):
        view.evaluate(source, cell)
    return view.outcome()


def test_an_evaluation_fills_the_matrix_metrics_and_suspects(view, qtbot, source):
    out = evaluated(view, qtbot, source)
    assert out is not None and sum(map(sum, view.confusion.matrix())) == 15
    assert [r[0] for r in sorted(view.metrics.values())] == list("abc")
    assert all(r[4] == 5 for r in view.metrics.values())
    from app.core.mistakes import precision_recall_f1

    _, recall, f1 = precision_recall_f1(out.scores.confusion())
    assert [r[2] for r in view.metrics.values()] == pytest.approx(recall, abs=5e-4)
    assert [r[3] for r in view.metrics.values()] == pytest.approx(f1, abs=5e-4)
    losses = [s.score for s in view.suspects.suspects()]
    assert len(losses) == 15 and losses == sorted(losses, reverse=True)
    assert not view.suspects.table.item(0, 1).icon().isNull()  # a thumbnail beside the file
    assert "right on 15 images" in view.summary.text()


def test_clicking_a_cell_shows_its_images_worst_first(view, qtbot, source):
    out = evaluated(view, qtbot, source)
    conf = out.scores.confusion()
    i, j = max(((a, b) for a in range(3) for b in range(3)), key=lambda c: conf[c])
    QTest.mouseClick(view.confusion, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     view.confusion.cell_center(i, j).toPoint())  # fmt: skip
    g = view.gallery
    assert g.count() == conf[i, j] > 0
    loss = out.scores.loss[g.model.rows()]
    assert (np.diff(loss) <= 1e-9).all(), "worst first"
    assert f"true {'abc'[i]}, predicted {'abc'[j]}" in g.title.text()
    assert g.view.model().data(g.view.model().index(0), Qt.ItemDataRole.DecorationRole) is not None


def test_saliency_thumbnails_arrive_and_double_click_opens_the_image_large(view, qtbot, source):
    out = evaluated(view, qtbot, source)
    conf = out.scores.confusion()
    fullest = divmod(int(conf.argmax()), 3)
    evaluated(view, qtbot, source, cell=fullest)  # opens this cell when done
    g = view.gallery
    n = g.count()
    assert n == conf[fullest] and view.confusion._selected == fullest
    g.saliency_toggle.setChecked(True)
    qtbot.waitUntil(lambda: all(g.model.saliency(r) is not None for r in range(n)), timeout=30_000)
    assert g.model.saliency(0).shape == (84, 84, 3)
    rect = g.view.visualRect(g.model.index(0))
    with qtbot.waitSignal(g.image_opened, timeout=5_000):
        QTest.mouseClick(g.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
        QTest.mouseDClick(g.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    dialogs = [w for w in g.findChildren(QDialog) if w.isVisible()]
    assert dialogs and dialogs[-1].objectName() == "galleryImageDialog"
    assert len(dialogs[-1].findChildren(type(g.title))) == 3  # image, saliency, caption
    dialogs[-1].close()


def test_suspects_export_to_csv_and_point_at_the_folder(view, qtbot, source, tmp_path):
    evaluated(view, qtbot, source)
    out = tmp_path / "suspects.csv"
    assert view.suspects.export_csv(str(out))
    rows = list(csv.reader(out.open()))
    assert len(rows) == 16 and rows[1][1] == view.suspects.suspects()[0].path
    view.suspects.table.selectRow(0)
    assert view.suspects.location_url().toLocalFile() == str(tmp_path / "digits" / rows[1][1].split("/")[-2])
    with qtbot.waitSignal(view.suspects.export_failed) as b:
        view.suspects.export_csv(str(out / "x.csv"))  # a file is no folder
    assert "Could not write" in b.args[0]


def test_a_bad_model_file_is_a_message_not_a_crash(view, qtbot, source, tmp_path):
    from dataclasses import replace

    evaluated(view, qtbot, replace(source, model=str(tmp_path / "missing.safetensors")))
    assert view.outcome() is None and "missing" in view.banner.text()
    assert view.run_button.isEnabled()
