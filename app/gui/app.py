"""Starts the desktop app: `python -m app` with no arguments."""

from __future__ import annotations

import os
import sys
import time
import traceback

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QMessageBox, QSplashScreen

from app import __version__
from app.gui.settings import APPLICATION, ORGANIZATION


def _splash() -> QSplashScreen:
    """Something on screen at once while torch and the model load."""
    pix = QPixmap(420, 160)
    pix.fill(QColor("#1f2937"))
    painter = QPainter(pix)
    painter.setPen(QColor("white"))
    font = QFont()
    font.setPointSize(20)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(pix.rect().adjusted(0, -20, 0, -20), Qt.AlignmentFlag.AlignCenter, "ResNet Studio")
    font.setPointSize(10)
    font.setBold(False)
    painter.setFont(font)
    painter.setPen(QColor("#cbd5e1"))
    painter.drawText(pix.rect().adjusted(0, 50, 0, 0), Qt.AlignmentFlag.AlignCenter, f"version {__version__} · starting…")
    painter.end()
    return QSplashScreen(pix)


def _install_excepthook() -> None:
    """An unexpected error becomes a readable message, not a dead window."""

    def hook(exc_type, exc, tb) -> None:
        traceback.print_exception(exc_type, exc, tb)
        if QApplication.instance() is None or issubclass(exc_type, KeyboardInterrupt):
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "ResNet Studio", f"Something went wrong: {exc}")
        box.setDetailedText("".join(traceback.format_exception(exc_type, exc, tb)))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): the window keeps working behind it

    sys.excepthook = hook


def _seconds_since_process_start() -> float:
    """From the process's start (Linux: /proc, so the interpreter's own start-up counts)."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start
    except (OSError, ValueError, IndexError, AttributeError):
        return time.process_time()


class _ShownProbe(QObject):
    """RESNET_STUDIO_EXIT_AFTER_SHOWN=1 (bench/startup.py): on the main window's first
    expose, prints `window shown after X s` and quits."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Expose and obj.isExposed():
            print(f"window shown after {_seconds_since_process_start():.3f} s", flush=True)
            obj.removeEventFilter(self)
            QTimer.singleShot(0, QApplication.quit)
        return False


def main(argv: list[str] | None = None) -> int:
    """Creates the application, shows the main window and runs the event loop.

    Returns:
        The event loop's exit code.
    """
    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("ResNet Studio")
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")
    splash = _splash()
    splash.show()
    app.processEvents()
    _install_excepthook()

    from app.gui.main_window import MainWindow

    window = MainWindow(defer_train_tab=True)
    if os.environ.get("RESNET_STUDIO_EXIT_AFTER_SHOWN"):
        window.winId()  # creates the native window, so the probe sees its first expose
        window.windowHandle().installEventFilter(_ShownProbe(window))
    window.show()
    splash.finish(window)
    QTimer.singleShot(150, window.load_train_tab)  # after the first paint
    return int(app.exec())
