"""Probability bars: one per class for small class sets, else the top ten."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

ALL_CLASSES_UP_TO = 12  # more classes than this: show the best TOP_N, sorted
TOP_N = 10
ROW_H = 24
BAR = QColor("#9db4d3")
BEST = QColor("#2f6fd6")
TRACK = QColor("#eef1f5")
TEXT = QColor("#2b2f36")
MARK = QColor("#e07b00")  # the class "Show why" explains when it is not the best one


class TopKView(QWidget):
    """Horizontal probability bars. For ten digits every class keeps its row (bars grow
    and shrink in place while drawing); the best class is highlighted.

    Signals:
        class_clicked(str): the user clicked a class's row ("why not 9?").
    """

    class_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("topKView")
        self.setAccessibleName("Class probabilities")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._rows: list[tuple[str, float]] = []
        self._best: str | None = None
        self._placeholder_classes: list[str] = [str(i) for i in range(10)]
        self._marked: str | None = None
        self.setToolTip("Click a class to see what speaks for or against it (Show why)")
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def rows(self) -> list[tuple[str, float]]:
        """The (class, probability) rows shown, top to bottom."""
        return list(self._rows)

    def set_classes(self, classes: list[str]) -> None:
        """Shows empty bars for these classes (before anything is classified)."""
        self._placeholder_classes = list(classes)[:ALL_CLASSES_UP_TO] if len(classes) <= ALL_CLASSES_UP_TO else []
        self.clear()
        self.updateGeometry()

    def set_probabilities(self, classes: list[str], probabilities: list[float]) -> None:
        pairs = list(zip(classes, probabilities))
        self._best = max(pairs, key=lambda p: p[1])[0] if pairs else None
        if len(pairs) > ALL_CLASSES_UP_TO:
            pairs = sorted(pairs, key=lambda p: -p[1])[:TOP_N]
        self._rows = pairs
        self.updateGeometry()
        self.update()

    def set_marked(self, name: str | None) -> None:
        """Outlines this class's row (the class being explained), None for none."""
        self._marked = name
        self.update()

    def class_at(self, y: float) -> str | None:
        """The class of the row at height `y` (widget coordinates), or None."""
        i = int((y - 2) // ROW_H)
        return self._rows[i][0] if 0 <= i < len(self._rows) and y >= 2 else None

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        name = self.class_at(event.position().y()) if event.button() == Qt.MouseButton.LeftButton else None
        if name is None or self._best is None:
            event.ignore()
            return
        self.class_clicked.emit(name)

    def clear(self) -> None:
        self._rows = [(c, 0.0) for c in self._placeholder_classes]
        self._best = None
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, ROW_H * max(len(self._rows) or len(self._placeholder_classes), 3) + 4)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(180, self.sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        metrics = painter.fontMetrics()
        label_w = max([metrics.horizontalAdvance(c) for c, _ in self._rows] + [metrics.horizontalAdvance("0")]) + 10
        label_w = min(label_w, self.width() // 3)
        pct_w = metrics.horizontalAdvance("100.0%") + 8
        bar_w = max(10.0, self.width() - label_w - pct_w)
        for i, (name, p) in enumerate(self._rows):
            y = i * ROW_H + 2
            best = name == self._best
            font.setBold(best)
            painter.setFont(font)
            painter.setPen(TEXT)
            painter.drawText(QRectF(0, y, label_w - 8, ROW_H - 4), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, name)
            track = QRectF(label_w, y + 3, bar_w, ROW_H - 10)
            if name == self._marked:
                painter.setPen(QPen(MARK, 2))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(QRectF(1, y, self.width() - 2, ROW_H - 4), 4, 4)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(TRACK)
            painter.drawRoundedRect(track, 3, 3)
            if p > 0:
                painter.setBrush(BEST if best else BAR)
                painter.drawRoundedRect(QRectF(track.x(), track.y(), max(2.0, bar_w * p), track.height()), 3, 3)
            painter.setPen(TEXT)
            painter.drawText(
                QRectF(label_w + bar_w, y, pct_w, ROW_H - 4),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{p * 100:.1f}%" if self._best is not None else "",
            )
        painter.end()
