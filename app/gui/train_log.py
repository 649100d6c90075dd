"""The Train tab's log: timestamped lines in a monospace, size-capped text view."""

from __future__ import annotations

import time

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QWidget

MAX_LINES = 2000  # older lines drop off: a long run's log stays cheap to draw


class TrainLog(QPlainTextEdit):
    """Read-only log (objectName `trainLog`); `add(line)` prefixes the time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="trainLog", readOnly=True)
        self.setMaximumBlockCount(MAX_LINES)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        mono.setPointSizeF(max(7.0, self.font().pointSizeF() * 0.9))
        self.setFont(mono)
        self.setPlaceholderText("Training log")

    def add(self, line: str) -> None:
        self.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {line}")
