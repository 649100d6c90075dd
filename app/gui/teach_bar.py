"""'It is: [7] [Add to my examples]': correcting a prediction, or labelling a drawing."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget


class TeachBar(QWidget):
    """A class chooser (any name may be typed: a new class) and an "Add to my examples"
    button. The Classify tab selects a class here when the user clicks its probability
    bar or presses its key.

    Signals:
        add_requested(str): save the current drawing as an example of this class.
    """

    add_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("teachBar")
        self.choice = QComboBox()
        self.choice.setObjectName("teachClass")
        self.choice.setEditable(True)
        self.choice.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.choice.setMinimumContentsLength(6)
        self.choice.setAccessibleName("The right class")
        self.choice.setToolTip("What the drawing really is: click its bar, press its key, or type a new class name")
        self.add_button = QPushButton("Add to my examples")
        self.add_button.setObjectName("addExampleButton")
        self.add_button.setToolTip("Save the drawing with this label; Personalise (My examples tab) learns from them")
        self.add_button.clicked.connect(self._add)
        self.note = QLabel("")
        self.note.setObjectName("teachNote")
        self.note.setStyleSheet("color: #5b6472;")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 4, 0, 0)
        row.addWidget(QLabel("It is:"))
        row.addWidget(self.choice)
        row.addWidget(self.add_button)
        row.addWidget(self.note, 1)

    def set_classes(self, classes: list[str]) -> None:
        """The classes offered (the model's, then my own new ones); keeps the choice."""
        current = self.label()
        self.choice.blockSignals(True)
        self.choice.clear()
        self.choice.addItems(list(dict.fromkeys(classes)))
        self.choice.setEditText(current if current else (classes[0] if classes else ""))
        self.choice.blockSignals(False)

    def select(self, name: str) -> None:
        """Makes `name` the label the next "Add" uses."""
        i = self.choice.findText(name)
        if i >= 0:
            self.choice.setCurrentIndex(i)
        self.choice.setEditText(name)

    def label(self) -> str:
        return self.choice.currentText().strip()

    def show_note(self, text: str) -> None:
        self.note.setText(text)

    def _add(self) -> None:
        self.add_requested.emit(self.label())
