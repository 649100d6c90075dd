"""The handwriting canvas: a square sheet of paper to draw a digit on."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.gui.qt_image import array_to_qimage, qimage_to_array
from app.gui.settings import DEFAULTS

Stroke = list[tuple[float, float]]

PAPER = QColor("#ffffff")
INK = QColor("#111111")
BORDER = QColor("#c9ced6")
GUIDE = QColor("#e3e7ee")


def stroke_path(stroke: Stroke, side: float, origin: QPointF | None = None) -> QPainterPath:
    """A smooth path through a stroke's points (quadratic curves through the midpoints),
    scaled from unit coordinates to a square of `side` pixels at `origin`."""
    ox, oy = (origin.x(), origin.y()) if origin is not None else (0.0, 0.0)
    pts = [QPointF(ox + x * side, oy + y * side) for x, y in stroke]
    path = QPainterPath(pts[0])
    if len(pts) == 1:
        path.lineTo(pts[0])  # a dot: the round cap draws it
        return path
    for i in range(1, len(pts) - 1):
        mid = (pts[i] + pts[i + 1]) / 2.0
        path.quadTo(pts[i], mid)
    path.lineTo(pts[-1])
    return path


class DrawingCanvas(QWidget):
    """Draw a digit with the mouse, a pen tablet or a finger.

    Tablet and touch input reach the canvas as the mouse events Qt synthesizes from them.
    Strokes are kept in unit coordinates (0..1 of the paper's side), so a drawing
    survives resizes and renders at any resolution for the model.

    Signals:
        stroke_changed(): the stroke being drawn grew (every mouse move; throttle it).
        stroke_finished(): a stroke ended (button released).
        drawing_changed(): the drawing changed for good: stroke finished, undo, clear.
    """

    stroke_changed = Signal()
    stroke_finished = Signal()
    drawing_changed = Signal()

    def __init__(self, parent: QWidget | None = None, pen_width: float = DEFAULTS.pen_width) -> None:
        super().__init__(parent)
        self.setObjectName("canvas")
        self.setAccessibleName("Handwriting canvas")
        self.setToolTip("Draw a digit with the left mouse button, a pen or a finger")
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setMinimumSize(240, 240)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)
        self._strokes: list[Stroke] = []
        self._current: Stroke | None = None
        self._pen_width = pen_width
        self._cache: QPixmap | None = None  # finished strokes at the current size
        self._heat: QImage | None = None  # "Show why": a heat map over the paper

    # --- public API -----------------------------------------------------------------------

    def strokes(self) -> list[Stroke]:
        """The finished strokes (unit coordinates), oldest first."""
        return [list(s) for s in self._strokes]

    def is_empty(self) -> bool:
        return not self._strokes and not self._current

    def pen_width(self) -> float:
        """Pen width as a fraction of the paper's side."""
        return self._pen_width

    def set_pen_width(self, fraction: float) -> None:
        fraction = min(max(fraction, DEFAULTS.pen_width_min), DEFAULTS.pen_width_max)
        if fraction != self._pen_width:
            self._pen_width = fraction
            self._invalidate()
            if not self.is_empty():
                self.drawing_changed.emit()

    def undo(self) -> None:
        """Removes the last stroke."""
        if self._current is not None:
            self._current = None
        elif self._strokes:
            self._strokes.pop()
        else:
            return
        self._invalidate()
        self.drawing_changed.emit()

    def clear(self) -> None:
        if self.is_empty():
            return
        self._strokes.clear()
        self._current = None
        self._invalidate()
        self.drawing_changed.emit()

    def render_array(self, size: int = DEFAULTS.render_size) -> np.ndarray:
        """The drawing as a uint8 (size, size) image, dark ink on white paper, the way a
        scanned digit looks (so it takes the same preprocessing path as a file)."""
        image = QImage(size, size, QImage.Format.Format_Grayscale8)
        image.fill(PAPER)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._draw_strokes(painter, self._all_strokes(), float(size), QPointF(0, 0))
        painter.end()
        return qimage_to_array(image)

    def set_heat(self, rgba: np.ndarray | None) -> None:
        """Paints this RGBA layer (transparent where cold) over the paper; None removes
        it. It stays until replaced: the caller clears it when it no longer applies."""
        self._heat = None if rgba is None else array_to_qimage(rgba)
        self.update()

    def heat(self) -> QImage | None:
        return self._heat

    # --- geometry ---------------------------------------------------------------------------

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt override)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return width

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(420, 420)

    def paper_rect(self) -> QRectF:
        """The square drawing area: centred across, at the top of the widget."""
        side = float(min(self.width(), self.height()) - 2)
        return QRectF((self.width() - side) / 2, 1.0, side, side)

    def _to_unit(self, pos: QPointF) -> tuple[float, float]:
        r = self.paper_rect()
        x = (pos.x() - r.x()) / r.width()
        y = (pos.y() - r.y()) / r.height()
        return min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)

    # --- input ------------------------------------------------------------------------------
    # Moves are followed while a stroke is open rather than by event.buttons(), so input
    # devices and test drivers that report no buttons on moves still draw.

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        self._current = [self._to_unit(event.position())]
        self.update()
        self.stroke_changed.emit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._current is None:
            event.ignore()
            return
        point = self._to_unit(event.position())
        last = self._current[-1]
        side = max(self.paper_rect().width(), 1.0)
        if abs(point[0] - last[0]) * side < 0.75 and abs(point[1] - last[1]) * side < 0.75:
            return  # sub-pixel jitter adds points, not shape
        self._current.append(point)
        self.update()
        self.stroke_changed.emit()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or self._current is None:
            event.ignore()
            return
        point = self._to_unit(event.position())
        if point != self._current[-1]:
            self._current.append(point)
        self._strokes.append(self._current)
        self._current = None
        self._invalidate()
        self.stroke_finished.emit()
        self.drawing_changed.emit()

    # --- painting ---------------------------------------------------------------------------

    def _all_strokes(self) -> list[Stroke]:
        return self._strokes + ([self._current] if self._current else [])

    def _pen(self, side: float) -> QPen:
        pen = QPen(INK, max(1.0, self._pen_width * side))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        return pen

    def _draw_strokes(self, painter: QPainter, strokes: list[Stroke], side: float, origin: QPointF) -> None:
        painter.setPen(self._pen(side))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for stroke in strokes:
            painter.drawPath(stroke_path(stroke, side, origin))

    def _invalidate(self) -> None:
        self._cache = None
        self.update()

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._cache = None
        super().resizeEvent(event)

    def _finished_layer(self) -> QPixmap:
        """Finished strokes on the paper, cached: redrawn only on undo/clear/resize."""
        if self._cache is None or self._cache.size() != self.size() * self.devicePixelRatioF():
            dpr = self.devicePixelRatioF()
            pix = QPixmap(self.size() * dpr)
            pix.setDevicePixelRatio(dpr)
            pix.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pix)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            r = self.paper_rect()
            painter.setPen(QPen(BORDER, 1))
            painter.setBrush(PAPER)
            painter.drawRoundedRect(r, 8, 8)
            # A faint box where MNIST puts a digit (20 of 28 px): a hint for the size.
            inset = r.width() * 4 / 28
            guide = QPen(GUIDE, 1, Qt.PenStyle.DashLine)
            painter.setPen(guide)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(r.adjusted(inset, inset, -inset, -inset), 6, 6)
            painter.setClipRect(r)
            self._draw_strokes(painter, self._strokes, r.width(), r.topLeft())
            painter.end()
            self._cache = pix
        return self._cache

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._finished_layer())
        if self._heat is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.paper_rect(), self._heat)
        if self._current:
            r = self.paper_rect()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setClipRect(r)
            self._draw_strokes(painter, [self._current], r.width(), r.topLeft())
        painter.end()
