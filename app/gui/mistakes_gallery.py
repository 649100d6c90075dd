"""The mistakes gallery: one confusion-matrix cell's images as thumbnails, worst first.

Thumbnails are made on demand by the list model (only the visible ones), so a cell of
thousands of images opens at once. Saliency pictures are drawn in the evaluate worker
and only swapped in here.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QVBoxLayout,
    QWidget,
)

from app.core.formatting import percent
from app.gui.qt_image import array_to_qimage

THUMB_PX = 84  # 3x a 28 px input
LARGE_PX = 392  # the double-click view: 14x a 28 px input

Index = QModelIndex | QPersistentModelIndex


def _picture(image: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 -> (H, W) or (H, W, 3) for display."""
    return image[0] if image.shape[0] == 1 else np.ascontiguousarray(np.transpose(image, (1, 2, 0)))


class GalleryModel(QAbstractListModel):
    """Rows: positions in the cell's worst-first order. Thumbnails are built lazily."""

    def __init__(self) -> None:
        super().__init__()
        self._outcome = None
        self._rows = np.zeros(0, np.int64)
        self._captions: list[str] = []
        self._saliency: dict[int, np.ndarray] = {}
        self._cache: dict[tuple[int, bool], QPixmap] = {}
        self.show_saliency = False

    def set_rows(self, outcome, rows: np.ndarray) -> None:
        self.beginResetModel()
        self._outcome, self._rows = outcome, np.asarray(rows, np.int64)
        self._captions = self._make_captions()
        self._saliency.clear()
        self._cache.clear()
        self.endResetModel()

    def outcome(self):
        """The EvalOutcome shown (None: nothing)."""
        return self._outcome

    def image_index(self, row: int) -> int:
        return int(self._rows[row])

    def rows(self) -> np.ndarray:
        return self._rows.copy()

    def add_saliency(self, start: int, pictures: list[np.ndarray]) -> None:
        for k, pic in enumerate(pictures):
            self._saliency[start + k] = pic
        if pictures and self.show_saliency:
            self.dataChanged.emit(self.index(start), self.index(start + len(pictures) - 1))

    def saliency(self, row: int) -> np.ndarray | None:
        return self._saliency.get(row)

    def set_show_saliency(self, on: bool) -> None:
        self.show_saliency = on
        if self._rows.size:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def _make_captions(self) -> list[str]:
        # Once per cell, vectorised: SampleScores' properties compute over the whole set,
        # far too slow to call from data(), which the view calls many times per item.
        if self._outcome is None or not self._rows.size:
            return []
        o, r = self._outcome, self._rows
        s = o.scores
        true, pred = s.labels[r], s.predicted[r]
        conf, loss = s.confidence[r], s.loss[r]
        return [f"true {o.classes[t]} → {o.classes[p]}\n{percent(c, 0)} sure · loss {v:.2f}"
                for t, p, c, v in zip(true, pred, conf, loss)]  # fmt: skip

    def caption(self, row: int) -> str:
        return self._captions[row]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self._outcome is None:
            return None
        row = index.row()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.caption(row)
        if role == Qt.ItemDataRole.DecorationRole:
            salient = self.show_saliency and row in self._saliency
            key = (row, salient)
            if key not in self._cache:
                pic = self._saliency[row] if salient else _picture(self._outcome.images[self.image_index(row)])
                self._cache[key] = QPixmap.fromImage(array_to_qimage(pic)).scaled(
                    THUMB_PX, THUMB_PX, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
                )
            return self._cache[key]
        if role == Qt.ItemDataRole.ToolTipRole:
            paths = self._outcome.paths
            return paths[self.image_index(row)] if paths else f"image {self.image_index(row)}"
        return None


class MistakesGallery(QWidget):
    """A cell's images, worst (highest loss) first, with a saliency switch.

    Signals:
        saliency_wanted(object, object): image indices and target classes (the
            predicted ones) to draw saliency for, in gallery order.
        image_opened(int): position of a double-clicked thumbnail (after the dialog).
    """

    saliency_wanted = Signal(object, object)
    image_opened = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mistakesGallery")
        self.title = QLabel("Click a cell of the confusion matrix to see its images, worst first")
        self.title.setObjectName("galleryTitle")
        self.title.setWordWrap(True)
        self.saliency_toggle = QCheckBox("Show why (Grad-CAM)")
        self.saliency_toggle.setObjectName("gallerySaliency")
        self.saliency_toggle.setToolTip("Colour what made the model give each image its (wrong) answer")
        self.model = GalleryModel()
        self.view = QListView()
        self.view.setObjectName("galleryList")
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)  # no per-item layout pass: 10,000 rows open at once
        self.view.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.view.setGridSize(QSize(THUMB_PX + 44, THUMB_PX + 40))
        self.view.setWordWrap(True)
        self.view.setModel(self.model)
        self.view.doubleClicked.connect(lambda i: self.open_large(i.row()))
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.saliency_toggle)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.view, 1)
        self.saliency_toggle.toggled.connect(self._on_saliency_toggled)
        self._asked = False

    def show_cell(self, outcome, true: int, predicted: int) -> None:
        """Shows the images labelled `true` and predicted `predicted`, worst first."""
        rows = outcome.scores.cell(true, predicted)
        self.model.set_rows(outcome, rows)
        c = outcome.classes
        kind = "right" if true == predicted else "mistaken"
        self.title.setText(f"<b>true {c[true]}, predicted {c[predicted]}</b>: {len(rows):,} images ({kind}), "
                           "highest loss first. Double-click one to see it large.")  # fmt: skip
        self._asked = False
        if self.saliency_toggle.isChecked():
            self._ask_saliency()

    def clear(self) -> None:
        self.model.set_rows(None, np.zeros(0, np.int64))

    def count(self) -> int:
        return self.model.rowCount()

    def add_saliency(self, start: int, pictures: list[np.ndarray]) -> None:
        self.model.add_saliency(start, pictures)

    def _on_saliency_toggled(self, on: bool) -> None:
        self.model.set_show_saliency(on)
        if on and not self._asked:
            self._ask_saliency()

    def _ask_saliency(self) -> None:
        rows = self.model.rows()
        if rows.size == 0:
            return
        self._asked = True
        pred = self.model.outcome().scores.predicted[rows]
        self.saliency_wanted.emit([int(i) for i in rows], [int(p) for p in pred])

    def open_large(self, row: int) -> QDialog:
        """Shows one image large, with its saliency beside it when drawn."""
        o, i = self.model.outcome(), self.model.image_index(row)
        dialog = QDialog(self)
        dialog.setObjectName("galleryImageDialog")
        dialog.setWindowTitle(o.paths[i] if o.paths else f"Image {i}")
        pictures = QHBoxLayout()
        for pic in (_picture(o.images[i]), self.model.saliency(row)):
            if pic is None:
                continue
            label = QLabel()
            label.setPixmap(QPixmap.fromImage(array_to_qimage(pic)).scaled(
                LARGE_PX, LARGE_PX, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
            ))  # fmt: skip
            pictures.addWidget(label)
        text = QLabel(self.model.caption(row).replace("\n", " · ") + (f"\n{o.paths[i]}" if o.paths else ""))
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(dialog)
        layout.addLayout(pictures)
        layout.addWidget(text)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.image_opened.emit(row)
        return dialog
