"""The Train tab's progress bar: idle, busy while the data loads, then steps with the
epoch, speed and ETA, and how the run ended."""

from __future__ import annotations

from PySide6.QtWidgets import QProgressBar, QWidget

from app.core.events import FinishedEvent, StepEvent
from app.core.formatting import format_duration


class TrainProgress(QProgressBar):
    """A progress bar (objectName `trainProgress`) driven by a run's events."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="trainProgress")
        self.setTextVisible(True)
        self.show_idle()

    def show_idle(self) -> None:
        self.setRange(0, 1)
        self.setValue(0)
        self.setFormat("idle")

    def show_loading(self) -> None:
        self.setRange(0, 0)  # busy: no step count before the data is loaded
        self.setFormat("loading data…")

    def is_loading(self) -> bool:
        return self.maximum() == 0

    def show_step(self, ev: StepEvent) -> None:
        self.setRange(0, ev.total_steps)
        self.setValue(ev.global_step + 1)
        self.setFormat(
            f"epoch {ev.epoch + 1} · %p% · {ev.images_per_s:,.0f} img/s · ETA {format_duration(ev.eta_s)}"
        )

    def show_finished(self, ev: FinishedEvent) -> None:
        self.setFormat(f"{ev.status.value} · {format_duration(ev.elapsed_s)}")
