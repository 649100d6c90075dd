"""The "My examples" tab: my saved drawings by class, new classes, and "Personalise"."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.events import FinishedEvent, StateEvent, TrainState
from app.core.finetune import Comparison
from app.core.formatting import format_duration
from app.core.personal import Example, PersonalError, PersonalStore
from app.gui.qt_image import array_to_qimage

THUMB = 56  # px: a 28x28 example at 2x


def _thumbnail(example: Example) -> QIcon:
    try:
        pixels = example.pixels()
    except Exception:  # an unreadable file still gets a (blank) tile, so it can be deleted
        pixels = np.zeros((28, 28), np.uint8)
    image = array_to_qimage(np.ascontiguousarray(255 - pixels))  # dark ink on paper
    return QIcon(QPixmap.fromImage(image).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio))


class ExamplesView(QWidget):
    """Lists my examples by class with thumbnails; deletes them; creates classes; runs
    "Personalise" (a fine-tune of the current model in a `PersonaliseThread`) with
    progress, pause and stop, then shows before/after and lets the user keep or discard
    the new model.

    Signals:
        model_kept(str): the user keeps the personalised model at this path (use it).
        status_message(str): a short note for the status bar.
    """

    model_kept = Signal(str)
    status_message = Signal(str)

    def __init__(self, store: PersonalStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("examplesView")
        self.store = store or PersonalStore()
        self._model: str | None = None
        self._thread = None
        self._result: str | None = None  # the new model, until kept or discarded

        self.classes = QListWidget(objectName="exampleClasses")
        self.classes.setMaximumWidth(200)
        self.classes.currentRowChanged.connect(lambda _row: self._show_class())
        self.grid = QListWidget(objectName="exampleGrid")
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.new_button = QPushButton("New class…", objectName="newClassButton")
        self.new_button.clicked.connect(self._ask_new_class)
        self.delete_button = QPushButton("Delete selected", objectName="deleteExamplesButton")
        self.delete_button.clicked.connect(self.delete_selected)
        self.personalise_button = QPushButton("Personalise", objectName="personaliseButton")
        self.personalise_button.setToolTip("Fine-tune the current model on my examples (a short run)")
        self.personalise_button.clicked.connect(self.personalise)
        self.pause_button = QPushButton("Pause", objectName="personalisePauseButton", checkable=True)
        self.pause_button.toggled.connect(self._toggle_pause)
        self.stop_button = QPushButton("Stop", objectName="personaliseStopButton")
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar(objectName="personaliseProgress")
        self.progress.setRange(0, 1000)
        self.status = QLabel("", objectName="personaliseStatus")
        self.status.setWordWrap(True)
        self.keep_button = QPushButton("Keep and use", objectName="keepModelButton")
        self.keep_button.clicked.connect(self.keep)
        self.discard_button = QPushButton("Discard", objectName="discardModelButton")
        self.discard_button.clicked.connect(self.discard)
        self._build_layout()
        self._set_running(False)
        self._show_result_buttons(False)
        self.refresh()

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        for b in (self.new_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        for b in (self.personalise_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        lists = QHBoxLayout()
        lists.addWidget(self.classes)
        lists.addWidget(self.grid, 1)
        result = QHBoxLayout()
        result.addWidget(self.status, 1)
        result.addWidget(self.keep_button)
        result.addWidget(self.discard_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        hint = QLabel(
            "Correct the model on the Classify tab (click the right class or press its key, then "
            "“Add to my examples”); five or more examples a class let Personalise judge itself."
        )
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addLayout(buttons)
        layout.addLayout(lists, 1)
        layout.addWidget(self.progress)
        layout.addLayout(result)

    # --- the list ---------------------------------------------------------------------------

    def set_model(self, path: str) -> None:
        """The model Personalise starts from (the one the Classify tab uses)."""
        self._model = path
        self._set_running(self._thread is not None)

    def refresh(self) -> None:
        """Re-reads the examples from disk."""
        current = self.current_class()
        try:
            counts = self.store.counts()
        except PersonalError as e:
            self.status.setText(str(e))
            counts = {}
        self.classes.blockSignals(True)
        self.classes.clear()
        for name, n in counts.items():
            item = QListWidgetItem(f"{name}  ({n})")
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.classes.addItem(item)
        self.classes.blockSignals(False)
        names = list(counts)
        self.classes.setCurrentRow(names.index(current) if current in names else (0 if names else -1))
        self._show_class()
        self._set_running(self._thread is not None)

    def current_class(self) -> str | None:
        item = self.classes.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _show_class(self) -> None:
        self.grid.clear()
        name = self.current_class()
        if name is None:
            return
        for ex in self.store.examples(name):
            item = QListWidgetItem(_thumbnail(ex), "")
            item.setData(Qt.ItemDataRole.UserRole, ex)
            item.setToolTip(ex.png.name)
            self.grid.addItem(item)

    def new_class(self, name: str) -> bool:
        try:
            made = self.store.new_class(name)
        except PersonalError as e:
            self.status.setText(str(e))
            return False
        self.refresh()
        for i in range(self.classes.count()):
            if self.classes.item(i).data(Qt.ItemDataRole.UserRole) == made:
                self.classes.setCurrentRow(i)
        self.status.setText(f"Class {made!r} created: draw it on the Classify tab and add it to my examples")
        return True

    def _ask_new_class(self) -> None:
        name, ok = QInputDialog.getText(self, "New class", "Name of the new class (e.g. +):")
        if ok:
            self.new_class(name)

    def delete_selected(self) -> int:
        examples = [item.data(Qt.ItemDataRole.UserRole) for item in self.grid.selectedItems()]
        try:
            for ex in examples:
                self.store.delete(ex)
        except PersonalError as e:
            self.status.setText(str(e))
        self.refresh()
        return len(examples)

    # --- Personalise ------------------------------------------------------------------------

    def _set_running(self, running: bool) -> None:
        has_examples = self.classes.count() > 0
        self.personalise_button.setEnabled(not running and self._model is not None and has_examples)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.progress.setVisible(running)

    def _show_result_buttons(self, show: bool) -> None:
        self.keep_button.setVisible(show)
        self.discard_button.setVisible(show)

    def personalise(self) -> bool:
        """Starts the fine-tune of the current model on my examples."""
        import torch

        from app.core.modelio import ModelFileError, unique_model_path
        from app.core.resources import user_models_dir
        from app.gui.personalise_thread import PersonaliseThread

        if self._model is None or self._thread is not None:
            return False
        self.discard()
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        # unique: a second run within the same second must not share (and on discard
        # delete) the first run's file
        out = unique_model_path(user_models_dir(), f"{Path(self._model).stem.split('-personal-')[0]}-personal-{stamp}")
        try:
            thread = PersonaliseThread(self._model, self.store.root, out, parent=self)
        except (ModelFileError, ValueError) as e:
            self.status.setText(f"Cannot personalise: {e}")
            return False
        torch.set_num_threads(thread.config.threads)  # process-wide: set here, never in the worker
        thread.message.connect(self.status.setText)
        thread.steps.connect(self._on_steps)
        thread.state_changed.connect(self._on_state)
        thread.training_finished.connect(self._on_finished)
        thread.failed.connect(self._on_failed)
        thread.finished.connect(self._on_thread_done)
        self._thread = thread
        if self.pause_button.isChecked():
            thread.pause()
        self.progress.setValue(0)
        self._set_running(True)
        thread.start()
        return True

    @property
    def thread(self):
        return self._thread

    def _toggle_pause(self, paused: bool) -> None:
        if self._thread is not None:
            (self._thread.pause if paused else self._thread.resume)()
        self.pause_button.setText("Resume" if paused else "Pause")

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.cancel()

    def _on_steps(self, steps: list) -> None:
        ev = steps[-1]
        self.progress.setValue(round(1000 * (ev.global_step + 1) / max(ev.total_steps, 1)))
        self.status.setText(f"Personalising: epoch {ev.epoch + 1}, loss {ev.loss:.3f}, about {format_duration(ev.eta_s)} left")

    def _on_state(self, ev: StateEvent) -> None:
        if ev.state in (TrainState.PAUSED, TrainState.PROBLEM) or ev.message:
            self.status.setText(ev.message or str(ev.state))

    def _on_finished(self, ev: FinishedEvent) -> None:
        self._result = ev.model_path
        lines = Comparison(**ev.comparison).lines() if ev.comparison else []
        head = "Personalised" if ev.model_path else "Stopped before an epoch finished; nothing was saved"
        self.status.setText(head + (": " + "; ".join(f"before → after, {line}" for line in lines) if lines and ev.model_path else ""))
        self._show_result_buttons(ev.model_path is not None)

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Personalise failed: {message}")

    def _on_thread_done(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.deleteLater()
        self.pause_button.setChecked(False)
        self._set_running(False)

    def keep(self) -> None:
        if self._result:
            self.model_kept.emit(self._result)
            self.status_message.emit(f"Using {Path(self._result).stem}; the model selector switches back any time")
        self._result = None
        self._show_result_buttons(False)

    def discard(self) -> None:
        """Deletes the new model's files (weights, card, checkpoint)."""
        if self._result:
            p = Path(self._result)
            for f in (p, p.with_suffix(".json"), p.with_suffix(".ckpt")):
                f.unlink(missing_ok=True)
            self.status.setText("Discarded the personalised model")
        self._result = None
        self._show_result_buttons(False)

    def shutdown(self) -> None:
        """Stops a run and waits for its thread (idempotent)."""
        if self._thread is not None:
            self._thread.cancel()
            self._thread.wait()
