"""The Train tab: form, device switch, controls, live plots, confusion matrix, log.

Thin: it turns clicks into `TrainerThread` calls and core events into pixels. All work
(loading data, training, saving) happens in the thread.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch
from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.core.config import TrainingError
from app.core.devices import selector_id
from app.core.evaluation_run import run_source
from app.core.events import EpochEvent, FinishedEvent, PauseCause, StateEvent, StepEvent, TrainState
from app.core.formatting import format_duration, percent
from app.core.modelio import unique_model_path  # noqa: F401  (re-exported for tests)
from app.core.recipes import run_summary
from app.core.resources import user_models_dir
from app.gui.command_box import CommandBox
from app.gui.confusion_view import ConfusionView
from app.gui.device_selector import DeviceSelector
from app.gui.message_banner import MessageBanner
from app.gui.settings import AppSettings
from app.gui.train_form import TrainForm
from app.gui.train_log import TrainLog
from app.gui.train_progress import TrainProgress
from app.gui.trained_model_box import TrainedModelBox, calibration_summary, result_summary
from app.gui.trainer_thread import TrainerThread, gui_training_threads


class TrainTab(QWidget):
    """Trains a model in a background thread and shows its progress live.

    Args:
        parent: the owning widget.
        settings: where the form is remembered (default: the application's QSettings).

    Signals:
        model_saved(str): path of a newly written model (.safetensors).
        use_model_requested(str): the user wants to classify with this model.
        running_changed(bool): a training thread started (True) or ended (False).
        cell_opened(object, int, int): a confusion cell was clicked after a model was
            saved: EvalSource (the model on the run's validation split), true, predicted.
    """

    cell_opened = Signal(object, int, int)
    model_saved = Signal(str)
    use_model_requested = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainTab")
        self._settings = settings if settings is not None else AppSettings().store
        self._thread: TrainerThread | None = None  # alive
        self._latest: TrainerThread | None = None  # the run whose events are shown
        self._classes: list[str] = []
        self._last_model: str | None = None
        self._run: tuple = ()  # (DataRequest, TrainConfig) of the run shown
        self._cell_source = None  # EvalSource of the saved model: what a cell click opens
        self._best: EpochEvent | None = None  # the best epoch seen (the saved model's matrix)
        self._paused = self._stopping = False

        # --- left: settings and controls ---------------------------------------------------
        self.form = TrainForm()
        self.form.load_settings(self._settings)
        self.device_selector = DeviceSelector()
        self.device_selector.device_changed.connect(self._on_device_changed)
        self._device_in_use = self.device_selector.device()  # what a run uses, or will

        self.start_button = QPushButton("Start training", objectName="startButton")
        self.start_button.setDefault(True)
        self.pause_button = QPushButton("Pause", objectName="pauseButton")
        self.stop_button = QPushButton("Stop", objectName="stopButton")
        self.stop_button.setToolTip("Stop after the current step; the best epoch so far is saved")
        self.resume_ckpt_button = QPushButton("Resume from checkpoint…", objectName="resumeCheckpointButton")
        self.resume_ckpt_button.setToolTip(
            "Continue an interrupted run from its .ckpt file (same settings as that run)"
        )
        self.result_box = TrainedModelBox()
        self.use_button = self.result_box.use_button
        self.result_box.use_model_requested.connect(self.use_model_requested)

        self.start_button.clicked.connect(lambda: self.start_training())
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        self.resume_ckpt_button.clicked.connect(self._choose_checkpoint)
        self.form.validity_changed.connect(lambda _err: self._update_controls())
        # The same settings as a torchrun command, for a bigger machine (the GUI trains in one process).
        self.command_box = CommandBox(
            lambda: (self.form.data_request(), self.form.config(self.device_selector.device()), self.form.recipe())
        )
        self.form.changed.connect(self.command_box.refresh)
        self.device_selector.device_changed.connect(lambda _d: self.command_box.refresh())
        self.command_box.command_copied.connect(lambda cmd: self._log(f"copied to the clipboard: {cmd}"))

        settings_box = QGroupBox("Run settings")
        sl = QVBoxLayout(settings_box)
        sl.addWidget(self.form)
        device_box = QGroupBox("Device")
        dl = QVBoxLayout(device_box)
        dl.addWidget(self.device_selector)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 2)
        buttons.addWidget(self.pause_button, 1)
        buttons.addWidget(self.stop_button, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        for part in (settings_box, device_box, buttons, self.resume_ckpt_button, self.command_box, self.result_box):
            (ll.addLayout if isinstance(part, QHBoxLayout) else ll.addWidget)(part)
        ll.addStretch(1)
        left.setFixedWidth(360)

        # --- right: progress, plots, confusion, log ----------------------------------------
        self.error_banner = MessageBanner("errorBanner", "error")
        self.problem_banner = MessageBanner("problemBanner", "problem")
        self.problem_banner.action.setText("Switch to CPU and resume")
        self.problem_banner.action.setObjectName("switchToCpuButton")
        self.problem_banner.action.show()
        self.problem_banner.action.clicked.connect(self._switch_to_cpu_and_resume)

        self.progress = TrainProgress()
        self.status_label = QLabel("Ready", objectName="trainStatus")
        from app.gui.training_plots import TrainingPlots  # pyqtgraph import is slowish

        self.plots = TrainingPlots()
        self.loss_plot = self.plots.loss_plot
        self.accuracy_plot = self.plots.accuracy_plot
        self.confusion = ConfusionView()
        self.confusion.cell_clicked.connect(self._open_cell)
        self.log = TrainLog()

        bottom = QHBoxLayout()
        bottom.addWidget(self.confusion, 1)
        bottom.addWidget(self.log, 1)
        right = QVBoxLayout()
        for part in (self.error_banner, self.problem_banner, self.progress, self.status_label):
            right.addWidget(part)
        self.plots.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        right.addWidget(self.plots, 5)
        right.addLayout(bottom, 4)

        root = QHBoxLayout(self)
        root.addWidget(left)
        root.addLayout(right, 1)
        self._update_controls()

    # --- public API --------------------------------------------------------------------------

    def is_running(self) -> bool:
        """True while a training thread is alive."""
        return self._thread is not None and self._thread.isRunning()

    def thread_object(self) -> TrainerThread | None:
        """The current training thread (for tests and the main window), if any."""
        return self._thread

    def last_model(self) -> str | None:
        """Path of the model written by the last run, if any."""
        return self._last_model

    def shutdown(self) -> None:
        """Stops training (the checkpoint is kept); returns when the thread has finished."""
        self.form.save_settings(self._settings)
        t = self._thread
        if t is None:
            return
        t.cancel()
        t.wait()
        self._on_thread_finished(t)

    def start_training(self, resume: str | None = None) -> bool:
        """Starts a run with the form's values; False (and a reason shown) if it cannot."""
        if self.is_running():
            return False
        self.error_banner.hide()
        self.problem_banner.hide()
        try:
            request = self.form.data_request()
            config = replace(self.form.config(self.device_selector.device()), threads=gui_training_threads())
        except TrainingError as e:
            self._show_error(f"Cannot start: {e}")
            return False
        # Torch's thread count is process-wide: the GUI thread (the process's owner) sets
        # it, never the worker, so a run cannot change it under the warm-up or inference.
        torch.set_num_threads(config.threads)
        self.form.save_settings(self._settings)
        if resume:
            out = Path(resume).with_suffix(".safetensors")
        else:
            stem = f"{self.form.data_slug()}-{config.arch}-{time.strftime('%Y%m%d-%H%M')}"
            out = unique_model_path(user_models_dir(), stem)
        self.plots.clear()
        self.confusion.clear()
        self._run, self._cell_source, self._best = (request, config), None, None
        self._classes = []
        self._paused = self._stopping = False
        self.progress.show_loading()
        self._log(run_summary(config))
        self._log(f"model file: {out}" + (f" (resuming {resume})" if resume else ""))
        t = TrainerThread(config, request, out, resume, parent=self)
        # Queued events of an earlier run (stopped by shutdown()) may still arrive after
        # this one started: only the latest run may draw.
        self._latest = t
        for signal, slot in (
            (t.message, self._log), (t.data_ready, self._on_data_ready), (t.steps, self._on_steps),
            (t.epoch, self._on_epoch), (t.state_changed, self._on_state),
            (t.training_finished, self._on_training_finished), (t.failed, self._on_failed),
        ):  # fmt: skip
            signal.connect(lambda arg, t=t, slot=slot: self._latest is t and slot(arg))
        t.finished.connect(lambda: self._on_thread_finished(t))
        self._thread = t
        t.start()
        self.status_label.setText("Loading data…")
        self._update_controls()
        self.running_changed.emit(True)
        return True

    def pause_training(self) -> None:
        if self._thread is not None and not self._stopping:
            self._thread.pause()
            self._paused = True
            self.status_label.setText("Pausing…")
            self._update_controls()

    def resume_training(self) -> None:
        if self._thread is not None and not self._stopping:
            self._thread.resume()
            self._paused = False
            self.problem_banner.hide()
            self._update_controls()

    def stop_training(self) -> None:
        """Stops at the next step; the best finished epoch is still saved."""
        if self._thread is not None and not self._stopping:
            self._stopping = True
            self._thread.cancel()
            self.status_label.setText("Stopping…")
            self._log("stop requested")
            self._update_controls()

    # --- thread events -------------------------------------------------------------------------

    def _on_data_ready(self, classes: list) -> None:
        self._classes = [str(c) for c in classes]

    def _on_steps(self, events: list) -> None:
        if not events:
            return
        self.plots.add_steps(events)
        ev: StepEvent = events[-1]
        self.progress.show_step(ev)
        if not self._paused and not self._stopping:
            self.status_label.setText(
                f"Epoch {ev.epoch + 1}, step {ev.step + 1}/{ev.steps_per_epoch} · loss {ev.loss:.3f} · "
                f"lr {ev.lr:.3g} · elapsed {format_duration(ev.elapsed_s)}"
            )

    def _on_epoch(self, ev: EpochEvent) -> None:
        self.plots.add_epoch(ev)
        val = "" if ev.val_acc is None else f" · val loss {ev.val_loss:.3f} acc {percent(ev.val_acc, 2)}"
        self.confusion.show_epoch(self._classes, ev)
        self._best = ev if ev.best else self._best
        self._log(f"epoch {ev.epoch + 1}/{ev.epochs}: train loss {ev.train_loss:.3f} acc {percent(ev.train_acc, 2)}"
                  f"{val}{'  * best' if ev.best else ''}")  # fmt: skip

    def _on_state(self, ev: StateEvent) -> None:
        if ev.state is TrainState.PROBLEM:
            self._paused = True
            self.problem_banner.show_message(ev.message)
            self.status_label.setText("Paused: device problem")
        elif ev.state is TrainState.PAUSED:
            self._paused = True
            # The run blocks after a PROBLEM too: that status stays ("Paused: device problem").
            self.status_label.setText("Paused" if ev.cause is not PauseCause.DEVICE_PROBLEM else "Paused: device problem")
        elif ev.state in (TrainState.RESUMED, TrainState.RUNNING):
            self._paused = False
            self.status_label.setText("Training…")
        if ev.device and ev.state in (TrainState.DEVICE, TrainState.RUNNING):
            self._device_in_use = selector_id(ev.device)
            self.device_selector.set_device(self._device_in_use)
        self._log(ev.message or ev.state.value)
        self._update_controls()

    def _on_training_finished(self, ev: FinishedEvent) -> None:
        acc = result_summary(ev)
        self._log(f"{ev.status.value} after {ev.epochs_done} epoch(s) in {format_duration(ev.elapsed_s)}{acc}")
        self.result_box.show_result(ev)
        if ev.model_path:
            self._last_model = ev.model_path
            self._cell_source = run_source(ev.model_path, *self._run) if self._run else None
            name = Path(ev.model_path).name
            self._log(f"saved {ev.model_path}")
            if calibration_summary(ev):
                self._log(f"{calibration_summary(ev)}, temperature {ev.temperature:.3g}")
            self.status_label.setText(f"Saved {name}")
            if self._best is not None and self._best.epoch == ev.best_epoch:  # the saved epoch's matrix
                self.confusion.show_epoch(self._classes, self._best, ", the saved model")
            self.model_saved.emit(ev.model_path)
        else:
            self.status_label.setText("Stopped before the first epoch ended: no model saved")
        self.progress.show_finished(ev)

    def _open_cell(self, true: int, predicted: int) -> None:
        if self._cell_source is None:
            self.status_label.setText("A cell's images open once the run has saved a model")
            return
        self.cell_opened.emit(self._cell_source, true, predicted)

    def _on_failed(self, message: str) -> None:
        self._show_error(message)
        self.status_label.setText("Training failed")

    def _on_thread_finished(self, t: TrainerThread) -> None:
        if self._thread is not t:
            return  # already handled (shutdown), or an old thread
        self._thread = None
        t.deleteLater()
        self._paused = self._stopping = False
        if self.progress.is_loading():  # the run ended before its first step
            self.progress.show_idle()
        self.problem_banner.hide()
        self._update_controls()
        self.running_changed.emit(False)

    # --- user actions ----------------------------------------------------------------------------

    def _toggle_pause(self) -> None:
        if self._paused:
            self.resume_training()
        else:
            self.pause_training()

    def _on_device_changed(self, device: str) -> None:
        from app.core.devices import resolve_device

        try:
            if self._thread is None:
                resolve_device(device)  # checked now, not when Start fails
            else:
                self._thread.set_device(device)
        except ValueError as e:
            # Back to the device in use (or the last good choice), and the entry is
            # marked: the next Start must not fail on it.
            self._show_error(f"Cannot use {device}: {e}. Staying on {self._device_in_use}.")
            self.device_selector.mark_unavailable(device, str(e))
            self.device_selector.set_device(self._device_in_use)
            return
        if self._thread is None:
            self._device_in_use = device
        else:
            self._log(f"switching to {device} at the next step")

    def _switch_to_cpu_and_resume(self) -> None:
        self.device_selector.set_device("cpu")
        if self._thread is not None:
            self._thread.set_device("cpu")
        self.resume_training()

    def _choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Resume from checkpoint", str(user_models_dir()), "Checkpoints (*.ckpt)"
        )
        if path:
            self.start_training(resume=path)

    # --- helpers -----------------------------------------------------------------------------

    def _show_error(self, message: str) -> None:
        self.error_banner.show_message(message)
        self._log(f"error: {message}")

    def _log(self, line: str) -> None:
        self.log.add(line)

    def _update_controls(self) -> None:
        running = self._thread is not None
        self.start_button.setEnabled(not running and not self.form.error())
        self.resume_ckpt_button.setEnabled(not running)
        self.pause_button.setEnabled(running and not self._stopping)
        self.pause_button.setText("Resume" if self._paused else "Pause")
        self.stop_button.setEnabled(running and not self._stopping)
        self.form.set_locked(running)
