"""The Train tab: form, device switch, controls, live plots, confusion matrix."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget


class TrainTab(QWidget):
    """Trains a model in a background thread and shows its progress live.

    Signals:
        model_saved(str): path of a newly written model (.safetensors).
        use_model_requested(str): the user wants to classify with this model.
    """

    model_saved = Signal(str)
    use_model_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainTab")

    def is_running(self) -> bool:
        """True while a training thread is alive."""
        return False

    def shutdown(self) -> None:
        """Stops training (the checkpoint is kept); returns when the thread has finished."""
