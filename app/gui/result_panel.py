"""The result: the predicted class large, its probability bars, and the model's input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.core.formatting import percent, sentence
from app.gui.model_input_view import ModelInputView
from app.gui.topk_view import TopKView

if TYPE_CHECKING:
    from app.core.predictor import Prediction

HINT = "Draw a digit"


DOUBT = "#b45309"  # amber: the model would rather not answer


def verdict_texts(p: Prediction) -> tuple[str, str, str]:
    """(big label, line under it, detail) for a prediction: "7", "99.6% confident", "";
    "4 or 9?", "Not sure: 4 or 9?", "4 55.1% · 9 40.2%"; "?", "This does not look like a
    digit", "closest: 0 (71.4%)". Probabilities are the calibrated ones."""
    if p.verdict == "unsure":
        (a, pa), (b, pb) = p.top_k[:2]
        return f"{a} or {b}?", sentence(p.verdict_message), f"{a} {percent(pa)} · {b} {percent(pb)}"
    if p.verdict == "foreign":
        return "?", sentence(p.verdict_message), f"closest: {p.label} ({percent(p.confidence)})"
    return str(p.label), f"{percent(p.confidence)} confident", ""


class ResultPanel(QWidget):
    """Shows one Prediction: `predictionLabel` holds the class name, "4 or 9?" when the
    model is not sure, "?" when the image does not look like any class (empty when there
    is nothing to show), with the sentence under it ("Not sure: 4 or 9?", "This does not
    look like a digit"); `predictionHint` gives the numbers behind a doubt or explains an
    empty result."""

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
        # A dropped photo: the image with the region the front end found boxed in red.
        self.found_view = QLabel()
        self.found_view.setObjectName("foundRegionView")
        self.found_view.setAccessibleName("Where the digit was found")
        self.found_view.setToolTip("The dropped image; the red box is where the digit was found")
        self.found_view.setFixedSize(self.model_input.sizeHint())
        self.found_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.found_caption = QLabel("Where the digit\nwas found")
        self.found_caption.setStyleSheet("color: #6b7280;")
        self.found_caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
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
        found = QVBoxLayout()
        found.setSpacing(4)
        found.addWidget(self.found_view, 0, Qt.AlignmentFlag.AlignHCenter)
        found.addWidget(self.found_caption)
        head.addLayout(found, 0, 1, Qt.AlignmentFlag.AlignTop)
        eye = QVBoxLayout()
        eye.setSpacing(4)
        eye.addWidget(self.model_input, 0, Qt.AlignmentFlag.AlignHCenter)
        eye.addWidget(caption)
        head.addLayout(eye, 0, 2, Qt.AlignmentFlag.AlignTop)
        head.setColumnStretch(0, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(14)
        layout.addLayout(head)
        self._tools_at = layout.count()
        probs = QLabel("Probabilities")
        probs.setStyleSheet("color: #6b7280;")
        layout.addWidget(probs)
        layout.addWidget(self.top_k)
        layout.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.show_found(None)
        self.show_empty()

    def add_tools(self, widget: QWidget) -> None:
        """Puts a row of controls (e.g. "Show why") under the class and images."""
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(self._tools_at, widget)

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

    def show_found(self, image: QImage | None) -> None:
        """The dropped image with the found region boxed; None hides it (the canvas)."""
        visible = image is not None and not image.isNull()
        self.found_view.setVisible(visible)
        self.found_caption.setVisible(visible)
        if visible:
            box = self.found_view.size()
            pixmap = QPixmap.fromImage(image).scaled(
                box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self.found_view.setPixmap(pixmap)
        else:
            self.found_view.clear()

    def show_prediction(self, prediction: Prediction, classes: list[str], source: str = "") -> None:
        """Shows a Prediction; blank ones show their message as the hint, and a note
        (e.g. several digits were found) shows under the confidence."""
        if prediction.blank or prediction.label is None:
            self.show_empty(sentence(prediction.message) or HINT, source)
            self.model_input.set_pixels(prediction.model_input)
            return
        self._source.setText(source)
        big, line, detail = verdict_texts(prediction)
        self.prediction_label.setText(big)
        doubt = prediction.verdict in ("unsure", "foreign")
        self.prediction_label.setStyleSheet(f"color: {DOUBT};" if doubt else "")
        self.prediction_label.setAccessibleDescription(f"{line}; {detail}" if detail else f"{big}, {line}")
        self.confidence_label.setText(line)
        hint = "; ".join(t for t in (detail, sentence(prediction.note)) if t)
        self.hint_label.setText(hint)
        self.hint_label.setVisible(bool(hint))
        self.top_k.set_probabilities(classes, prediction.probabilities)
        self.model_input.set_pixels(prediction.model_input)

    def prediction_text(self) -> str:
        return self.prediction_label.text()
