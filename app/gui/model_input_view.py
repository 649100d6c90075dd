"""Shows the exact image the model received, enlarged with nearest-neighbour pixels."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.gui.qt_image import array_to_qimage

EMPTY = QColor("#1d2128")
FRAME = QColor("#c9ced6")


class ModelInputView(QWidget):
    """The model's-eye view: Prediction.model_input scaled up without smoothing, so
    users see each of the 28x28 pixels and why a drawing was misread."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelInputView")
        self.setAccessibleName("Image the model received")
        self.setToolTip("The exact image the model received, after preprocessing")
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setFixedSize(self.sizeHint())
        self._image: QImage | None = None
        self._shown: QImage | None = None  # "Show why": the input with the heat map

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(140, 140)  # 5x a 28 px input

    def image(self) -> QImage | None:
        """The image shown at its original size, or None."""
        return self._image

    def set_pixels(self, pixels: np.ndarray | None) -> None:
        self._image = None if pixels is None or pixels.size == 0 else array_to_qimage(pixels)
        self._shown = None
        self.update()

    def set_overlay(self, rgb: np.ndarray | None) -> None:
        """Shows this picture (the input with a heat map over it) instead of the plain
        input until the next `set_pixels`; None shows the input again."""
        self._shown = None if rgb is None else array_to_qimage(rgb)
        self.update()

    def overlay(self) -> QImage | None:
        return self._shown

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        target = QRectF(0.5, 0.5, self.width() - 1, self.height() - 1)
        painter.fillRect(target, EMPTY)
        if self._shown is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawImage(target, self._shown)
        elif self._image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(target, self._image)
        painter.setPen(QPen(FRAME, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(target)
        painter.end()
