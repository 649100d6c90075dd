"""The main window: automation names, model list, shortcuts, settings, clean exit."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

from app.core.resources import user_models_dir
from app.gui.main_window import MainWindow
from tests.helpers.digits import digit_strokes, draw_digit
from tests.helpers.qt_drawing import draw_strokes

NAMES = (
    "tabs classifyTab trainTab canvas clearButton undoButton predictionLabel topKView "
    "modelInputView dropZone resultsTable modelSelector"
).split()


def child(window, name):
    found = window.findChild(QWidget, name)
    assert found is not None, f"no widget named {name!r}"
    return found


def test_automation_names_and_status_bar(main_window, shipped_model):
    for name in NAMES:
        child(main_window, name)
    tabs = child(main_window, "tabs")
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Classify", "Train", "Evaluate", "My examples"]
    assert shipped_model.stem in main_window.model_label.text()
    assert "CPU" in main_window.device_label.text()
    assert child(main_window, "predictionLabel").text() == ""


def test_a_saved_model_is_listed_and_can_be_used_at_once(main_window, qtbot, shipped_model):
    mine = user_models_dir() / "my-digits.safetensors"
    mine.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped_model, mine)
    shutil.copy(shipped_model.with_suffix(".json"), mine.with_suffix(".json"))
    selector = child(main_window, "modelSelector")
    main_window.train_tab.model_saved.emit(str(mine))
    assert str(mine) in selector.paths()
    assert selector.currentText().startswith(shipped_model.stem)  # listed, not switched

    main_window.tabs.setCurrentIndex(1)
    with qtbot.waitSignal(main_window.classify_tab.model_loaded, timeout=40_000):
        main_window.train_tab.use_model_requested.emit(str(mine))
    assert main_window.classify_tab.model_path() == str(mine)
    assert selector.currentText() == "my-digits"
    assert main_window.tabs.currentWidget() is main_window.classify_tab


def test_a_broken_model_is_reported_and_the_old_one_keeps_working(main_window, qtbot):
    bad = user_models_dir() / "broken.safetensors"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"\x80\x02 pickled junk")
    with qtbot.waitSignal(main_window.classify_tab.model_failed, timeout=30_000):
        child(main_window, "modelSelector").select_path(str(bad))
    banner = main_window.classify_tab.banner.text()
    assert "Could not load the model" in banner and "broken" in banner and "Still using" in banner
    with qtbot.waitSignal(main_window.classify_tab.prediction_shown, timeout=30_000):
        draw_strokes(child(main_window, "canvas"), digit_strokes()["1"])
    assert child(main_window, "predictionLabel").text() != ""


def test_keyboard_undo_and_clear(main_window, qtbot):
    canvas = child(main_window, "canvas")
    draw_strokes(canvas, digit_strokes()["4"])
    n = len(canvas.strokes())
    QTest.keyClick(main_window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(canvas.strokes()) == n - 1
    QTest.keyClick(main_window, Qt.Key.Key_Escape)
    assert canvas.is_empty() and child(main_window, "predictionLabel").text() == ""
    draw_strokes(canvas, digit_strokes()["1"])
    QTest.keyClick(main_window, Qt.Key.Key_Delete)
    assert canvas.is_empty()


def test_settings_are_remembered(qtbot, shipped_model):
    window = MainWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.classify_tab.model_loaded, timeout=60_000):
        window.show()
    window.classify_tab.pen_slider.setValue(14)
    window.resize(1000, 760)
    size = window.size()
    window.close()
    again = MainWindow()
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.classify_tab.model_loaded, timeout=60_000):
        again.show()
    try:
        assert again.classify_tab.pen_slider.value() == 14
        assert again.classify_tab.canvas.pen_width() == pytest.approx(0.14)
        # The offscreen screen is 800 px wide: restoring clamps the width, not the height.
        assert again.height() == size.height() != 820
        assert again.settings.last_model == str(shipped_model)
    finally:
        again.close()


def test_closing_while_classifying_stops_the_threads(main_window, qtbot, tmp_path):
    for i in range(150):
        draw_digit(i % 10, 64).save(tmp_path / f"{i:03}.png")
    tab = main_window.classify_tab
    with qtbot.waitSignal(tab._inference.worker.batch_started, timeout=30_000):
        tab.classify_paths([str(tmp_path)])
    assert tab.is_busy()
    main_window.close()
    assert tab._inference.thread.isFinished()
    assert not main_window.train_tab.is_running()


def test_a_damaged_last_model_falls_back_to_the_built_in_one_and_says_why(qtbot, shipped_model, tmp_path):
    from app.gui.settings import AppSettings

    damaged = tmp_path / "mine.safetensors"
    shutil.copy(shipped_model, damaged)
    damaged.with_suffix(".json").write_text('{"arch": "resnet-mnist", "classes": "abc"}')
    AppSettings().last_model = str(damaged)
    window = MainWindow()
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignal(window.classify_tab.model_loaded, timeout=60_000) as loaded:
            window.show()
        assert loaded.args[0] == str(shipped_model)
        note = window.classify_tab.banner.text()
        assert "The last model used, mine, could not be loaded" in note and "classes" in note
        assert "Using the built-in digit model instead" in note
        assert window.model_label.text().startswith("Model: ") and "not loaded" not in window.model_label.text()
    finally:
        window.close()
