"""The result: the predicted class large, its probability bars, and the model's input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.gui.model_input_view import ModelInputView
from app.gui.topk_view import TopKView

if TYPE_CHECKING:
    from app.core.predictor import Prediction

HINT = "Draw a digit"


class ResultPanel(QWidget):
    """Shows one Prediction: `predictionLabel` holds only the class name (empty when
    there is nothing to show), `predictionHint` explains an empty result."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultPanel")
        self._source = QLabel()
        self._source.setObjectName("predictionSource")
        self._source.setStyleSheet("color: #6b7280;")
        self.prediction_label = QLabel()
        self.prediction_label.setObjectName("predictionLabel")
        self.prediction_label.setAccessibleName("Predicted class")
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 4.2)
        font.setBold(True)
        self.prediction_label.setFont(font)
        self.prediction_label.setMinimumHeight(self.prediction_label.fontMetrics().height())
        self.prediction_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.confidence_label = QLabel()
        self.confidence_label.setObjectName("confidenceLabel")
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 1.3)
        self.confidence_label.setFont(big)
        self.hint_label = QLabel(HINT)
        self.hint_label.setObjectName("predictionHint")
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet("color: #6b7280;")
        self.hint_label.setFont(big)
        self.top_k = TopKView()
        self.model_input = ModelInputView()
        caption = QLabel("What the model sees\n(28 × 28 pixels)")
        caption.setStyleSheet("color: #6b7280;")
        caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)

        head = QGridLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.setHorizontalSpacing(16)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self._source)
        text.addWidget(self.prediction_label)
        text.addWidget(self.confidence_label)
        text.addWidget(self.hint_label)
        text.addStretch(1)
        head.addLayout(text, 0, 0)
        eye = QVBoxLayout()
        eye.setSpacing(4)
        eye.addWidget(self.model_input, 0, Qt.AlignmentFlag.AlignHCenter)
        eye.addWidget(caption)
        head.addLayout(eye, 0, 1, Qt.AlignmentFlag.AlignTop)
        head.setColumnStretch(0, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(14)
        layout.addLayout(head)
        probs = QLabel("Probabilities")
        probs.setStyleSheet("color: #6b7280;")
        layout.addWidget(probs)
        layout.addWidget(self.top_k)
        layout.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.show_empty()

    def set_classes(self, classes: list[str]) -> None:
        self.top_k.set_classes(classes)

    def show_empty(self, hint: str = HINT, source: str = "") -> None:
        """Nothing to show: empty class name, a hint instead."""
        self._source.setText(source)
        self.prediction_label.clear()
        self.confidence_label.clear()
        self.hint_label.setText(hint)
        self.hint_label.show()
        self.top_k.clear()
        self.model_input.set_pixels(None)

    def show_prediction(self, prediction: Prediction, classes: list[str], source: str = "") -> None:
        """Shows a Prediction; blank ones show their message as the hint."""
        if prediction.blank or prediction.label is None:
            self.show_empty(prediction.message or HINT, source)
            self.model_input.set_pixels(prediction.model_input)
            return
        self._source.setText(source)
        self.prediction_label.setText(prediction.label)
        self.confidence_label.setText(f"{prediction.confidence:.1%} confident")
        self.hint_label.clear()
        self.hint_label.hide()
        self.top_k.set_probabilities(classes, prediction.probabilities)
        self.model_input.set_pixels(prediction.model_input)

    def prediction_text(self) -> str:
        return self.prediction_label.text()
