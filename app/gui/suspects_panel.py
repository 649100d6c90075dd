"""Suspect labels: an image folder's files with the highest loss under the model, the
ones most likely filed under the wrong class; open a file's folder, export the list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.qt_image import array_to_qimage

COLUMNS = ["#", "file", "labelled", "model says", "loss"]
THUMB_PX = 40
EMPTY = "Suspect labels are listed for image-folder datasets (the files can be fixed there)."


class SuspectsPanel(QWidget):
    """The list, most suspicious first, with "Open file location" and "Export CSV…".

    Signals:
        export_failed(str): readable message (e.g. the folder is read-only).
        exported(str): path of a written CSV.
    """

    export_failed = Signal(str)
    exported = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("suspectsPanel")
        self._suspects: list = []
        self.note = QLabel(EMPTY)
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("suspectsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(THUMB_PX + 4)
        self.table.setIconSize(QSize(THUMB_PX, THUMB_PX))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.open_button = QPushButton("Open file location")
        self.open_button.setObjectName("openSuspectLocation")
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setObjectName("exportSuspects")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.open_button.clicked.connect(self.open_location)
        self.export_button.clicked.connect(self.choose_export_file)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.cellDoubleClicked.connect(lambda *_: self.open_location())
        self._update_buttons()

    def set_suspects(self, suspects: list, total: int, images: np.ndarray | None = None) -> None:
        """Shows `suspects` (Suspect, most suspicious first) out of `total` images, with
        a thumbnail from `images` (uint8 (N, C, H, W), indexed by Suspect.index); an
        empty list for data without files (builtin sets)."""
        self._suspects = list(suspects)
        self.table.setRowCount(len(self._suspects))
        for r, s in enumerate(self._suspects):
            for c, text in enumerate([str(r + 1), s.path, s.given, s.predicted, f"{s.score:.2f}"]):
                item = QTableWidgetItem(text)
                if c == 1:
                    item.setToolTip(s.path)
                    if images is not None:
                        item.setIcon(_icon(images[s.index]))
                self.table.setItem(r, c, item)
        self.note.setText(
            f"The {len(self._suspects):,} of {total:,} images with the highest loss: the model finds their "
            "label least likely. Check them; a wrong label is fixed by moving the file." if self._suspects else EMPTY
        )
        self._update_buttons()

    def suspects(self) -> list:
        return list(self._suspects)

    def selected_path(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self._suspects[rows[0].row()].path if rows else None

    def location_url(self) -> QUrl | None:
        """The folder of the selected file, as "Open file location" opens it."""
        path = self.selected_path()
        return QUrl.fromLocalFile(str(Path(path).parent)) if path else None

    def open_location(self) -> None:
        url = self.location_url()
        if url is not None:
            QDesktopServices.openUrl(url)

    def choose_export_file(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export suspect labels", "suspect-labels.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> bool:
        """Writes the list (atomically); False and `export_failed` if it cannot."""
        from app.core.mistakes import write_suspects_csv

        try:
            write_suspects_csv(self._suspects, path)
        except OSError as e:
            self.export_failed.emit(f"Could not write {path}: {e.strerror or e}")
            return False
        self.exported.emit(path)
        return True

    def _update_buttons(self) -> None:
        self.open_button.setEnabled(self.selected_path() is not None)
        self.export_button.setEnabled(bool(self._suspects))


def _icon(image: np.ndarray) -> QIcon:
    """A (C, H, W) uint8 image as a small icon (nearest neighbour: the model's pixels)."""
    pic = image[0] if image.shape[0] == 1 else np.ascontiguousarray(np.transpose(image, (1, 2, 0)))
    return QIcon(QPixmap.fromImage(array_to_qimage(pic)).scaled(
        THUMB_PX, THUMB_PX, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
    ))  # fmt: skip
