"""What a training run reports: typed events a UI draws (the CLI's progress bar, the
GUI's plots) and typed states, so no consumer compares free strings."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class _Named(str, Enum):
    """A str-valued enum that prints as its value (`f"{status}"` -> "completed")."""

    def __str__(self) -> str:
        return str(self.value)


class TrainState(_Named):
    """What a `StateEvent` says about the run."""

    RUNNING = "running"  # started (or resumed from a checkpoint)
    PAUSED = "paused"
    RESUMED = "resumed"
    DEVICE = "device"  # moved to another device
    PROBLEM = "problem"  # the device failed; paused with progress kept


class PauseCause(_Named):
    """Why a run is paused (`StateEvent.cause` of a PAUSED event)."""

    USER = "user"  # pause() was asked for
    DEVICE_PROBLEM = "device problem"  # the device failed (a PROBLEM event said how)


class FinishStatus(_Named):
    """How a run ended (`FinishedEvent.status`)."""

    COMPLETED = "completed"  # every epoch ran
    STOPPED = "stopped"  # cancelled; the finished epochs are kept


@dataclass(frozen=True)
class StepEvent:
    """One optimizer step."""

    epoch: int  # 0-based
    step: int  # within the epoch
    steps_per_epoch: int
    global_step: int
    total_steps: int
    loss: float
    lr: float
    images_per_s: float
    eta_s: float
    elapsed_s: float


@dataclass(frozen=True)
class EpochEvent:
    """An epoch ended: its metrics, and whether it is the best (saved) one."""

    epoch: int  # 0-based, finished
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    per_class_acc: list[float]  # on validation (or training data when there is none)
    confusion: list[list[int]]  # rows: true class, columns: predicted
    images_per_s: float
    elapsed_s: float
    eta_s: float
    best: bool  # this epoch is the best so far (saved as the model)
    # The classes `confusion` shows (indices), when there are too many to show them all
    # (`app.core.confusion.shown`); None: confusion covers every class.
    confusion_classes: list[int] | None = None


@dataclass(frozen=True)
class StateEvent:
    """The run changed state; `message` is a line for the user's log."""

    state: TrainState
    message: str = ""
    device: str = ""
    cause: PauseCause | None = None  # PAUSED events: why


@dataclass(frozen=True)
class FinishedEvent:
    """The last event of every run that did not raise."""

    status: FinishStatus
    epochs_done: int
    best_val_acc: float | None
    best_epoch: int | None
    model_path: str | None
    elapsed_s: float
    # Calibration fitted at the end (app.core.recalibration): the temperature and the
    # validation ECE after and before it; None when there was nothing to fit on.
    temperature: float | None = None
    val_ece: float | None = None
    val_ece_uncalibrated: float | None = None
    # A fine-tune's before/after accuracies (`app.core.finetune.Comparison.to_dict()`).
    comparison: dict | None = None


Event = StepEvent | EpochEvent | StateEvent | FinishedEvent
