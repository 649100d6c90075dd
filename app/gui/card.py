"""The Classify tab's panels: one look for every card."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QVBoxLayout, QWidget

CARD = "#card { background: palette(base); border: 1px solid #d9dee5; border-radius: 10px; }"


def card(widget_or_layout, margins: int = 14) -> QFrame:
    """A rounded white panel around a widget or a layout (the Classify tab's columns)."""
    frame = QFrame()
    frame.setObjectName("card")
    frame.setStyleSheet(CARD)
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(margins, margins, margins, margins)
    if isinstance(widget_or_layout, QWidget):
        layout.addWidget(widget_or_layout)
    else:
        layout.addLayout(widget_or_layout)
    return frame
