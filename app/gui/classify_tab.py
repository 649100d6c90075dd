"""The Classify tab: draw a digit or bring images, see what the model says and why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.core.images import IMAGE_SUFFIXES
from app.gui.batch_items import BatchItem
from app.gui.batch_panel import BatchPanel
from app.gui.canvas import DrawingCanvas
from app.gui.card import card
from app.gui.drop_zone import DropZone
from app.gui.explain_view import ExplainPanel
from app.gui.inference_worker import InferenceThread
from app.gui.message_banner import MessageBanner
from app.gui.qt_image import array_to_qimage
from app.gui.result_panel import HINT, ResultPanel
from app.gui.settings import DEFAULTS
from app.gui.teach_bar import TeachBar

IMAGE_FILTER = "Images ({})".format(" ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)))


class ClassifyTab(QWidget):
    """Canvas left, result right, image drop zone and batch table below.

    All inference runs in the tab's InferenceWorker thread.

    Signals:
        model_loaded(str, str, str): model path, one-line summary, device.
        model_failed(str): readable message.
        prediction_shown(int): the canvas request with this id is on screen (result or
            failure message).
        batch_done(int, bool): a file/paste job finished (job id, cancelled).
        status_message(str): a short note for the status bar.
        example_added(str): the drawing was saved to my examples as this class.
    """

    model_loaded = Signal(str, str, str)
    model_failed = Signal(str)
    prediction_shown = Signal(int)
    batch_done = Signal(int, bool)
    status_message = Signal(str)
    example_added = Signal(str)

    def __init__(self, parent: QWidget | None = None, pen_width: float = DEFAULTS.pen_width, device: str = "cpu") -> None:
        super().__init__(parent)
        self.setObjectName("classifyTab")
        self._classes: list[str] = []
        self._model_path: str | None = None
        self._model_summary = ""
        self._next_request = 0
        self._valid_from = 1  # canvas results with smaller ids are stale
        self._last_shown = 0
        self._source = "canvas"  # what the result panel shows: the canvas or an image
        self._job: int | None = None
        self._job_files: list[str] = []
        self._pasted: tuple[str, np.ndarray] | None = None  # kept for "Show why"

        self.canvas = DrawingCanvas(pen_width=pen_width)
        self.result = ResultPanel()
        self.banner = MessageBanner("errorBanner", "error", text_name="errorText")
        self.drop_zone = DropZone()
        self.batch = BatchPanel()
        self._build_layout()

        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(DEFAULTS.live_interval_ms)
        self._live_timer.timeout.connect(self._request_canvas)

        self.canvas.stroke_changed.connect(self._on_stroke_changed)
        self.canvas.drawing_changed.connect(self._on_drawing_changed)
        self.drop_zone.paths_dropped.connect(self.classify_paths)
        self.drop_zone.image_dropped.connect(self.classify_array)
        self.drop_zone.drop_rejected.connect(self.banner.show_message)
        self.drop_zone.open_files_requested.connect(self.open_files)
        self.drop_zone.open_folder_requested.connect(self.open_folder)
        self.batch.cancel_requested.connect(self.cancel_batch)
        self.batch.item_selected.connect(self._show_item)
        self.batch.export_failed.connect(self.banner.show_message)

        self._inference = InferenceThread(device)
        self.explain = ExplainPanel(self._inference.explainer, self.canvas, self.result)
        self.result.add_tools(self.explain)
        self.teach = TeachBar()
        self.result.add_tools(self.teach)
        self.teach.add_requested.connect(self.add_example)
        self.result.top_k.class_clicked.connect(self.teach.select)
        w = self._inference.worker
        w.model_loaded.connect(self._on_model_loaded)
        w.model_failed.connect(self._on_model_failed)
        w.prediction_ready.connect(self._on_prediction)
        w.prediction_failed.connect(self._on_prediction_failed)
        w.batch_scanning.connect(self._on_scanning)
        w.batch_started.connect(self._on_batch_started)
        w.batch_rows.connect(self._on_batch_rows)
        w.batch_finished.connect(self._on_batch_finished)
        w.batch_failed.connect(self._on_batch_failed)

    def _build_layout(self) -> None:
        self.undo_button = QPushButton("Undo")
        self.undo_button.setObjectName("undoButton")
        self.undo_button.setToolTip("Undo the last stroke (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("clearButton")
        self.clear_button.setToolTip("Clear the canvas (Esc)")
        self.clear_button.clicked.connect(self.clear)
        self.pen_slider = QSlider(Qt.Orientation.Horizontal)
        self.pen_slider.setObjectName("penWidthSlider")
        self.pen_slider.setAccessibleName("Pen width")
        self.pen_slider.setToolTip("Pen width, in percent of the canvas side")
        self.pen_slider.setRange(round(DEFAULTS.pen_width_min * 100), round(DEFAULTS.pen_width_max * 100))
        self.pen_slider.setValue(round(self.canvas.pen_width() * 100))
        self.pen_slider.setMaximumWidth(160)
        self.pen_slider.valueChanged.connect(lambda v: self.canvas.set_pen_width(v / 100))
        tools = QHBoxLayout()
        tools.addWidget(QLabel("Pen"))
        tools.addWidget(self.pen_slider)
        tools.addStretch(1)
        tools.addWidget(self.undo_button)
        tools.addWidget(self.clear_button)
        left = QVBoxLayout()
        left.setSpacing(10)
        left.addLayout(tools)
        left.addWidget(self.canvas, 1)

        top = QHBoxLayout()
        top.setSpacing(14)
        top.addWidget(card(left), 1)
        top.addWidget(card(self.result, 18), 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(12)
        layout.addWidget(self.banner)
        layout.addLayout(top, 3)
        layout.addWidget(self.drop_zone)
        layout.addWidget(self.batch, 2)

    # --- model ------------------------------------------------------------------------------

    def set_model(self, path: str) -> None:
        """Loads a model in the worker; model_loaded or model_failed follows."""
        self.status_message.emit(f"Loading {Path(path).stem}…")
        self._inference.worker.load_model(str(path))

    def model_path(self) -> str | None:
        return self._model_path

    def model_summary(self) -> str:
        return self._model_summary

    def _on_model_loaded(self, card, path: str, device: str) -> None:
        self._classes = list(card.classes)
        self._model_path = path
        self._model_summary = card.summary()
        self.banner.dismiss()
        self.result.set_classes(self._classes)
        self.explain.set_classes(self._classes)
        self._offer_classes()
        if self._source == "canvas":
            self._on_drawing_changed()  # the new model's view of the same drawing
        self.model_loaded.emit(path, self._model_summary, device)

    def _on_model_failed(self, path: str, message: str) -> None:
        # The worker keeps its previous model, so say which one still answers.
        still = f" Still using {Path(self._model_path).stem}." if self._model_path else ""
        self.banner.show_message(f"Could not load the model: {message}{still}")
        self.model_failed.emit(message)

    # --- canvas -----------------------------------------------------------------------------

    @property
    def last_request_id(self) -> int:
        """Id of the newest canvas request (0: none yet)."""
        return self._next_request

    def undo(self) -> None:
        self.canvas.undo()

    def clear(self) -> None:
        self.canvas.clear()
        self._source = "canvas"
        self._on_drawing_changed()

    def _on_stroke_changed(self) -> None:
        self._source = "canvas"
        if not self._live_timer.isActive():
            self._live_timer.start()  # throttle: at most one request per interval

    def _on_drawing_changed(self) -> None:
        self._live_timer.stop()
        self._request_canvas()

    def _request_canvas(self) -> None:
        if self._source != "canvas":
            return
        if self.canvas.is_empty():
            self._inference.worker.drop_pending()
            self._valid_from = self._next_request + 1
            self.result.show_found(None)
            self.result.show_empty(HINT)
            self.explain.show_canvas()
            return
        self._next_request += 1
        self._inference.worker.submit(self._next_request, self.canvas.render_array())

    def _fresh(self, request_id: int) -> bool:
        return request_id >= self._valid_from and request_id > self._last_shown and self._source == "canvas"

    def _on_prediction(self, request_id: int, prediction) -> None:
        if not self._fresh(request_id):
            return
        self._last_shown = request_id
        self.result.show_found(None)  # the canvas is the image itself
        self.result.show_prediction(prediction, self._classes, "Your drawing")
        self.explain.show_canvas()
        self.prediction_shown.emit(request_id)

    def _on_prediction_failed(self, request_id: int, message: str) -> None:
        if not self._fresh(request_id):
            return
        self._last_shown = request_id
        self.result.show_empty(message, "Your drawing")
        self.prediction_shown.emit(request_id)

    # --- teaching ---------------------------------------------------------------------------

    def _offer_classes(self) -> None:
        from app.core.personal import PersonalError, PersonalStore

        try:
            own = PersonalStore().classes()
        except PersonalError:
            own = []
        self.teach.set_classes(self._classes + [c for c in own if c not in self._classes])

    def keyPressEvent(self, event) -> None:  # noqa: N802
        """A class's key (0-9, or a one-letter class) chooses it as the right answer."""
        text = event.text()
        if text and text.isprintable() and text in self._classes + [self.teach.choice.itemText(i) for i in range(self.teach.choice.count())]:
            self.teach.select(text)
            return
        super().keyPressEvent(event)

    def add_example(self, label: str) -> bool:
        """Saves the canvas drawing to my examples as `label` (a new class is created)."""
        from app.core.personal import PersonalError, PersonalStore
        from app.core.strokes import Drawing, StrokesError

        if self.canvas.is_empty():
            self.teach.show_note("Draw something first")
            return False
        try:
            store = PersonalStore()
            example = store.add(label, Drawing.of(self.canvas.strokes(), self.canvas.pen_width()))
            count = len(store.examples(example.label))
        except (PersonalError, StrokesError) as e:
            self.teach.show_note(str(e))
            return False
        self.teach.show_note(f"Saved as {example.label} ({count} example{'s' if count != 1 else ''})")
        self._offer_classes()
        self.teach.select(example.label)
        self.example_added.emit(example.label)
        return True

    # --- images -----------------------------------------------------------------------------

    def classify_paths(self, paths: list[str]) -> int:
        """Classifies files and folders (folders searched recursively). Returns the job id."""
        self.cancel_batch()
        self._job = self._inference.worker.classify_paths([str(p) for p in paths])
        self.drop_zone.show_status("Looking for images…")
        return self._job

    def classify_array(self, image: np.ndarray, name: str = "pasted image") -> int:
        """Classifies an in-memory image (uint8 array). Returns the job id."""
        self.cancel_batch()
        self._pasted = (name, image)
        self._job = self._inference.worker.classify_array(image, name)
        return self._job

    def cancel_batch(self) -> None:
        if self._job is not None:
            self._inference.worker.cancel_batch(self._job)

    def is_busy(self) -> bool:
        """True while a file or paste job runs."""
        return self._job is not None

    def export_csv(self, path: str) -> int:
        """Writes the batch table as CSV (path,label,confidence,error). Raises OSError."""
        return self.batch.export_csv(path)

    def open_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", "", f"{IMAGE_FILTER};;All files (*)")
        if paths:
            self.classify_paths(paths)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.classify_paths([folder])

    def paste(self) -> None:
        """Classifies the clipboard: image data, file URLs, or a file path as text."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and self.drop_zone.accept_mime(mime):
            return
        text = mime.text().strip() if mime is not None and mime.hasText() else ""
        if text and Path(text).exists():
            self.classify_paths([text])
            return
        self.status_message.emit("The clipboard holds no image or image file")

    def _on_scanning(self, job: int, found: int) -> None:
        if job == self._job:
            self.batch.scanning(found)

    def _on_batch_started(self, job: int, files: list[str]) -> None:
        if job != self._job:
            return
        self._job_files = files
        if not files:
            self.drop_zone.show_status("No images found", "The dropped folders hold no image files.")
            if self.batch.progress.maximum() == 0:
                self.batch.hide()
        elif len(files) == 1:
            self.drop_zone.show_status(Path(files[0]).name, "Classifying…")
            if self.batch.progress.maximum() == 0:
                self.batch.hide()  # only the folder walk had shown it
        else:
            self.drop_zone.show_status(f"{len(files):,} images", "Results fill in below.")
            self.batch.start(files)

    def _on_batch_rows(self, job: int, start: int, items: list[BatchItem]) -> None:
        if job != self._job:
            return
        if len(self._job_files) == 1:
            item = items[0]
            thumb = array_to_qimage(item.thumbnail) if item.thumbnail is not None else None
            self.drop_zone.show_image(thumb, Path(item.path).name, item.summary)
            self._show_item(item)
        else:
            self.batch.fill(start, items)

    def _show_item(self, item: BatchItem) -> None:
        """Shows one image's full result in the result panel."""
        self._source = "image"
        self._live_timer.stop()
        name = Path(item.path).name
        found = item.preview if item.preview is not None else item.thumbnail
        found_image = array_to_qimage(found) if found is not None else None
        self.result.show_found(found_image)
        if item.prediction is not None:
            self.result.show_prediction(item.prediction, self._classes, name)
        else:
            self.result.show_empty(f"Error: {item.error}", name)
        pasted = self._pasted[1] if self._pasted is not None and self._pasted[0] == item.path else None
        self.explain.show_image(pasted, "" if pasted is not None or item.error else item.path, found_image)

    def _on_batch_finished(self, job: int, cancelled: bool) -> None:
        if job != self._job:
            return
        self._job = None
        if len(self._job_files) > 1 or self.batch.progress.maximum() == 0:
            self.batch.finish(cancelled)
        if cancelled:
            self.status_message.emit("Cancelled")
        self.batch_done.emit(job, cancelled)

    def _on_batch_failed(self, job: int, message: str) -> None:
        if job == self._job:
            self.banner.show_message(message)

    # --- lifetime ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stops the inference thread; returns when it has finished (idempotent)."""
        self._live_timer.stop()
        self._inference.shutdown()
