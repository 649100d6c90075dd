"""The Train tab's result panel: which model the last run saved, how it did, and the
button that hands it to the Classify tab."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.events import FinishedEvent
from app.core.formatting import percent


def result_summary(ev: FinishedEvent) -> str:
    """", best accuracy 98.20% (epoch 3)", or "" when no epoch was judged."""
    if ev.best_val_acc is None or ev.best_epoch is None:
        return ""
    return f", best accuracy {percent(ev.best_val_acc, 2)} (epoch {ev.best_epoch + 1})"


def calibration_summary(ev: FinishedEvent) -> str:
    """"calibrated: confidence off by 0.4% on average (ECE; 8.8% before)", or "" when the
    run had no validation images to calibrate on."""
    if ev.val_ece is None:
        return ""
    before = f"; {percent(ev.val_ece_uncalibrated)} before" if ev.val_ece_uncalibrated is not None else ""
    return f"calibrated: confidence off by {percent(ev.val_ece)} on average (validation ECE{before})"


class TrainedModelBox(QGroupBox):
    """Shows the model file of the last finished run.

    Signals:
        use_model_requested(str): the user wants to classify with this model.
    """

    use_model_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Trained model", parent)
        self._path: str | None = None
        self.label = QLabel("No model trained yet", objectName="modelLabel", wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use for classification", objectName="useModelButton")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._use)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.use_button)

    def path(self) -> str | None:
        """The model shown, if any."""
        return self._path

    def show_result(self, ev: FinishedEvent) -> None:
        """Shows the model a finished run wrote (a run that saved none changes nothing)."""
        if not ev.model_path:
            return
        self._path = ev.model_path
        calibrated = calibration_summary(ev)
        self.label.setText(
            f"<b>{Path(ev.model_path).name}</b><br>{ev.status.value}{result_summary(ev)}"
            + (f"<br>{calibrated}" if calibrated else "")
        )
        self.label.setToolTip(ev.model_path)
        self.use_button.setEnabled(True)

    def _use(self) -> None:
        if self._path:
            self.use_model_requested.emit(self._path)
