"""Progress, cancel and CSV export around the batch results table."""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.batch_items import BatchItem
from app.gui.results_table import ResultsTable


class BatchPanel(QWidget):
    """A batch of images: the table fills in progressively under a progress bar.

    Signals:
        cancel_requested(): the Cancel button.
        item_selected(object): a row's BatchItem was selected.
        export_failed(str): a readable reason the CSV could not be written.
    """

    cancel_requested = Signal()
    item_selected = Signal(object)
    export_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("batchPanel")
        self.table = ResultsTable()
        self.table.item_selected.connect(self.item_selected)
        self.status = QLabel()
        self.status.setObjectName("batchStatus")
        self.progress = QProgressBar()
        self.progress.setObjectName("batchProgress")
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(18)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setObjectName("exportCsvButton")
        self.export_button.clicked.connect(self.choose_export_file)
        self.export_button.setEnabled(False)
        bar = QHBoxLayout()
        bar.addWidget(self.status)
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        self.hide()

    def scanning(self, found: int) -> None:
        """The folder walk is running (busy indicator, count so far)."""
        self.show()
        self.status.setText(f"Looking for images… {found:,} found")
        self.progress.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.export_button.setEnabled(False)

    def start(self, paths: list[str]) -> None:
        self.show()
        self.table.results.reset(paths)
        self.progress.setRange(0, max(1, len(paths)))
        self.progress.setValue(0)
        self.status.setText(f"Classifying {len(paths):,} images…")
        self.cancel_button.setEnabled(True)
        self.export_button.setEnabled(False)

    def fill(self, start: int, items: list[BatchItem]) -> None:
        self.table.results.fill(start, items)
        self.progress.setValue(self.table.results.done_count())

    def finish(self, cancelled: bool) -> None:
        results = self.table.results
        if self.progress.maximum() == 0:  # cancelled during the walk
            self.progress.setRange(0, 1)
        done, total = results.done_count(), results.rowCount()
        errors = sum(1 for r in range(total) if (it := results.item(r)) is not None and it.error)
        if cancelled:
            results.mark_cancelled()
            text = f"Cancelled: {done:,} of {total:,} images classified"
        else:
            text = f"{total:,} images classified"
        if errors:
            text += f", {errors:,} could not be read"
        self.status.setText(text)
        self.cancel_button.setEnabled(False)
        self.export_button.setEnabled(total > 0)

    def is_busy(self) -> bool:
        return self.cancel_button.isEnabled() and self.isVisible()

    def export_csv(self, path: str | os.PathLike) -> int:
        """Writes the table as CSV; returns the number of rows. Raises OSError."""
        return self.table.export_csv(path)

    def choose_export_file(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export results", "results.csv", "CSV files (*.csv)")
        if not path:
            return
        try:
            n = self.export_csv(path)
        except OSError as e:
            self.export_failed.emit(f"Cannot write {path}: {e.strerror or e}")
            return
        self.status.setText(f"Exported {n:,} rows to {path}")
