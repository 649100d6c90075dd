"""Per-class precision, recall and F1 beside the confusion matrix."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

COLUMNS = ["class", "precision", "recall", "F1", "images"]


class ClassMetricsTable(QTableWidget):
    """One row per class; sortable; the weakest F1 is easy to find.

    Signals:
        class_chosen(int): a row was double-clicked (e.g. to open its mistakes).
    """

    class_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("classMetrics")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(False)
        self.setToolTip("precision: of the images given this answer, how many were right; "
                        "recall: of this class's images, how many were found")  # fmt: skip
        self.cellDoubleClicked.connect(lambda r, _c: self.class_chosen.emit(int(self.item(r, 0).data(Qt.ItemDataRole.UserRole))))

    def set_confusion(self, classes: list[str], confusion: np.ndarray | torch.Tensor) -> None:
        """confusion: (true, predicted) counts, dense or sparse (`app.core.confusion`)."""
        from app.core.confusion import row_totals_and_diagonal
        from app.core.mistakes import precision_recall_f1

        precision, recall, f1 = precision_recall_f1(confusion)
        support = (
            row_totals_and_diagonal(confusion)[0].numpy() if isinstance(confusion, torch.Tensor)
            else np.asarray(confusion).sum(1)
        )  # fmt: skip
        self.setSortingEnabled(False)
        self.setRowCount(len(classes))
        for i, name in enumerate(classes):
            cells = [name, precision[i], recall[i], f1[i], int(support[i])]
            for j, v in enumerate(cells):
                item = QTableWidgetItem()
                if isinstance(v, str):
                    item.setText(v)
                    item.setData(Qt.ItemDataRole.UserRole, i)
                elif isinstance(v, int):
                    item.setData(Qt.ItemDataRole.DisplayRole, v)
                else:  # same-width text sorts as the number does
                    item.setText(f"{float(v):.3f}")
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(i, j, item)
        self.setSortingEnabled(True)
        self.sortItems(0, Qt.SortOrder.AscendingOrder)

    def values(self) -> list[tuple[str, float, float, float, int]]:
        """The rows as shown: (class, precision, recall, F1, images)."""
        out = []
        for r in range(self.rowCount()):
            name, p, rc, f1, n = (self.item(r, c).data(Qt.ItemDataRole.DisplayRole) for c in range(len(COLUMNS)))
            out.append((name, float(p), float(rc), float(f1), int(n)))
        return out
