"""Explanation requests ("Show why"), answered in the inference thread.

`ExplainWorker` lives in the same QThread as the `InferenceWorker` and uses its
Predictor there, so the model is never run from the GUI thread and never from two
threads at once. Like live prediction, the latest request wins: while one
explanation runs, newer requests replace the one waiting.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

if TYPE_CHECKING:
    from app.gui.inference_worker import InferenceWorker

NO_MODEL = "No model is loaded."


@dataclass(frozen=True)
class ExplainRequest:
    """What to explain: `image` pixels (canvas, pasted) or a file `path`.

    clean: a canvas drawing (fast preprocessing path); target: class index, None for
    the predicted one; method: "gradcam" or "ig".
    """

    request_id: int
    image: np.ndarray | None = None
    path: str = ""
    clean: bool = False
    target: int | None = None
    method: str = "gradcam"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


class ExplainWorker(QObject):
    """Explains images with the inference worker's model, in the inference thread.

    Thread-safe methods (GUI thread): `submit`, `drop_pending`.

    Signals:
        explanation_ready(int, object): request id, `ExplanationViews`.
        explanation_failed(int, str): request id, readable message (e.g. a blank image).
    """

    explanation_ready = Signal(int, object)
    explanation_failed = Signal(int, str)
    _wake = Signal()

    def __init__(self, inference: InferenceWorker) -> None:
        super().__init__()
        self._inference = inference
        self._lock = threading.Lock()
        self._pending: ExplainRequest | None = None
        self._wake.connect(self._process)

    def submit(self, request: ExplainRequest) -> None:
        """Queues a request; one not yet started is replaced by it."""
        with self._lock:
            self._pending = request
        self._wake.emit()

    def drop_pending(self) -> None:
        with self._lock:
            self._pending = None

    @Slot()
    def _process(self) -> None:
        with self._lock:
            request, self._pending = self._pending, None
        if request is None:
            return  # a newer request already took this wake-up's place
        predictor = self._inference.predictor()
        if predictor is None:
            self.explanation_failed.emit(request.request_id, NO_MODEL)
            return
        from app.core.explain_views import explain_image

        image = request.path if request.image is None else request.image
        try:
            views = explain_image(
                predictor, image, clean=request.clean, target=request.target, method=request.method
            )
        except Exception as e:  # blank image, unreadable file: a message, never a crash
            self.explanation_failed.emit(request.request_id, _describe(e))
            return
        self.explanation_ready.emit(request.request_id, views)
