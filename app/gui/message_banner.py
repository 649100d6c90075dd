"""An inline, dismissable message strip: errors, and problems with a way out."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

# (background, border, text) per kind; one palette for every banner of the app.
COLORS = {
    "error": ("#fdecea", "#f5c2bd", "#8a1f11"),
    "problem": ("#fff4e0", "#f0c98a", "#6b4200"),
}


class MessageBanner(QWidget):
    """Shows a readable message above the content instead of a modal dialog, so work can
    go on (and tests are never blocked by a dialog).

    Args:
        name: objectName of the banner (`errorBanner`, `problemBanner`).
        kind: its colours, a key of COLORS.
        text_name: objectName of the label (default: NAME + "Text").

    `action` is an optional button (hidden until given text), e.g. "Switch to CPU".
    """

    def __init__(
        self,
        name: str = "errorBanner",
        kind: str = "error",
        text_name: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        background, border, text = COLORS[kind]
        self.setStyleSheet(
            f"#{name} {{ background: {background}; border: 1px solid {border}; border-radius: 6px; }}"
            f"#{name} QLabel {{ color: {text}; }}"
        )
        self.label = QLabel(objectName=text_name or f"{name}Text", wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton(objectName=f"{name}Action")
        self.action.hide()
        close = QToolButton(text="✕", autoRaise=True, objectName=f"{name}Close")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def text(self) -> str:
        """The message shown, or "" when the banner is hidden."""
        return "" if self.isHidden() else self.label.text()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def dismiss(self) -> None:
        self.label.clear()
        self.hide()
