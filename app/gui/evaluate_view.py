"""The Evaluate tab: any model on any labelled data (MNIST, Fashion-MNIST, an image
folder), with progress, its confusion matrix, per-class precision/recall/F1, the
mistakes gallery and, for folders, the suspect-label list.

Thin: the work runs in the EvaluateWorker's thread; this tab shows what comes back.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.confusion import row_totals_and_diagonal, shown, worst_cell
from app.core.formatting import format_duration, percent
from app.gui.class_metrics import ClassMetricsTable
from app.gui.confusion_view import ConfusionView
from app.gui.evaluate_worker import EvalOutcome, EvaluateThread
from app.gui.message_banner import MessageBanner
from app.gui.mistakes_gallery import MistakesGallery
from app.gui.suspects_panel import SuspectsPanel

DATASETS = [("mnist", "MNIST"), ("fashion-mnist", "Fashion-MNIST"), ("folder", "Image folder…")]
SPLITS = [("test", "test split"), ("train", "training split")]


class EvaluateView(QWidget):
    """Signals:
        evaluation_done(int): job id of a finished, failed or cancelled evaluation.
        status_message(str): a short note for the status bar.
    """

    evaluation_done = Signal(int)
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None, device: str = "cpu") -> None:
        super().__init__(parent)
        self.setObjectName("evaluateTab")
        self._job: int | None = None
        self._outcome: EvalOutcome | None = None
        self._open_after: tuple[int, int] | None = None  # a cell to open when scores arrive
        self._folder = ""
        self._saliency_id = 0

        self.model_edit = QLineEdit()
        self.model_edit.setObjectName("evalModelPath")
        self.model_edit.setPlaceholderText("model file (.safetensors)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_model)
        self.dataset = QComboBox()
        self.dataset.setObjectName("evalDataset")
        for key, text in DATASETS:
            self.dataset.addItem(text, key)
        self.dataset.activated.connect(self._on_dataset_chosen)
        self.split = QComboBox()
        self.split.setObjectName("evalSplit")
        for key, text in SPLITS:
            self.split.addItem(text, key)
        self.split.setToolTip("Suspect labels are most useful on the images the model was trained on")
        self.run_button = QPushButton("Evaluate")
        self.run_button.setObjectName("evaluateButton")
        self.run_button.clicked.connect(self.evaluate_form)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setObjectName("evalProgress")
        self.progress.setFormat("idle")
        self.summary = QLabel("Choose a model and a dataset, then Evaluate.")
        self.summary.setObjectName("evalSummary")
        self.summary.setWordWrap(True)
        self.banner = MessageBanner("evalErrorBanner", "error", text_name="evalErrorText")

        self.confusion = ConfusionView()
        self.metrics = ClassMetricsTable()
        self.gallery = MistakesGallery()
        self.suspects = SuspectsPanel()
        self.right = QTabWidget()
        self.right.addTab(self.gallery, "Images of a cell")
        self.right.addTab(self.suspects, "Suspect labels")
        self._build_layout(browse)

        self._thread = EvaluateThread(device)
        w = self._thread.worker
        w.progress.connect(self._on_progress)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.saliency_ready.connect(self._on_saliency)
        self.confusion.cell_clicked.connect(self.open_cell)
        self.metrics.class_chosen.connect(self._open_worst_of_class)
        self.gallery.saliency_wanted.connect(self._want_saliency)
        self.suspects.export_failed.connect(self.banner.show_message)
        self.suspects.exported.connect(lambda p: self.status_message.emit(f"Wrote {p}"))
        self._update_controls()

    def _build_layout(self, browse: QPushButton) -> None:
        form = QHBoxLayout()
        form.addWidget(QLabel("Model"))
        form.addWidget(self.model_edit, 2)
        form.addWidget(browse)
        form.addSpacing(12)
        form.addWidget(QLabel("Data"))
        form.addWidget(self.dataset)
        form.addWidget(self.split)
        form.addWidget(self.run_button)
        form.addWidget(self.cancel_button)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.confusion)
        left.addWidget(self.metrics)
        left.setSizes([380, 220])
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(self.right)
        body.setSizes([460, 600])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.addWidget(self.banner)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary)
        layout.addWidget(body, 1)

    # --- choosing what to evaluate ---------------------------------------------------------

    def set_model(self, path: str) -> None:
        """Pre-fills the model (the Classify tab's current one) unless one was typed."""
        if not self.model_edit.text() or not self.model_edit.isModified():
            self.model_edit.setText(path)

    def set_folder(self, folder: str) -> None:
        self._folder = folder
        i = self.dataset.findData("folder")
        self.dataset.setItemText(i, f"Folder: {Path(folder).name}")
        self.dataset.setCurrentIndex(i)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model to evaluate", self.model_edit.text(), "Models (*.safetensors)")
        if path:
            self.model_edit.setText(path)

    def _on_dataset_chosen(self, index: int) -> None:
        if self.dataset.itemData(index) == "folder":
            folder = QFileDialog.getExistingDirectory(self, "Image folder (one subfolder per class)", self._folder)
            if folder:
                self.set_folder(folder)
            elif not self._folder:
                self.dataset.setCurrentIndex(0)

    def source(self):
        """The form as an EvalSource; None (and a message) when incomplete."""
        from app.core.datarequest import DataRequest
        from app.core.evaluation_run import EvalSource

        model = self.model_edit.text().strip()
        if not model:
            self.banner.show_message("Choose a model file to evaluate.")
            return None
        key = self.dataset.currentData()
        if key == "folder" and not self._folder:
            self.banner.show_message("Choose the image folder to evaluate on.")
            return None
        data = DataRequest(self._folder if key == "folder" else key)
        return EvalSource(model, data, self.split.currentData())

    # --- running ---------------------------------------------------------------------------

    def evaluate_form(self) -> int | None:
        source = self.source()
        return None if source is None else self.evaluate(source)

    def evaluate(self, source, open_cell: tuple[int, int] | None = None) -> int:
        """Scores `source` (an EvalSource) in the worker; `open_cell` (true, predicted)
        opens that cell's images once done. Returns the job id."""
        self.banner.dismiss()
        self._open_after = open_cell
        self._outcome = None
        self.confusion.clear()
        self.gallery.clear()
        self.suspects.set_suspects([], 0)
        self.progress.setRange(0, 0)
        self.progress.setFormat("loading the model and the data…")
        self.summary.setText(f"Evaluating {Path(source.model).stem} on {source.describe()}…")
        self._job = self._thread.worker.evaluate(source)
        self._update_controls()
        return self._job

    def cancel(self) -> None:
        if self._job is not None:
            self._thread.worker.cancel()

    def is_busy(self) -> bool:
        return self._job is not None

    def outcome(self) -> EvalOutcome | None:
        return self._outcome

    def _on_progress(self, job: int, done: int, total: int, eta: float) -> None:
        if job != self._job:
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(f"{done:,} / {total:,} images · ETA {format_duration(eta)}")

    def _on_finished(self, job: int, outcome: EvalOutcome) -> None:
        if job != self._job:
            return
        self._job, self._outcome = None, outcome
        s = outcome.scores
        conf = s.counts()  # sparse for many classes; the view draws those with most mistakes
        totals, diag = row_totals_and_diagonal(conf)
        per_class = (diag.double() / totals.clamp(min=1).double()).tolist()
        index, drawn = shown(conf)
        self.confusion.set_data(outcome.classes, drawn, per_class, f"Confusion matrix — {outcome.title}", index)
        self.metrics.set_confusion(outcome.classes, conf)
        self.suspects.set_suspects(outcome.suspects, len(s.labels), outcome.images)
        self.right.setTabEnabled(1, bool(outcome.suspects))
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(f"{len(s.labels):,} images")
        self.summary.setText(f"<b>{percent(outcome.accuracy, 2)}</b> right on {len(s.labels):,} images ({outcome.title}). "
                             "Click a cell to see its images.")  # fmt: skip
        cell = self._open_after or self._worst_cell()
        if cell is not None:
            self.open_cell(*cell)
        self._update_controls()
        self.evaluation_done.emit(job)

    def _on_failed(self, job: int, message: str) -> None:
        if job != self._job:
            return
        self._job = None
        self.banner.show_message(f"Could not evaluate: {message}")
        self.progress.setRange(0, 1)
        self.progress.setFormat("failed")
        self.summary.setText("")
        self._update_controls()
        self.evaluation_done.emit(job)

    def _on_cancelled(self, job: int) -> None:
        if job != self._job:
            return
        self._job = None
        self.progress.setRange(0, 1)
        self.progress.setFormat("cancelled")
        self._update_controls()
        self.evaluation_done.emit(job)

    # --- the gallery ---------------------------------------------------------------------------

    def _worst_cell(self) -> tuple[int, int] | None:
        """The most frequent confusion (off the diagonal), what a user looks at first."""
        if self._outcome is None:
            return None
        return worst_cell(self._outcome.scores.counts())

    def open_cell(self, true: int, predicted: int) -> None:
        """Shows one cell's images in the gallery (after the evaluation, if one runs)."""
        if self._outcome is None:
            self._open_after = (true, predicted)
            return
        self.confusion.set_selected((true, predicted))
        self.right.setCurrentWidget(self.gallery)
        self.gallery.show_cell(self._outcome, true, predicted)

    def _open_worst_of_class(self, true: int) -> None:
        if self._outcome is None:
            return
        cell = worst_cell(self._outcome.scores.counts(), true)
        self.open_cell(true, cell[1] if cell is not None else true)

    def _want_saliency(self, indices: list[int], targets: list[int]) -> None:
        self._saliency_id += 1
        self._thread.worker.saliency(self._saliency_id, indices, targets)

    def _on_saliency(self, request_id: int, start: int, pictures: list) -> None:
        if request_id == self._saliency_id:
            self.gallery.add_saliency(start, pictures)

    def _update_controls(self) -> None:
        busy = self._job is not None
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def shutdown(self) -> None:
        """Stops the worker thread; returns when it has finished (idempotent)."""
        self._thread.shutdown()
