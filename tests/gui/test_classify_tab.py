"""The Classify tab with the shipped model: drawing, live prediction, images, batches."""

from __future__ import annotations

import csv
import shutil

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.gui.qt_image import array_to_qimage
from tests.helpers.digits import digit_strokes, draw_digit
from tests.helpers.qt_drawing import catmull_rom, draw_strokes


def shown(tab, qtbot):
    """Waits until the newest canvas request's result is on screen."""
    return qtbot.waitSignal(
        tab.prediction_shown, timeout=30_000, check_params_cb=lambda rid: rid == tab.last_request_id
    )


def prediction(tab) -> str:
    return tab.result.prediction_label.text()


def test_drawn_digits_are_recognised(classify_tab, qtbot):
    read = {}
    for digit in "0123456789":
        classify_tab.clear()
        with shown(classify_tab, qtbot):
            draw_strokes(classify_tab.canvas, digit_strokes()[digit])
        read[digit] = prediction(classify_tab)
        assert read[digit] in [str(i) for i in range(10)]
        assert classify_tab.result.model_input.image() is not None
    misses = {d: r for d, r in read.items() if d != r}
    assert len(misses) <= 1, f"misread drawn digits (drawn: read): {misses}"


def test_empty_canvas_shows_a_hint_not_a_class(classify_tab, qtbot):
    assert prediction(classify_tab) == ""
    assert "Draw" in classify_tab.result.hint_label.text()
    with shown(classify_tab, qtbot):
        draw_strokes(classify_tab.canvas, digit_strokes()["7"])
    assert prediction(classify_tab) != ""
    QTest.mouseClick(classify_tab.clear_button, Qt.MouseButton.LeftButton)
    assert prediction(classify_tab) == "" and "Draw" in classify_tab.result.hint_label.text()
    assert classify_tab.canvas.is_empty()


def test_undo_button_updates_the_prediction(classify_tab, qtbot):
    with shown(classify_tab, qtbot):
        draw_strokes(classify_tab.canvas, digit_strokes()["4"])
    assert len(classify_tab.canvas.strokes()) == 2
    with shown(classify_tab, qtbot):
        QTest.mouseClick(classify_tab.undo_button, Qt.MouseButton.LeftButton)
    assert len(classify_tab.canvas.strokes()) == 1
    QTest.mouseClick(classify_tab.undo_button, Qt.MouseButton.LeftButton)
    assert classify_tab.canvas.is_empty() and prediction(classify_tab) == ""


def test_prediction_updates_live_before_the_stroke_ends(classify_tab, qtbot):
    canvas = classify_tab.canvas
    r = canvas.paper_rect()
    path = catmull_rom(digit_strokes()["0"][0])
    at = [QPoint(round(r.x() + (0.15 + 0.7 * x) * r.width()), round(r.y() + (0.15 + 0.7 * y) * r.width())) for x, y in path]
    with qtbot.waitSignal(classify_tab.prediction_shown, timeout=30_000):
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at[0])
        for p in at[1:]:
            QTest.mouseMove(canvas, p)
    assert prediction(classify_tab) != ""  # the button is still held
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at[-1])


def test_a_blank_image_shows_why(classify_tab, qtbot, tmp_path):
    draw_digit(3, paper=255, ink=255).save(tmp_path / "white.png")
    with qtbot.waitSignal(classify_tab.batch_done, timeout=30_000):
        classify_tab.classify_paths([str(tmp_path / "white.png")])
    assert prediction(classify_tab) == ""
    assert "no handwriting found on this image" in classify_tab.result.hint_label.text()


def test_a_dropped_photo_shows_where_the_digit_was_found(classify_tab, qtbot, tmp_path):
    """A photo with two digits: the larger is classified, the note says two were found,
    and the image beside the model's input has the found region boxed in red."""
    from PIL import Image

    page = Image.new("RGB", (900, 700), (244, 240, 230))
    for digit, box, pen in ((3, (150, 120, 200, 260), 16), (7, (620, 400, 90, 120), 9)):
        ink = draw_digit(digit, box[2:], box=(0, 0, *box[2:]), pen=pen)
        page.paste((25, 35, 110), box[:2], Image.eval(ink, lambda v: 255 - v))
    page.save(tmp_path / "photo.jpg", quality=80)
    with qtbot.waitSignal(classify_tab.batch_done, timeout=30_000):
        classify_tab.classify_paths([str(tmp_path / "photo.jpg")])
    assert prediction(classify_tab) == "3"
    assert "Found 2 digits" in classify_tab.result.hint_label.text()
    view = classify_tab.result.found_view
    assert view.isVisibleTo(classify_tab) and view.pixmap() is not None
    shown = view.pixmap().toImage()
    red = [shown.pixelColor(x, y) for x in range(shown.width()) for y in range(shown.height())]
    assert sum(1 for c in red if c.red() > 180 and c.green() < 90 and c.blue() < 90) > 20  # the box
    # Drawing on the canvas again hides the photo view: the canvas is its own image.
    draw_strokes(classify_tab.canvas, digit_strokes()["1"])
    qtbot.waitUntil(lambda: not view.isVisibleTo(classify_tab), timeout=10_000)


