"""The background inference worker: one Predictor, confined to its own QThread.

The GUI thread never runs the model. It posts requests with the thread-safe methods
below; the worker answers with signals (queued back to the GUI thread).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from app.gui.batch_items import (
    PREVIEW_PX,
    THUMBNAIL_PX,
    BatchItem,
    boxed,
    make_thumbnail,
    source_size,
)
from app.gui.explain_worker import ExplainWorker

if TYPE_CHECKING:  # torch is imported in the worker thread, never at GUI start-up
    from app.core.predictor import Predictor

CHUNK = 32  # files classified per model call in a batch, and table rows per update
SCAN_REPORT_S = 0.15  # how often the folder walk reports how many files it found
NO_MODEL = "No model is loaded: choose one in the Model list above."


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


class _GuiRelay(QObject):
    """Lives in the GUI thread: what a helper thread reports reaches the GUI through it,
    as if the worker had said it (a helper thread's own emissions would run plain
    callbacks in that thread)."""

    failed = Signal(str, str)

    def __init__(self, target: Signal) -> None:
        super().__init__()
        self._target = target
        self.failed.connect(self._forward, Qt.ConnectionType.QueuedConnection)

    @Slot(str, str)
    def _forward(self, path: str, message: str) -> None:
        self._target.emit(path, message)


class InferenceWorker(QObject):
    """Runs the model for the canvas (live, latest request wins) and for image batches.

    Thread-safe methods (call them from the GUI thread): `load_model`, `submit`,
    `drop_pending`, `classify_paths`, `classify_array`, `cancel_batch`, `stop`.

    Signals:
        model_loaded(object, str, str): ModelCard, weights path, device name.
        model_failed(str, str): path, readable message.
        prediction_ready(int, object): request id, Prediction (canvas requests).
        prediction_failed(int, str): request id, readable message.
        batch_scanning(int, int): job id, image files found so far (folder walk).
        batch_started(int, object): job id, list of the file names to classify.
        batch_rows(int, int, object): job id, index of the first row, list[BatchItem].
        batch_finished(int, bool): job id, True when cancelled.
        batch_failed(int, str): job id, readable message.
    """

    model_loaded = Signal(object, str, str)
    model_failed = Signal(str, str)
    prediction_ready = Signal(int, object)
    prediction_failed = Signal(int, str)
    batch_scanning = Signal(int, int)
    batch_started = Signal(int, object)
    batch_rows = Signal(int, int, object)
    batch_finished = Signal(int, bool)
    batch_failed = Signal(int, str)

    # Private requests, queued into the worker thread.
    _load_requested = Signal(str)
    _adopt_requested = Signal(object)
    _wake = Signal()
    _paths_requested = Signal(int, object, object)
    _array_requested = Signal(int, object, str, object)

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        self._device = device
        self._predictor: Predictor | None = None
        self._lock = threading.Lock()
        self._pending: tuple[int, np.ndarray] | None = None
        self._jobs: dict[int, threading.Event] = {}
        self._job_ids = count(1)
        self._stopping = threading.Event()
        self._load_requested.connect(self._load)
        self._adopt_requested.connect(self._adopt)
        self._relay = _GuiRelay(self.model_failed)  # no parent: it stays in the GUI thread
        self._wake.connect(self._process_live)
        self._paths_requested.connect(self._classify_paths)
        self._array_requested.connect(self._classify_array)

    # --- thread-safe API (GUI thread) ---------------------------------------------------------

    def load_model(self, path: str) -> None:
        """Loads a model file; answers with model_loaded or model_failed.

        While a batch runs, the file is read at once on a helper thread: a broken model
        is refused now, not when the batch ends, and a good one takes over after the
        batch (the batch keeps one model throughout)."""
        with self._lock:
            busy = bool(self._jobs)
        if not busy:
            self._load_requested.emit(path)
            return
        threading.Thread(target=self._load_beside_batch, args=(path,), name="model-load", daemon=True).start()

    def submit(self, request_id: int, image: np.ndarray) -> None:
        """Classifies a canvas image. A request not yet started is replaced by a newer
        one: while the model is busy only the latest drawing is kept."""
        with self._lock:
            self._pending = (request_id, image)
        self._wake.emit()

    def drop_pending(self) -> None:
        """Forgets a canvas request that has not started (e.g. the canvas was cleared)."""
        with self._lock:
            self._pending = None

    def classify_paths(self, paths: list[str]) -> int:
        """Classifies files and folders (walked recursively in the worker). Returns the
        job id that the batch_* signals carry."""
        job, cancel = self._new_job()
        self._paths_requested.emit(job, list(paths), cancel)
        return job

    def classify_array(self, image: np.ndarray, name: str) -> int:
        """Classifies one in-memory image (e.g. pasted) as a batch of one."""
        job, cancel = self._new_job()
        self._array_requested.emit(job, image, name, cancel)
        return job

    def cancel_batch(self, job: int | None = None) -> None:
        """Cancels one batch, or all of them; it stops between two files."""
        with self._lock:
            events = list(self._jobs.values()) if job is None else [self._jobs.get(job)]
        for e in events:
            if e is not None:
                e.set()

    def stop(self) -> None:
        """Makes running work return soon; then quit and wait for the thread."""
        self._stopping.set()
        self.drop_pending()
        self.cancel_batch()

    def predictor(self) -> Predictor | None:
        """The loaded Predictor; only for objects living in the worker thread."""
        return self._predictor

    def _new_job(self) -> tuple[int, threading.Event]:
        job, cancel = next(self._job_ids), threading.Event()
        with self._lock:
            self._jobs[job] = cancel
        return job, cancel

    # --- worker thread ------------------------------------------------------------------------

    def _open(self, path: str) -> tuple[Predictor | None, str]:
        """(the loaded model, "") or (None, why it cannot be used)."""
        if not Path(path).with_suffix(".safetensors").is_file():
            return None, f"{path}: model file not found"
        try:
            from app.core.predictor import Predictor

            return Predictor.load(path, device=self._device), ""
        except Exception as e:  # ModelFileError, and anything torch raises on odd files
            return None, _describe(e)

    def _load_beside_batch(self, path: str) -> None:
        """Helper thread: reads the model now; the worker takes it after the batch."""
        predictor, problem = self._open(path)
        if self._stopping.is_set():
            return
        if predictor is None:
            self._relay.failed.emit(path, problem)  # at once, through the GUI thread
        else:
            self._adopt_requested.emit(predictor)

    @Slot(str)
    def _load(self, path: str) -> None:
        if self._stopping.is_set():
            return
        predictor, problem = self._open(path)
        if predictor is None:
            self.model_failed.emit(path, problem)
        else:
            self._adopt(predictor)

    @Slot(object)
    def _adopt(self, predictor: Predictor) -> None:
        if self._stopping.is_set():
            return
        self._predictor = predictor
        self.model_loaded.emit(predictor.card, str(predictor.path), str(predictor.device))

    @Slot()
    def _process_live(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None or self._stopping.is_set():
            return  # a newer request already took this wake-up's place
        request_id, image = pending
        if self._predictor is None:
            self.prediction_failed.emit(request_id, NO_MODEL)
            return
        try:  # canvas drawings are clean: the fast path, no photo front end
            pred = self._predictor.predict(image, top_k=len(self._predictor.classes), clean=True)
        except Exception as e:
            self.prediction_failed.emit(request_id, f"classification failed: {_describe(e)}")
            return
        self.prediction_ready.emit(request_id, pred)

    def _finish(self, job: int, cancelled: bool) -> None:
        with self._lock:
            self._jobs.pop(job, None)
        self.batch_finished.emit(job, cancelled)

    @Slot(int, object, object)
    def _classify_paths(self, job: int, paths: list[str], cancel: threading.Event) -> None:
        from app.core.images import iter_image_files

        if cancel.is_set():
            self._finish(job, True)
            return
        # The walk runs here, not in the GUI thread: a 10,000-file folder takes a while.
        files: list[str] = []
        last = time.monotonic()
        try:
            for p in iter_image_files(paths):
                if cancel.is_set():
                    self._finish(job, True)
                    return
                files.append(str(p))
                if time.monotonic() - last > SCAN_REPORT_S:
                    last = time.monotonic()
                    self.batch_scanning.emit(job, len(files))
        except Exception as e:
            self.batch_failed.emit(job, f"cannot read the folder: {_describe(e)}")
            self._finish(job, False)
            return
        self.batch_started.emit(job, files)
        if self._predictor is None and files:
            self.batch_failed.emit(job, NO_MODEL)
            self._finish(job, False)
            return
        try:
            rows, start = self._classify_files(job, files, cancel)
        except Exception as e:  # the worker must survive anything (file errors are rows)
            self.batch_failed.emit(job, f"classification failed: {_describe(e)}")
            self._finish(job, False)
            return
        if start + len(rows) < len(files):
            self._finish(job, True)  # cancelled: the unfinished chunk is dropped
            return
        if rows:
            self.batch_rows.emit(job, start, rows)
        self._finish(job, False)

    def _classify_files(self, job: int, files: list[str], cancel: threading.Event) -> tuple[list[BatchItem], int]:
        """Classifies `files` with `Predictor.predict_paths`, emitting `batch_rows` every
        CHUNK files. Returns the rows not yet emitted and the index of the first."""
        from app.core.images import ImageLoadError

        assert self._predictor is not None
        thumbs: dict[str, deque] = {}

        def keep_thumbnail(path: Path, image) -> None:
            # A reduced copy now (the full image is let go); the box is drawn on it when
            # the result says where the digit is.
            thumbs.setdefault(str(path), deque()).append((make_thumbnail(image, PREVIEW_PX), source_size(image)))

        rows: list[BatchItem] = []
        start = 0
        results = self._predictor.predict_paths(
            files, top_k=len(self._predictor.classes), batch_size=CHUNK, cancel=cancel, on_image=keep_thumbnail
        )
        lone = len(files) == 1
        for path, result in results:
            waiting = thumbs.get(str(path))
            small, size = waiting.popleft() if waiting else (None, (0, 0))
            name = files[start + len(rows)]
            if isinstance(result, ImageLoadError):
                rows.append(BatchItem(name, error=result.problem, thumbnail=boxed(small, size, None, THUMBNAIL_PX)))
            else:
                rows.append(BatchItem(
                    name, result, thumbnail=boxed(small, size, result.region, THUMBNAIL_PX),
                    preview=boxed(small, size, result.region, PREVIEW_PX) if lone else None,
                ))  # fmt: skip
            if len(rows) == CHUNK:
                self.batch_rows.emit(job, start, rows)
                start, rows = start + len(rows), []
                self._process_live()  # keep the canvas live during long batches
        return rows, start

    @Slot(int, object, str, object)
    def _classify_array(self, job: int, image: np.ndarray, name: str, cancel: threading.Event) -> None:
        if cancel.is_set():
            self._finish(job, True)
            return
        self.batch_started.emit(job, [name])
        if self._predictor is None:
            self.batch_failed.emit(job, NO_MODEL)
            self._finish(job, False)
            return
        try:
            pred = self._predictor.predict(image, top_k=len(self._predictor.classes))
            small, size = make_thumbnail(image, PREVIEW_PX), source_size(image)
            item = BatchItem(
                name, pred, thumbnail=boxed(small, size, pred.region, THUMBNAIL_PX),
                preview=boxed(small, size, pred.region, PREVIEW_PX),
            )  # fmt: skip
        except Exception as e:
            item = BatchItem(name, error=f"cannot classify: {_describe(e)}")
        self.batch_rows.emit(job, 0, [item])
        self._finish(job, False)


class InferenceThread:
    """Owns an InferenceWorker, its ExplainWorker and the QThread they live in;
    `shutdown()` joins it."""

    def __init__(self, device: str = "cpu") -> None:
        self.worker = InferenceWorker(device)
        self.explainer = ExplainWorker(self.worker)  # same thread: one model, never shared
        self.thread = QThread()
        self.thread.setObjectName("inference")
        for obj in (self.worker, self.explainer):
            obj.moveToThread(self.thread)
            self.thread.finished.connect(obj.deleteLater)
        self.thread.start()
        self._down = False

    def shutdown(self) -> None:
        """Cancels all work and waits for the thread to finish (idempotent)."""
        if self._down:
            return
        self._down = True
        self.worker.stop()
        self.explainer.drop_pending()
        self.thread.quit()
        self.thread.wait()


__all__ = ["BatchItem", "InferenceThread", "InferenceWorker", "boxed", "make_thumbnail"]  # BatchItem, boxed, make_thumbnail: re-exported from batch_items
