""""Show why" on the Classify tab: heat maps over the model input and the drawing or
dropped image, for the predicted class or any class clicked in the probability bars.

The panel only turns user events into `ExplainRequest`s for the inference thread's
`ExplainWorker` and puts the pictures that come back into the views it was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.gui.explain_worker import ExplainRequest, ExplainWorker
from app.gui.qt_image import array_to_qimage
from app.gui.settings import DEFAULTS

if TYPE_CHECKING:
    from app.gui.canvas import DrawingCanvas
    from app.gui.result_panel import ResultPanel

METHODS = [("gradcam", "Regions (Grad-CAM)"), ("ig", "Pixels (integrated gradients)")]
OFF_HINT = "Show why: a heat map of what made the model answer"
ON_HINT = "Click a class's bar to ask \u201cwhy not?\u201d"


class ExplainPanel(QWidget):
    """The "Show why" switch, the method and what is being explained.

    Args:
        explainer: the inference thread's ExplainWorker.
        canvas: gets the heat map over the drawing.
        result: its model-input view and found-image view get the pictures; its
            probability bars pick the class.

    Signals:
        explanation_shown(int): request id whose pictures (or failure) are on screen.
    """

    explanation_shown = Signal(int)

    def __init__(self, explainer: ExplainWorker, canvas: DrawingCanvas, result: ResultPanel) -> None:
        super().__init__()
        self.setObjectName("explainPanel")
        self._explainer = explainer
        self._canvas = canvas
        self._result = result
        self._classes: list[str] = []
        self._target: int | None = None  # None: the predicted class
        self._source: ExplainRequest | None = None  # what is shown: image/path, clean
        self._found_plain = None  # the found-image view's own picture, restored when off
        self._next_id = 0
        self._valid_from = 1  # answers with smaller ids are for something no longer shown
        self._shown_id = 0
        self._settle = QTimer(self)  # the canvas: explain when the drawing is still
        self._settle.setSingleShot(True)
        self._settle.setInterval(DEFAULTS.explain_settle_ms)
        self._settle.timeout.connect(self._request)

        self.toggle = QCheckBox("Show why")
        self.toggle.setObjectName("showWhyToggle")
        self.toggle.setToolTip("Colour what made the model answer: hot = evidence for the class")
        self.method = QComboBox()
        self.method.setObjectName("explainMethod")
        for key, text in METHODS:
            self.method.addItem(text, key)
        self.method.setToolTip("Regions: where the network looked (Grad-CAM). Pixels: each pixel's "
                               "share of the score, red for and blue against (integrated gradients)")  # fmt: skip
        self.caption = QLabel(OFF_HINT)
        self.caption.setObjectName("explainCaption")
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: #6b7280;")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.toggle)
        row.addWidget(self.method)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.caption)

        self.toggle.toggled.connect(self._on_toggled)
        self.method.currentIndexChanged.connect(lambda _i: self._request())
        result.top_k.class_clicked.connect(self.explain_class)
        explainer.explanation_ready.connect(self._on_ready)
        explainer.explanation_failed.connect(self._on_failed)

    # --- what the tab tells the panel ------------------------------------------------------

    def set_classes(self, classes: list[str]) -> None:
        self._classes = list(classes)
        self._set_target(None)
        self._request()

    def show_canvas(self) -> None:
        """The canvas's drawing (or its emptiness) is what the result panel shows now."""
        self._found_plain = None
        empty = self._canvas.is_empty()
        self._source = None if empty else ExplainRequest(0, clean=True)  # rendered when asked
        if empty:
            self._settle.stop()
            self._clear_pictures()
            self._set_target(None)
            self._invalidate()  # an answer for the old drawing is stale
        elif self.toggle.isChecked():
            self._settle.start()  # restarted by every live prediction while drawing

    def show_image(self, image: np.ndarray | None, path: str, found) -> None:
        """A dropped or pasted image is on screen: pixels (pasted) or its file `path`;
        `found`: the found-image view's own picture (QImage or None)."""
        self._canvas.set_heat(None)
        self._found_plain = found
        self._invalidate()  # the previous image's answers must not land on this one
        self._source = ExplainRequest(0, image, path=path) if (image is not None or path) else None
        if self._source is None:  # an unreadable file: nothing to explain
            self._result.model_input.set_overlay(None)
            self.caption.setText(ON_HINT if self.toggle.isChecked() else OFF_HINT)
        self._request()

    def explain_class(self, name: str) -> None:
        """Explains this class (a click on its bar); the predicted class again if it is
        the one already explained. Switches "Show why" on."""
        if name not in self._classes:
            return
        index = self._classes.index(name)
        self._set_target(None if index == self._target else index)
        if not self.toggle.isChecked():
            self.toggle.setChecked(True)  # requests
        else:
            self._request()

    def target(self) -> int | None:
        return self._target

    # --- requests and answers ------------------------------------------------------------

    def _set_target(self, index: int | None) -> None:
        self._target = index
        self._result.top_k.set_marked(None if index is None else self._classes[index])

    def _on_toggled(self, on: bool) -> None:
        if on:
            self._request()
            return
        self._explainer.drop_pending()
        self._invalidate()  # answers still on their way are stale
        self._clear_pictures()
        self._set_target(None)
        self.caption.setText(OFF_HINT)

    def _request(self) -> None:
        self._settle.stop()
        if not self.toggle.isChecked() or self._source is None or not self._classes:
            return
        self._next_id += 1
        s = self._source
        image = self._canvas.render_array() if s.clean else s.image
        self._explainer.submit(ExplainRequest(
            self._next_id, image, s.path, s.clean, self._target, self.method.currentData(),
        ))  # fmt: skip

    def _invalidate(self) -> None:
        self._valid_from = self._next_id + 1

    def _fresh(self, request_id: int) -> bool:
        # Any answer newer than the one shown, as live prediction does: while requests
        # come faster than answers (a class clicked every 60 ms, live drawing), each
        # answer still shows; its caption says which class it explains.
        return self.toggle.isChecked() and request_id >= self._valid_from and request_id > self._shown_id

    def _on_ready(self, request_id: int, views) -> None:
        if not self._fresh(request_id):
            return
        self._result.model_input.set_overlay(views.input_overlay)
        if self._source is not None and self._source.clean:
            self._canvas.set_heat(views.source_heat)
        else:
            self._result.show_found(array_to_qimage(views.source_overlay))
        self.caption.setText(f"{views.caption[:1].upper()}{views.caption[1:]}. {ON_HINT}")
        self._shown_id = request_id
        self.explanation_shown.emit(request_id)

    def _on_failed(self, request_id: int, message: str) -> None:
        if not self._fresh(request_id):
            return
        self._shown_id = request_id
        self._clear_pictures()
        self.caption.setText(f"Nothing to explain: {message}")
        self.explanation_shown.emit(request_id)

    def _clear_pictures(self) -> None:
        self._canvas.set_heat(None)
        self._result.model_input.set_overlay(None)
        if self._found_plain is not None:
            self._result.show_found(self._found_plain)

    @property
    def last_request_id(self) -> int:
        return self._next_id

