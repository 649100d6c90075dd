"""Starts the desktop app: `python -m app` with no arguments."""

from __future__ import annotations

import sys
import traceback

from PySide6.QtCore import Qt
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

    from app.gui.main_window import MainWindow  # imports torch via the Train tab

    window = MainWindow()
    window.show()
    splash.finish(window)
    return int(app.exec())