# --- dropped files ------------------------------------------------------------------------------


def drop(widget, paths, qtbot) -> None:
    """A real drag-enter + drop of file URLs onto the widget."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    assert event.isAccepted()


@pytest.fixture
def digit_files(tmp_path):
    """Dark digits on white as PNG and JPEG, and one corrupt file."""
    folder = tmp_path / "scans"
    (folder / "more").mkdir(parents=True)
    files = []
    for d in range(10):
        p = folder / ("more" if d >= 5 else ".") / f"digit-{d}.{'jpg' if d % 2 else 'png'}"
        draw_digit(d, 200).save(p)
        files.append(p)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder, files


def test_dropping_one_image_shows_its_thumbnail_and_result(classify_tab, qtbot, digit_files):
    _, files = digit_files
    with qtbot.waitSignal(classify_tab.batch_done, timeout=30_000):
        drop(classify_tab.drop_zone, [files[3]], qtbot)
    assert prediction(classify_tab) == "3"
    assert "3" in classify_tab.drop_zone.detail_text()
    assert classify_tab.drop_zone.findChild(object, "dropThumbnail").pixmap() is not None
    assert not classify_tab.batch.isVisible()  # one image: no table


def test_dropping_a_folder_fills_the_table_and_exports_csv(classify_tab, qtbot, digit_files, tmp_path):
    folder, files = digit_files
    with qtbot.waitSignal(classify_tab.batch_done, timeout=40_000) as done:
        drop(classify_tab.drop_zone, [folder], qtbot)
    assert done.args[1] is False  # not cancelled
    table = classify_tab.findChild(object, "resultsTable")
    assert table.isVisible() and table.row_count() == 11
    rows = {table.row_texts(r)[0]: table.row_texts(r) for r in range(table.row_count())}
    assert "could not" in classify_tab.batch.status.text()
    assert rows["broken.png"][1] == "" and "not a recognised image" in rows["broken.png"][3]
    right = sum(rows[f"{'more/' if d >= 5 else ''}digit-{d}.{'jpg' if d % 2 else 'png'}"][1] == str(d) for d in range(10))
    assert right >= 9
    assert classify_tab.batch.progress.value() == 11

    out = tmp_path / "results.csv"
    assert classify_tab.export_csv(str(out)) == 11
    with open(out, newline="", encoding="utf-8") as f:
        lines = list(csv.DictReader(f))
    assert [list(r) for r in lines[:1]] == [["path", "label", "confidence", "error", "verdict"]]
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in lines}
    assert by_name["broken.png"]["label"] == "" and by_name["broken.png"]["error"]
    assert by_name["digit-3.jpg"]["label"] == "3" and 0.5 < float(by_name["digit-3.jpg"]["confidence"]) <= 1

    # selecting a row shows that image's full result
    table.selectRow(list(rows).index("digit-3.jpg") if "digit-3.jpg" in rows else 0)
    assert prediction(classify_tab) == table.row_texts(table.currentIndex().row())[1]


def test_cancel_stops_a_batch_between_files(classify_tab, qtbot, digit_files):
    folder, files = digit_files
    for i in range(120):
        shutil.copy(files[i % 10], folder / f"copy-{i:03}{files[i % 10].suffix}")
    worker = classify_tab._inference.worker
    # Cancel from the worker thread as the first rows come out: deterministic, no timing.
    worker.batch_rows.connect(lambda *_: classify_tab.cancel_batch(), Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(classify_tab.batch_done, timeout=40_000) as done:
        classify_tab.classify_paths([str(folder)])
    assert done.args[1] is True
    results = classify_tab.batch.table.results
    assert 0 < results.done_count() < results.rowCount() == 131
    assert "Cancelled" in classify_tab.batch.status.text()
    assert classify_tab.batch.table.row_texts(130)[3] == "not classified (cancelled)"
    assert not classify_tab.batch.cancel_button.isEnabled()


def test_pasted_image_data_is_classified(classify_tab, qtbot):
    import numpy as np

    QApplication.clipboard().setImage(array_to_qimage(np.asarray(draw_digit(5, 160))))
    with qtbot.waitSignal(classify_tab.batch_done, timeout=30_000):
        classify_tab.paste()
    assert prediction(classify_tab) == "5"
    assert classify_tab.result.findChild(object, "predictionSource").text() == "pasted image"


def test_pasted_file_url_is_classified(classify_tab, qtbot, digit_files):
    _, files = digit_files
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(files[8]))])
    QApplication.clipboard().setMimeData(mime)
    with qtbot.waitSignal(classify_tab.batch_done, timeout=30_000):
        classify_tab.paste()
    assert prediction(classify_tab) == "8"
