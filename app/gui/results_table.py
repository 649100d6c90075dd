"""The batch results table: thumbnail, file, label, confidence, or the error."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QImage
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from app.core.fileio import atomic_write_text
from app.core.formatting import percent
from app.gui.batch_items import BatchItem
from app.gui.qt_image import array_to_qimage

COLUMNS = ("", "File", "Label", "Confidence", "Note")
PENDING, CANCELLED = "…", "not classified (cancelled)"
ERROR = QColor("#b3261e")
MUTED = QColor("#8a919c")
DOUBT = QColor("#b45309")  # amber: "not sure" and "does not look like"
ROW_H = 44


class ResultsModel(QAbstractTableModel):
    """Rows are created when a batch starts and filled in as results arrive."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._paths: list[str] = []
        self._items: list[BatchItem | None] = []
        self._thumbs: dict[int, QImage] = {}
        self._cancelled = False
        self._root: Path | None = None

    def reset(self, paths: list[str]) -> None:
        self.beginResetModel()
        self._paths = list(paths)
        self._items = [None] * len(paths)
        self._thumbs = {}
        self._cancelled = False
        try:
            self._root = Path(os.path.commonpath(paths)) if len(paths) > 1 else None
        except ValueError:
            self._root = None
        self.endResetModel()

    def fill(self, start: int, items: list[BatchItem]) -> None:
        end = min(start + len(items), len(self._items)) - 1
        if end < start:
            return
        for i, item in enumerate(items[: end - start + 1], start):
            self._items[i] = item
            if item.thumbnail is not None:
                self._thumbs[i] = array_to_qimage(item.thumbnail)
        self.dataChanged.emit(self.index(start, 0), self.index(end, len(COLUMNS) - 1))

    def mark_cancelled(self) -> None:
        self._cancelled = True
        if self._items:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._items) - 1, len(COLUMNS) - 1))

    def item(self, row: int) -> BatchItem | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    def done_count(self) -> int:
        return sum(1 for it in self._items if it is not None)

    def display_name(self, row: int) -> str:
        p = Path(self._paths[row])
        if self._root is not None:
            try:
                return str(p.relative_to(self._root))
            except ValueError:
                pass
        return p.name or str(p)

    def status(self, row: int) -> tuple[str, str, str]:
        """(label, confidence, note) texts of a row."""
        item = self._items[row]
        if item is None:
            return ("", "", CANCELLED if self._cancelled else PENDING)
        conf = item.confidence
        return (item.headline or "", f"{percent(conf)}" if conf is not None else "", item.note)

    # --- Qt model ----------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._paths)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            return self._thumbs.get(row)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if col == 1:
                return self._paths[row] if role == Qt.ItemDataRole.ToolTipRole else self.display_name(row)
            if col >= 2:
                return self.status(row)[col - 2]
        if role == Qt.ItemDataRole.ForegroundRole and col == 4:
            item = self._items[row]
            return QBrush(ERROR if item is not None and item.error else MUTED)
        if role == Qt.ItemDataRole.ForegroundRole and col in (2, 3):
            item = self._items[row]
            if item is not None and item.verdict in ("unsure", "foreign"):
                return QBrush(DOUBT)  # the model would rather not answer: not black
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    # --- export -----------------------------------------------------------------------------

    def export_csv(self, path: str | os.PathLike) -> int:
        """Writes path,label,confidence,error,verdict rows (atomically: a failed export
        never leaves half a file); returns how many. label is the top class, confidence
        its calibrated probability, verdict "ok" or what the app says instead ("not
        sure: 4 or 9?"). Raises OSError."""
        f = io.StringIO()
        w = csv.writer(f)
        w.writerow(["path", "label", "confidence", "error", "verdict"])
        for row, p in enumerate(self._paths):
            item = self._items[row]
            if item is None:
                w.writerow([p, "", "", CANCELLED if self._cancelled else "not classified", ""])
            else:
                conf = item.confidence
                verdict = "" if not item.verdict else (item.prediction.verdict_message or "ok")  # type: ignore[union-attr]
                w.writerow([p, item.label or "", f"{conf:.6f}" if conf is not None else "", item.note, verdict])
        atomic_write_text(path, f.getvalue())
        return len(self._paths)


class ResultsTable(QTableView):
    """Table of a batch's results; selecting a row shows its full prediction.

    Signals:
        item_selected(object): the BatchItem of the selected row.
    """

    item_selected = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultsTable")
        self.results = ResultsModel(self)
        self.setModel(self.results)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setIconSize(QSize(ROW_H - 6, ROW_H - 6))
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(ROW_H)
        # Fixed row heights and column widths: no per-row measuring for 10,000 rows.
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in enumerate((ROW_H + 4, 260, 190, 90)):
            self.setColumnWidth(col, width)
        self.selectionModel().currentRowChanged.connect(self._on_row)

    def _on_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        item = self.results.item(current.row())
        if item is not None:
            self.item_selected.emit(item)

    def row_count(self) -> int:
        return self.results.rowCount()

    def row_texts(self, row: int) -> tuple[str, str, str, str]:
        """(file, label, confidence, note) as shown."""
        return (self.results.display_name(row), *self.results.status(row))

    def export_csv(self, path: str | os.PathLike) -> int:
        return self.results.export_csv(path)
