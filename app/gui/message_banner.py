"""An inline, dismissable message strip for errors the user should read."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget


class MessageBanner(QWidget):
    """Shows a readable error above the content instead of a modal dialog, so work can
    go on (and tests are never blocked by a dialog)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(
            "#errorBanner { background: #fdecea; border: 1px solid #f5c2bd; border-radius: 6px; }"
            "#errorBanner QLabel { color: #8a1f11; }"
        )
        self._label = QLabel()
        self._label.setObjectName("errorText")
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self._label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def text(self) -> str:
        return "" if self.isHidden() else self._label.text()

    def show_message(self, text: str) -> None:
        self._label.setText(text)
        self.show()

    def dismiss(self) -> None:
        self._label.clear()
        self.hide()
