"""A Train-tab confusion cell opens the saved model's images of that cell in the
Evaluate tab, on the same held-out images the matrix counted."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.gui.test_train_tab import TIMEOUT_MS, fill_quick_run
from tests.gui.train_fixtures import *  # noqa: F403 - pytest fixtures (mnist_dir, ...)


def test_a_train_tab_cell_opens_its_images_in_the_evaluate_tab(qtbot, main_window, mnist_dir, studio_home, warm_torch):
    w = main_window
    tab, ev = w.train_tab, w.evaluate_tab
    QTest.mouseClick(tab.confusion, Qt.MouseButton.LeftButton)  # nothing trained yet: nothing opens
    assert w.tabs.currentWidget() is w.classify_tab
    fill_quick_run(tab, mnist_dir, epochs=1)
    with qtbot.waitSignal(tab.running_changed, timeout=TIMEOUT_MS, check_params_cb=lambda r: not r):
        tab.start_training()
    shown = tab.confusion.matrix()
    assert sum(map(sum, shown)) == 30  # 10% of 300 images held out
    i, j = max(((a, b) for a in range(10) for b in range(10) if a != b), key=lambda c: shown[c[0]][c[1]])
    if shown[i][j] == 0:
        i, j = 0, 0
    w.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.confusion.cell_center(i, j) is not None)  # painted
    with qtbot.waitSignal(ev.evaluation_done, timeout=TIMEOUT_MS):
        QTest.mouseClick(tab.confusion, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         tab.confusion.cell_center(i, j).toPoint())  # fmt: skip
    assert w.tabs.currentWidget() is ev
    assert ev.confusion.matrix() == shown, "the same model on the same held-out images"
    assert ev.gallery.count() == shown[i][j]
    assert "validation (10% of train" in ev.outcome().title
