"""The Evaluate view's worker: loads a model and a dataset, scores every image and
draws saliency thumbnails, all in its own QThread (never the GUI thread).

The results cross to the GUI as numpy arrays and core dataclasses; the Predictor and
the dataset's tensors stay in the worker, which keeps the last ones for saliency.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

SALIENCY_CHUNK = 32  # thumbnails per signal: a gallery fills in as they come
SUSPECTS_SHOWN = 500  # the suspect-label list: the images with the highest loss


@dataclass(frozen=True)
class EvalOutcome:
    """One finished evaluation.

    images: uint8 (N, C, H, W), the images as the model saw them; scores: SampleScores;
    suspects: the highest-loss images first (image folders only, else empty).
    """

    job: int
    source: Any  # EvalSource
    title: str
    classes: list[str]
    scores: Any  # SampleScores
    images: np.ndarray
    paths: list[str] = field(default_factory=list)
    suspects: list = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        n = len(self.scores.labels)
        return float((self.scores.predicted == self.scores.labels).sum() / n) if n else 0.0


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


class EvaluateWorker(QObject):
    """Thread-safe methods (GUI thread): `evaluate`, `cancel`, `saliency`.

    Signals:
        progress(int, int, int, float): job, images done, total, seconds left.
        finished(int, object): job, EvalOutcome.
        failed(int, str): job, readable message.
        cancelled(int): job.
        saliency_ready(int, int, object): request id, first position, list of uint8 RGB
            pictures (Grad-CAM for the predicted class over each image).
    """

    progress = Signal(int, int, int, float)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    saliency_ready = Signal(int, int, object)
    _evaluate_requested = Signal(int, object, object)
    _saliency_requested = Signal(int, object, object)

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        self._device = device
        self._jobs = count(1)
        self._cancel = threading.Event()
        self._latest_saliency = 0
        self._predictor = None
        self._images = None
        self._evaluate_requested.connect(self._evaluate)
        self._saliency_requested.connect(self._saliency)

    # --- GUI thread -----------------------------------------------------------------------

    def evaluate(self, source) -> int:
        """Scores `source` (an EvalSource); returns the job id the signals carry. A job
        still running is cancelled."""
        self._cancel.set()
        self._cancel = threading.Event()
        job = next(self._jobs)
        self._evaluate_requested.emit(job, source, self._cancel)
        return job

    def cancel(self) -> None:
        self._cancel.set()
        self._latest_saliency += 1

    def saliency(self, request_id: int, indices: list[int], targets: list[int]) -> None:
        """Saliency thumbnails for these images of the last evaluation; a newer request
        stops an older one between chunks."""
        self._latest_saliency = request_id
        self._saliency_requested.emit(request_id, list(indices), list(targets))

    # --- worker thread --------------------------------------------------------------------

    @Slot(int, object, object)
    def _evaluate(self, job: int, source, cancel: threading.Event) -> None:
        if cancel.is_set():
            self.cancelled.emit(job)
            return
        try:
            from app.core.evaluation_run import load_source, score_with_progress
            from app.core.mistakes import rank_suspects

            predictor, data = load_source(source, self._device)
            scores = score_with_progress(
                predictor, data, lambda d, t, eta: self.progress.emit(job, d, t, eta), cancel
            )
            if scores is None:
                self.cancelled.emit(job)
                return
            suspects = rank_suspects(scores, data.classes, data.paths)[:SUSPECTS_SHOWN] if data.paths else []
        except Exception as e:  # DataError, ModelFileError, anything torch raises
            self.failed.emit(job, _describe(e))
            return
        self._predictor, self._images = predictor, data.images
        title = f"{Path(source.model).stem} on {source.describe()}"
        images = data.images.numpy()
        self.finished.emit(job, EvalOutcome(job, source, title, list(data.classes), scores, images,
                                            list(data.paths), suspects))  # fmt: skip

    @Slot(int, object, object)
    def _saliency(self, request_id: int, indices: list[int], targets: list[int]) -> None:
        from app.core.evaluation_run import saliency_thumbnails

        if self._predictor is None or self._images is None:
            return
        for s in range(0, len(indices), SALIENCY_CHUNK):
            if request_id != self._latest_saliency:
                return  # the gallery moved on to another cell
            idx = indices[s : s + SALIENCY_CHUNK]
            try:
                pictures = saliency_thumbnails(self._predictor, self._images[idx], targets[s : s + SALIENCY_CHUNK])
            except Exception:  # decoration: the gallery keeps its plain thumbnails
                return
            self.saliency_ready.emit(request_id, s, pictures)


class EvaluateThread:
    """Owns an EvaluateWorker and its QThread; `shutdown()` joins it."""

    def __init__(self, device: str = "cpu") -> None:
        self.worker = EvaluateWorker(device)
        self.thread = QThread()
        self.thread.setObjectName("evaluate")
        self.worker.moveToThread(self.thread)
        self.thread.finished.connect(self.worker.deleteLater)
        self.thread.start()
        self._down = False

    def shutdown(self) -> None:
        if self._down:
            return
        self._down = True
        self.worker.cancel()
        self.thread.quit()
        self.thread.wait()
