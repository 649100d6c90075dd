"""What every docs/make_screenshot_*.py script shares: an application with throw-away
settings, waiting for a signal, letting the window settle. The scripts drive the real
main window, as a user would, and save `window.grab()`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def start_app(settings_dir: str | None = None) -> QApplication:
    """The QApplication (Fusion style), its settings in `settings_dir` or a new temporary
    folder: a screenshot never reads or changes the user's own settings."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir or tempfile.mkdtemp())
    app = QApplication(sys.argv)
    app.setStyle("Fusion")
    return app


def wait_for(signal, ms: int = 60_000) -> None:
    """Runs the event loop until `signal` fires, or `ms` have passed."""
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def settle(app: QApplication, ms: int = 300) -> None:
    """Runs the event loop for `ms`, so that repaints and queued answers land."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    app.processEvents()


def wait_for_drawing(tab, ms: int = 60_000) -> None:
    """Waits until the Classify tab shows the answer for the whole drawing: the canvas
    asks while the strokes are drawn, and the first answers are for the first strokes."""
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.start(ms)
    shown = [0]
    tab.prediction_shown.connect(lambda request_id: shown.__setitem__(0, request_id))
    while shown[0] < tab.last_request_id and deadline.isActive():
        wait_for(tab.prediction_shown, ms=500)
