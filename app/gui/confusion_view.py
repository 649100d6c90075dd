"""Confusion matrix heatmap with per-class accuracy bars, painted directly."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.core.formatting import percent

CORRECT = QColor(33, 118, 210)
WRONG = QColor(220, 70, 50)


def _mix(base: QColor, color: QColor, t: float) -> QColor:
    t = max(0.0, min(1.0, t))
    return QColor(
        round(base.red() + (color.red() - base.red()) * t),
        round(base.green() + (color.green() - base.green()) * t),
        round(base.blue() + (color.blue() - base.blue()) * t),
    )


class ConfusionView(QWidget):
    """Rows: true class, columns: predicted. Cells are shaded by the row share (blue on
    the diagonal, red off it) and show counts; a bar per row shows the class accuracy.

    Signals:
        cell_clicked(int, int): true class, predicted class of a clicked cell.
    """

    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionView")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(260, 220)
        self._classes: list[str] = []
        self._index: list[int] | None = None  # the real class of each drawn row, when capped
        self._matrix: list[list[int]] = []
        self._acc: list[float] = []
        self._title = "Confusion matrix (after the first epoch)"
        self._grid: tuple[float, float, float] | None = None  # x0, y0, cell side as painted
        self._selected: tuple[int, int] | None = None

    # --- data ------------------------------------------------------------------------------

    def set_data(
        self, classes: list[str], matrix: list[list[int]], per_class_acc: list[float], title: str = "",
        index: list[int] | None = None,
    ) -> None:  # fmt: skip
        """Shows a matrix (rows true, columns predicted) and per-class accuracy (0..1).

        index: when there are too many classes to draw (`app.core.confusion.shown`), the
        classes `matrix` covers; `classes` and `per_class_acc` are then of every class,
        and clicks and selections speak of the real class indices."""
        n = len(matrix)
        self._index = list(index) if index is not None and len(index) == n else None
        if self._index is not None:
            self._classes = [classes[i] if i < len(classes) else str(i) for i in self._index]
            self._acc = [per_class_acc[i] if i < len(per_class_acc) else 0.0 for i in self._index]
            title = f"{title or 'Confusion matrix'}: the {n} classes with the most mistakes, of {len(classes):,}"
        else:
            self._classes = list(classes) if len(classes) == n else [str(i) for i in range(n)]
            self._acc = list(per_class_acc)
        self._matrix = [list(map(int, row)) for row in matrix]
        self._title = title or "Confusion matrix"
        self.setToolTip("rows: true class, columns: predicted class; click a cell to see its images")
        self.update()

    def show_epoch(self, classes: list[str], ev, note: str = "") -> None:
        """Shows a training epoch's matrix (`app.core.events.EpochEvent`), titled with the
        epoch, `note` and the split it counts (validation, or training data without one)."""
        split = "validation" if ev.val_acc is not None else "training data"
        title = f"Confusion matrix — epoch {ev.epoch + 1}{note} ({split})"
        self.set_data(classes, ev.confusion, ev.per_class_acc, title, ev.confusion_classes)

    def set_selected(self, cell: tuple[int, int] | None) -> None:
        """Outlines this (true, predicted) cell, None for none (or when it is not drawn)."""
        if cell is not None and self._index is not None:
            where = {c: k for k, c in enumerate(self._index)}
            cell = (where[cell[0]], where[cell[1]]) if cell[0] in where and cell[1] in where else None
        self._selected = cell
        self.update()

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The (true, predicted) cell under a point, as last painted, or None."""
        if self._grid is None:
            return None
        x0, y0, cell = self._grid
        i, j = int((y - y0) // cell), int((x - x0) // cell)
        n = len(self._matrix)
        return (i, j) if x >= x0 and y >= y0 and i < n and j < n else None

    def cell_center(self, true: int, predicted: int) -> QPointF | None:
        """Where a cell (real class indices) was last painted (its centre), or None."""
        if self._grid is None:
            return None
        if self._index is not None:
            if true not in self._index or predicted not in self._index:
                return None
            true, predicted = self._index.index(true), self._index.index(predicted)
        x0, y0, cell = self._grid
        return QPointF(x0 + (predicted + 0.5) * cell, y0 + (true + 0.5) * cell)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        cell = self.cell_at(event.position().x(), event.position().y())
        if cell is None or event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        if self._index is not None:
            cell = (self._index[cell[0]], self._index[cell[1]])
        self.cell_clicked.emit(*cell)

    def clear(self) -> None:
        self._selected = None
        self._classes, self._matrix, self._acc, self._index = [], [], [], None
        self._title = "Confusion matrix (after the first epoch)"
        self.update()

    def matrix(self) -> list[list[int]]:
        return [row[:] for row in self._matrix]

    def per_class_accuracy(self) -> list[float]:
        return list(self._acc)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(420, 340)

    # --- painting --------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(pal.ColorRole.WindowText)
        base = pal.color(pal.ColorRole.Base)
        font = QFont(self.font())
        title_font = QFont(font)
        title_font.setBold(True)
        p.setFont(title_font)
        fm_title = QFontMetrics(title_font)
        p.setPen(text)
        p.drawText(QRectF(0, 0, self.width(), fm_title.height() + 4), Qt.AlignmentFlag.AlignLeft, self._title)
        top = fm_title.height() + 8
        n = len(self._matrix)
        if n == 0:
            self._grid = None
            p.setPen(pal.color(pal.ColorRole.PlaceholderText))
            p.drawText(QRectF(0, top, self.width(), self.height() - top), Qt.AlignmentFlag.AlignCenter,
                       "Train a model to see which classes it confuses")  # fmt: skip
            p.end()
            return

        small = QFont(font)
        small.setPointSizeF(max(6.0, font.pointSizeF() * (0.85 if n <= 10 else 0.7)))
        fm = QFontMetrics(small)
        label_w = min(max(fm.horizontalAdvance(c) for c in self._classes) + 10, 110)
        bar_w = 70
        header_h = fm.height() + 4
        avail_w = self.width() - label_w - bar_w - 12
        avail_h = self.height() - top - header_h - fm.height() - 6
        cell = max(4.0, min(avail_w / n, avail_h / n))
        x0, y0 = label_w, top + header_h
        self._grid = (x0, y0, cell)
        p.setFont(small)

        # Column headers: class index when names are long, else the name.
        short = all(fm.horizontalAdvance(c) <= cell - 2 for c in self._classes)
        for j, c in enumerate(self._classes):
            p.setPen(text)
            p.drawText(QRectF(x0 + j * cell, top, cell, header_h), Qt.AlignmentFlag.AlignCenter, c if short else str(j))
        for i, row in enumerate(self._matrix):
            total = max(sum(row), 1)
            y = y0 + i * cell
            name = self._classes[i] if short else f"{i} {self._classes[i]}"
            p.setPen(text)
            p.drawText(QRectF(0, y, label_w - 6, cell),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(name, Qt.TextElideMode.ElideRight, label_w - 6))  # fmt: skip
            for j, v in enumerate(row):
                share = v / total
                color = CORRECT if i == j else WRONG
                # sqrt: rare confusions (1-2%) must still be visible
                fill = _mix(base, color, share**0.5 if v else 0.0)
                r = QRectF(x0 + j * cell, y, cell - 1, cell - 1)
                p.fillRect(r, fill)
                if v and cell >= fm.horizontalAdvance(str(v)) + 2:
                    p.setPen(QColor("white") if share > 0.45 else text)
                    p.drawText(r, Qt.AlignmentFlag.AlignCenter, str(v))
            # per-class accuracy bar
            acc = self._acc[i] if i < len(self._acc) else 0.0
            bx = x0 + n * cell + 8
            br = QRectF(bx, y + cell * 0.2, bar_w - 4, cell * 0.6)
            p.fillRect(br, _mix(base, text, 0.08))
            p.fillRect(QRectF(br.x(), br.y(), br.width() * acc, br.height()), _mix(base, CORRECT, 0.35 + 0.65 * acc))
            p.setPen(text)
            p.drawText(br, Qt.AlignmentFlag.AlignCenter, f"{percent(acc, 0)}")
        if self._selected is not None:
            i, j = self._selected
            p.setPen(QPen(text, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(x0 + j * cell, y0 + i * cell, cell - 1, cell - 1))
        # axis captions
        p.setPen(pal.color(pal.ColorRole.PlaceholderText))
        p.drawText(QRectF(x0, y0 + n * cell + 2, n * cell, fm.height() + 2), Qt.AlignmentFlag.AlignCenter, "predicted")
        p.drawText(QRectF(x0 + n * cell + 8, top, bar_w, header_h), Qt.AlignmentFlag.AlignCenter, "accuracy")
        p.end()
