"""A QThread that loads the data and drives `app.core.training.Trainer.run()`.

The thread never touches widgets: it turns core events into typed signals. Step events
are coalesced (at most one `steps` emission per `STEP_INTERVAL_S`) so a fast device
cannot flood the GUI event loop; every other event flushes the pending steps first, so
the order the GUI sees is the order the trainer produced.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from app.core.config import TrainConfig, TrainingError
from app.core.data import DataError
from app.core.datarequest import DataRequest
from app.core.events import EpochEvent, FinishedEvent, StateEvent, StepEvent
from app.core.modelio import ModelFileError
from app.core.training import Trainer

STEP_INTERVAL_S = 0.1  # coalesce step events: <= 10 GUI updates per second


def gui_training_threads() -> int:
    """Torch threads for a run started from the GUI: all cores but one.

    The spare core keeps the event loop responsive: with every core in torch's pool,
    its spin-waiting workers starve the GUI thread (100+ ms stalls on 2 cores), and
    oversubscription made runs slower, not faster, on a busy 2-core machine.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 2
    return max(1, n - 1)


class TrainerThread(QThread):
    """Loads a dataset and trains on it, off the GUI thread.

    Control methods (`pause`, `resume`, `cancel`, `set_device`) may be called from any
    thread at any time, also while the data is still loading; they act between steps.

    Signals:
        message(str): a line for the log (loading, data summary).
        data_ready(list): the class names of the loaded dataset.
        steps(list): new `StepEvent`s, coalesced (oldest first).
        epoch(EpochEvent): an epoch ended (metrics, confusion matrix).
        state_changed(StateEvent): running | paused | resumed | device | problem.
        training_finished(FinishedEvent): the run ended normally or was stopped; the
            model (if any epoch finished) is saved. (`finished` is QThread's own signal.)
        failed(str): the run could not start or go on; a user-readable reason.
    """

    message = Signal(str)
    data_ready = Signal(list)
    steps = Signal(list)
    epoch = Signal(EpochEvent)
    state_changed = Signal(StateEvent)
    training_finished = Signal(FinishedEvent)
    failed = Signal(str)

    def __init__(
        self,
        config: TrainConfig,
        data: DataRequest,
        out: str | Path | None,
        resume: str | Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.config = config
        self.data_request = data
        self.out = Path(out) if out else None
        self.resume_from = Path(resume) if resume else None
        self._lock = threading.Lock()
        self._trainer: Trainer | None = None
        self._cancel = False
        self._pause = False
        self._device = config.device
        self._pending: list[StepEvent] = []
        self._last_emit = 0.0

    # --- control (any thread) ------------------------------------------------------------

    def pause(self) -> None:
        with self._lock:
            self._pause = True
            if self._trainer is not None:
                self._trainer.pause()

    def resume(self) -> None:
        with self._lock:
            self._pause = False
            if self._trainer is not None:
                self._trainer.resume()

    def cancel(self) -> None:
        """Stops at the next step; the run still ends with `training_finished`."""
        with self._lock:
            self._cancel = True
            if self._trainer is not None:
                self._trainer.cancel()

    def set_device(self, device: str) -> None:
        """Moves the run to `device` before the next step.

        Raises:
            ValueError: the device cannot be used on this machine.
        """
        from app.core.devices import resolve_device

        resolve_device(device)
        with self._lock:
            self._device = device
            if self._trainer is not None:
                self._trainer.set_device(device)

    @property
    def cancelled(self) -> bool:
        return self._cancel

    # --- the thread ------------------------------------------------------------------------

    def run(self) -> None:  # noqa: D401 - QThread override
        try:
            self._run()
        except (DataError, TrainingError, ModelFileError) as e:
            self._flush_steps()
            self.failed.emit(str(e))
        except ValueError as e:  # unusable device, bad architecture for the data
            self._flush_steps()
            self.failed.emit(str(e))
        except MemoryError:
            self._flush_steps()
            self.failed.emit("out of memory: try a smaller batch size or fewer images")
        except Exception as e:  # the window must survive anything the worker hits
            self._flush_steps()
            self.failed.emit(f"unexpected error: {type(e).__name__}: {e}")

    def _run(self) -> None:
        loaded = self._load()
        if self._cancel:
            self.message.emit("stopped before training started")
            return
        with self._lock:
            trainer = self._make_trainer(loaded, replace(self.config, device=self._device))
            if self._pause:
                trainer.pause()
            if self._cancel:
                trainer.cancel()
            self._trainer = trainer
        self._drive(trainer)

    def _load(self):
        """Loads what the run needs (the dataset), reporting on `message`."""
        req = self.data_request
        self.message.emit(f"loading {req.dataset} ...")
        t0 = time.perf_counter()
        data = req.load()
        self.message.emit(
            f"loaded {len(data)} images, {len(data.classes)} classes, "
            f"{data.spec.channels}x{data.spec.size}x{data.spec.size} in {time.perf_counter() - t0:.1f} s"
            + (f"; skipped {len(data.skipped)} unreadable files" if data.skipped else "")
        )
        self.data_ready.emit(list(data.classes))
        return data

    def _make_trainer(self, loaded, config: TrainConfig) -> Trainer:
        """The run over what `_load` returned (called with the control lock held)."""
        return Trainer(config, loaded, out=self.out, resume=self.resume_from, command="resnet-studio GUI")

    def _drive(self, trainer: Trainer) -> None:
        for ev in trainer.run():
            if isinstance(ev, StepEvent):
                self._pending.append(ev)
                now = time.perf_counter()
                if now - self._last_emit >= STEP_INTERVAL_S:
                    self._flush_steps(now)
                continue
            self._flush_steps()
            if isinstance(ev, EpochEvent):
                self.epoch.emit(ev)
            elif isinstance(ev, StateEvent):
                self.state_changed.emit(ev)
            elif isinstance(ev, FinishedEvent):
                self.training_finished.emit(ev)

    def _flush_steps(self, now: float | None = None) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self.steps.emit(batch)
        self._last_emit = now if now is not None else time.perf_counter()
