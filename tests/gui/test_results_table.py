"""The batch results table and the panel around it: rows appear when a batch starts,
fill in as results arrive, say what went wrong, and export to CSV."""

from __future__ import annotations

import csv
import errno
import os

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.core.formatting import percent
from app.core.predictor import Prediction
from app.gui.batch_items import BatchItem
from app.gui.batch_panel import BatchPanel
from app.gui.results_table import CANCELLED, PENDING, ResultsTable


def prediction(label: str, conf: float, verdict: str = "ok", message: str = "") -> Prediction:
    return Prediction(
        label, int(label), conf, [(label, conf)], [conf], np.zeros((28, 28), np.uint8),
        verdict=verdict, verdict_message=message,
    )  # fmt: skip


def items(root) -> tuple[list[str], list[BatchItem]]:
    paths = [str(root / "a" / "one.png"), str(root / "b" / "two.png"), str(root / "b" / "bad.png")]
    thumb = np.full((8, 8, 3), 200, np.uint8)
    return paths, [
        BatchItem(paths[0], prediction("1", 0.98), thumbnail=thumb),
        BatchItem(paths[1], prediction("2", 0.51, "unsure", "not sure: 2 or 7?")),
        BatchItem(paths[2], error="cannot read bad.png: not an image"),
    ]


@pytest.fixture
def table(qtbot):
    t = ResultsTable()
    qtbot.addWidget(t)
    return t


def test_rows_show_pending_then_results_with_paths_relative_to_the_batch(table, tmp_path):
    paths, its = items(tmp_path)
    table.results.reset(paths)
    assert table.objectName() == "resultsTable" and table.row_count() == 3
    assert table.row_texts(0) == (os.path.join("a", "one.png"), "", "", PENDING)
    table.results.fill(0, its[:2])
    assert table.row_texts(0) == (os.path.join("a", "one.png"), "1", percent(0.98), "")
    assert table.row_texts(1)[1] == "not sure: 2 or 7?"
    assert table.row_texts(2)[3] == PENDING
    model = table.results
    assert model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole) is not None  # thumbnail
    assert model.data(model.index(1, 1), Qt.ItemDataRole.ToolTipRole) == paths[1]  # the full path
    table.results.fill(2, its[2:])
    assert table.row_texts(2)[3].startswith("cannot read bad.png")
    assert model.done_count() == 3


def test_selecting_a_row_hands_its_result_over(qtbot, table, tmp_path):
    paths, its = items(tmp_path)
    table.results.reset(paths)
    table.results.fill(0, its)
    with qtbot.waitSignal(table.item_selected) as blocker:
        table.selectRow(1)
    assert blocker.args[0] is its[1]


def test_csv_export_has_every_row_and_what_the_app_said(table, tmp_path):
    paths, its = items(tmp_path)
    table.results.reset(paths + [str(tmp_path / "never.png")])
    table.results.fill(0, its)
    table.results.mark_cancelled()
    out = tmp_path / "results.csv"
    assert table.export_csv(out) == 4
    rows = list(csv.reader(out.open(newline="")))
    assert rows[0] == ["path", "label", "confidence", "error", "verdict"]
    assert rows[1] == [paths[0], "1", "0.980000", "", "ok"]
    assert rows[2][4] == "not sure: 2 or 7?"
    assert rows[3][3].startswith("cannot read") and rows[3][1] == ""
    assert rows[4] == [str(tmp_path / "never.png"), "", "", CANCELLED, ""]


def test_the_panel_counts_progress_errors_and_cancellation(qtbot, tmp_path):
    panel = BatchPanel()
    qtbot.addWidget(panel)
    assert panel.objectName() == "batchPanel" and not panel.isVisible()
    panel.scanning(12)
    assert panel.isVisible() and "12 found" in panel.status.text() and panel.is_busy()
    paths, its = items(tmp_path)
    panel.start(paths)
    assert panel.progress.maximum() == 3 and not panel.export_button.isEnabled()
    panel.fill(0, its[:1])
    assert panel.progress.value() == 1
    with qtbot.waitSignal(panel.cancel_requested):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    panel.finish(cancelled=True)
    assert panel.status.text() == "Cancelled: 1 of 3 images classified"
    assert not panel.is_busy() and panel.export_button.isEnabled()
    assert panel.table.row_texts(2)[3] == CANCELLED
    panel.start(paths)
    panel.fill(0, its)
    panel.finish(cancelled=False)
    assert panel.status.text() == "3 images classified, 1 could not be read"


def test_a_failed_export_is_reported_not_raised(qtbot, tmp_path, monkeypatch):
    panel = BatchPanel()
    qtbot.addWidget(panel)
    paths, its = items(tmp_path)
    panel.start(paths)
    panel.fill(0, its)
    panel.finish(False)

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("app.gui.batch_panel.QFileDialog.getSaveFileName", lambda *a, **k: (str(tmp_path / "r.csv"), ""))
    monkeypatch.setattr(panel.table.results, "export_csv", full)
    with qtbot.waitSignal(panel.export_failed) as blocker:
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    assert "No space left on device" in blocker.args[0]
