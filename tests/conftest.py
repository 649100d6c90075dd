"""Shared fixtures (labelme/napari style).

- Qt runs offscreen, so the GUI tests need no display.
- QSettings, RESNET_STUDIO_HOME (trained models, checkpoints) and the measurement cache
  go to temp folders:
  a test never reads or writes the user's real settings or models.
- A test that leaves a QThread running fails (napari's `_dangling_qthreads`).
"""

from __future__ import annotations

import os
import traceback
from weakref import WeakKeyDictionary

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists

try:
    from PySide6.QtCore import QSettings, QThread
except ImportError:  # the core tests run without Qt
    QSettings = QThread = None  # type: ignore[assignment,misc]


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Per-test user data folder and settings file."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("RESNET_STUDIO_HOME", str(home / "data"))
    # Measured per-machine choices (precision.json) are shared by the session's tests, as
    # they are by a user's runs: each combination is measured once, not once a test.
    monkeypatch.setenv("RESNET_STUDIO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    if QSettings is not None:
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(QSettings.Format.IniFormat, scope, str(home / "settings"))
    return home


@pytest.fixture(autouse=True)
def _clean_clipboard(request):
    """Empties the clipboard after a GUI test. Data put there from Python is owned by Qt's
    clipboard, which Qt deletes from a C++ exit handler after Python has shut down: a
    segmentation fault at exit (seen with PySide6 6.11) unless it is cleared in time."""
    yield
    if "qtbot" in request.fixturenames:
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            app.clipboard().clear()


@pytest.fixture(autouse=True)
def _dangling_qthreads(request, monkeypatch):
    """Fails a test that starts a QThread and leaves it running."""
    if QThread is None or "qtbot" not in request.fixturenames:
        yield
        return
    qtbot = request.getfixturevalue("qtbot")
    started: WeakKeyDictionary = WeakKeyDictionary()
    base_start = QThread.start

    def start_and_remember(self, *args, **kwargs):
        started[self] = "".join(traceback.format_stack(limit=6)[:-1])
        return base_start(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start_and_remember)
    yield
    dangling = []
    for thread, where in list(started.items()):
        try:
            if thread.isRunning():
                dangling.append((thread, where))
        except RuntimeError:  # the C++ object is gone: the thread was cleaned up
            continue
    for thread, _ in dangling:
        thread.quit()
        qtbot.waitUntil(thread.isFinished, timeout=5000)
    if dangling:
        places = "\n\n".join(where for _, where in dangling)
        pytest.fail(f"{len(dangling)} QThread(s) still running after the test; started at:\n{places}")


@pytest.fixture
def shipped_model():
    """The shipped default model's path; skips when it has not been trained yet."""
    from app.core import resources

    path = resources.default_model_path()
    if not path.is_file():
        pytest.skip(f"the shipped model {path} does not exist yet (make model)")
    return path


# --- GUI fixtures -----------------------------------------------------------------------------


@pytest.fixture
def classify_tab(qtbot, shipped_model):
    """A shown Classify tab with the shipped model loaded; shut down after the test."""
    from app.gui.classify_tab import ClassifyTab

    tab = ClassifyTab()
    qtbot.addWidget(tab)
    tab.resize(1000, 700)
    with qtbot.waitSignal(tab.model_loaded, timeout=60_000):
        tab.set_model(str(shipped_model))
    tab.show()
    qtbot.waitExposed(tab)
    yield tab
    tab.shutdown()


@pytest.fixture
def main_window(qtbot, shipped_model):
    """A shown MainWindow() (default model loaded); closed after the test."""
    from app.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.classify_tab.model_loaded, timeout=60_000):
        window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()
