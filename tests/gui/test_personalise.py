"""Teaching the model: correct a prediction, collect examples, Personalise, keep or discard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.core.modelio import read_card
from app.core.personal import PersonalStore
from app.gui.examples_view import ExamplesView
from app.gui.topk_view import ROW_H
from tests.helpers.data import drawn_digits
from tests.helpers.digits import digit_strokes
from tests.helpers.models import write_model
from tests.helpers.qt_drawing import draw_strokes


def test_correct_a_prediction_by_bar_or_key_and_add_it(classify_tab, qtbot):
    with qtbot.waitSignal(classify_tab.prediction_shown, timeout=30_000):
        draw_strokes(classify_tab.canvas, digit_strokes()["1"])
    bars = classify_tab.result.top_k
    row = [name for name, _ in bars.rows()].index("7")
    QTest.mouseClick(bars, Qt.MouseButton.LeftButton, pos=QPoint(40, row * ROW_H + 2 + ROW_H // 2))
    assert classify_tab.teach.label() == "7"
    QTest.keyClick(classify_tab, Qt.Key.Key_4)
    assert classify_tab.teach.label() == "4"
    with qtbot.waitSignal(classify_tab.example_added) as added:
        QTest.mouseClick(classify_tab.teach.add_button, Qt.MouseButton.LeftButton)
    assert added.args == ["4"]
    examples = PersonalStore().examples("4")
    assert len(examples) == 1 and examples[0].strokes is not None
    assert "Saved as 4 (1 example)" in classify_tab.teach.note.text()


def test_any_label_makes_a_new_class_and_an_empty_canvas_adds_nothing(classify_tab, qtbot):
    assert not classify_tab.add_example("plus")
    assert "Draw something first" in classify_tab.teach.note.text()
    draw_strokes(classify_tab.canvas, [[(0.5, 0.1), (0.5, 0.9)], [(0.1, 0.5), (0.9, 0.5)]])
    classify_tab.teach.choice.setEditText("plus")
    QTest.mouseClick(classify_tab.teach.add_button, Qt.MouseButton.LeftButton)
    assert PersonalStore().counts() == {"plus": 1}
    assert classify_tab.teach.choice.findText("plus") >= 0  # offered from now on
    assert not classify_tab.add_example("a/b") and "cannot contain" in classify_tab.teach.note.text()


@pytest.fixture
def view(qtbot):
    store = PersonalStore()
    data = drawn_digits(6, seed=1)
    for img, y in zip(data.images, data.labels.tolist()):
        if y in (2, 5):
            store.add(str(y), pixels=img[0].numpy())
    for _ in range(6):
        plus = np.zeros((28, 28), np.uint8)
        plus[5:23, 13:15] = plus[13:15, 5:23] = 255
        store.add("+", pixels=plus)
    v = ExamplesView(store)
    qtbot.addWidget(v)
    v.resize(800, 500)
    v.show()
    yield v
    v.shutdown()


def test_examples_are_listed_by_class_with_thumbnails_and_can_be_deleted(view):
    assert [view.classes.item(i).text() for i in range(view.classes.count())] == ["2  (6)", "5  (6)", "+  (6)"]
    assert view.grid.count() == 6 and not view.grid.item(0).icon().isNull()
    view.grid.item(0).setSelected(True)
    view.grid.item(1).setSelected(True)
    assert view.delete_selected() == 2
    assert view.store.counts()["2"] == 4 and view.classes.item(0).text() == "2  (4)"
    assert view.new_class("minus") and view.current_class() == "minus" and view.grid.count() == 0
    assert not view.new_class("..")
    assert not view.personalise_button.isEnabled()  # no model chosen yet


def test_personalise_runs_in_the_trainer_thread_then_keep_or_discard(view, qtbot, tmp_path):
    base = write_model(tmp_path / "base.safetensors")
    view.set_model(str(base))
    assert view.personalise_button.isEnabled()
    with qtbot.waitSignal(view.personalise_button.clicked):
        QTest.mouseClick(view.personalise_button, Qt.MouseButton.LeftButton)
    thread = view.thread
    assert thread is not None and view.stop_button.isEnabled() and not view.personalise_button.isEnabled()
    with qtbot.waitSignal(thread.training_finished, timeout=120_000) as done:
        pass
    qtbot.waitUntil(lambda: view.thread is None, timeout=30_000)
    ev = done.args[0]
    assert ev.comparison["held_out_n"] == 3
    assert "before → after, held-out examples (3)" in view.status.text()
    assert view.keep_button.isVisible() and view.personalise_button.isEnabled()
    card = read_card(ev.model_path)
    assert card.classes[-1] == "+" and card.finetune["base_model"] == "base"
    with qtbot.waitSignal(view.model_kept) as kept:
        QTest.mouseClick(view.keep_button, Qt.MouseButton.LeftButton)
    assert kept.args == [ev.model_path] and not view.keep_button.isVisible()
    # a second run, discarded: its files go
    view.personalise()
    with qtbot.waitSignal(view.thread.training_finished, timeout=120_000) as again:
        pass
    qtbot.waitUntil(lambda: view.thread is None, timeout=30_000)
    second = Path(again.args[0].model_path)
    QTest.mouseClick(view.discard_button, Qt.MouseButton.LeftButton)
    assert not second.exists() and not second.with_suffix(".json").exists()
    assert Path(ev.model_path).exists()  # the kept one stays


def test_pause_then_stop_ends_a_personalise_run_without_a_model(view, qtbot, tmp_path):
    from app.core.events import TrainState

    view.set_model(str(write_model(tmp_path / "base.safetensors")))
    view.pause_button.setChecked(True)  # before the run starts: it pauses at its first step
    view.personalise()
    thread = view.thread
    assert view.pause_button.isEnabled()
    with qtbot.waitSignal(thread.state_changed, timeout=120_000, check_params_cb=lambda ev: ev.state == TrainState.PAUSED):
        pass
    assert "paused" in view.status.text()
    with qtbot.waitSignal(thread.training_finished, timeout=60_000) as done:
        QTest.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.thread is None, timeout=30_000)
    assert done.args[0].model_path is None and "nothing was saved" in view.status.text()
    assert not view.keep_button.isVisible() and view.personalise_button.isEnabled()


def test_a_kept_model_is_used_and_the_selector_switches_back_to_the_base(main_window, qtbot, shipped_model):
    import shutil

    from app.core.resources import user_models_dir

    mine = user_models_dir() / "mnist-resnet-personal-1.safetensors"
    mine.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped_model, mine)
    shutil.copy(shipped_model.with_suffix(".json"), mine.with_suffix(".json"))
    examples = main_window.examples_tab
    assert examples is not None and main_window.tabs.tabText(3) == "My examples"
    with qtbot.waitSignal(main_window.classify_tab.model_loaded, timeout=40_000):
        examples.model_kept.emit(str(mine))
    assert main_window.classify_tab.model_path() == str(mine) and examples._model == str(mine)
    selector = main_window.model_selector
    assert str(shipped_model) in selector.paths() and str(mine) in selector.paths()
    with qtbot.waitSignal(main_window.classify_tab.model_loaded, timeout=40_000):
        selector.select_path(str(shipped_model))
    assert main_window.classify_tab.model_path() == str(shipped_model)


def test_adding_on_the_classify_tab_refreshes_my_examples(main_window, qtbot):
    tab = main_window.classify_tab
    draw_strokes(tab.canvas, digit_strokes()["7"])
    tab.teach.select("7")
    assert tab.add_example("7")
    assert main_window.examples_tab.classes.item(0).text() == "7  (1)"


def test_personalise_goes_on_without_replay_data_and_says_so(qtbot, tmp_path, monkeypatch):
    import app.gui.personalise_thread as pt
    from app.core.data import DataError
    from app.gui.personalise_thread import PersonaliseThread

    store = PersonalStore(tmp_path / "mine")
    data = drawn_digits(2, seed=2)
    for img, y in zip(data.images, data.labels.tolist()):
        store.add(str(y), pixels=img[0].numpy())

    def missing(*_args):
        raise DataError("no mnist data found")

    monkeypatch.setattr(pt, "load_replay", missing)
    thread = PersonaliseThread(write_model(tmp_path / "base.safetensors"), store.root, tmp_path / "out.safetensors", epochs=1)
    thread.replay = "mnist"
    messages = []
    thread.message.connect(messages.append)
    with qtbot.waitSignal(thread.training_finished, timeout=120_000):
        thread.start()
    thread.wait()
    assert any("nothing to replay (no mnist data found)" in m for m in messages)
