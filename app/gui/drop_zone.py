"""Where images come in: drag and drop, plus buttons for the Open dialogs."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.gui.qt_image import qimage_to_array

THUMB = 72
IDLE = "#dropZone { border: 2px dashed #b8c0cc; border-radius: 10px; background: #f7f9fc; }"
HOVER = "#dropZone { border: 2px dashed #2f6fd6; border-radius: 10px; background: #eaf1fd; }"


def local_paths(mime: QMimeData) -> tuple[list[str], list[str]]:
    """Splits a drop's URLs into local file paths and the URLs that are not local."""
    paths, remote = [], []
    for url in mime.urls() if mime.hasUrls() else []:
        (paths if url.isLocalFile() else remote).append(url.toLocalFile() if url.isLocalFile() else url.toString())
    return paths, remote


class DropZone(QFrame):
    """Accepts dropped files, folders, local file URLs and raw image data.

    Shows the thumbnail and result of a single image.

    Signals:
        paths_dropped(list): local files and folders (folders are expanded later).
        image_dropped(object, str): raw image data as a numpy array, and a name for it.
        drop_rejected(str): a readable reason (e.g. web URLs).
        open_files_requested(): the Open images button.
        open_folder_requested(): the Open folder button.
    """

    paths_dropped = Signal(list)
    image_dropped = Signal(object, str)
    drop_rejected = Signal(str)
    open_files_requested = Signal()
    open_folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAccessibleName("Image drop zone")
        self.setAcceptDrops(True)
        self.setStyleSheet(IDLE)
        self._thumb = QLabel()
        self._thumb.setObjectName("dropThumbnail")
        self._thumb.setFixedSize(THUMB, THUMB)
        self._thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._thumb.setStyleSheet("background: white; border: 1px solid #d5dae1; border-radius: 4px;")
        self._thumb.hide()
        self._title = QLabel("<b>Drop images or folders here</b>")
        self._detail = QLabel("or paste one with Ctrl+V. PNG, JPEG, BMP, GIF, TIFF, WebP.")
        self._detail.setObjectName("dropDetail")
        self._detail.setStyleSheet("color: #6b7280;")
        self._detail.setWordWrap(True)
        for label in (self._title, self._detail):
            label.setStyleSheet(label.styleSheet() + "border: none; background: transparent;")
        open_files = QPushButton("Open images…")
        open_files.setObjectName("openFilesButton")
        open_files.setToolTip("Open image files (Ctrl+O)")
        open_files.clicked.connect(self.open_files_requested)
        open_folder = QPushButton("Open folder…")
        open_folder.setObjectName("openFolderButton")
        open_folder.clicked.connect(self.open_folder_requested)

        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self._title)
        text.addWidget(self._detail)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(12)
        layout.addWidget(self._thumb)
        layout.addLayout(text, 1)
        layout.addWidget(open_files)
        layout.addWidget(open_folder)

    # --- single image ----------------------------------------------------------------------

    def show_image(self, image: QImage | None, title: str, detail: str) -> None:
        """Shows one image's thumbnail with a title (the file) and detail (the result)."""
        if image is not None and not image.isNull():
            pix = QPixmap.fromImage(image).scaled(
                THUMB - 4, THUMB - 4, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self._thumb.setPixmap(pix)
            self._thumb.show()
        else:
            self._thumb.hide()
        self._title.setText(f"<b>{title}</b>")
        self._detail.setText(detail)

    def show_status(self, title: str, detail: str = "") -> None:
        self._thumb.hide()
        self._title.setText(f"<b>{title}</b>")
        self._detail.setText(detail)

    def reset(self) -> None:
        self.show_status("Drop images or folders here", "or paste one with Ctrl+V. PNG, JPEG, BMP, GIF, TIFF, WebP.")

    def detail_text(self) -> str:
        return self._detail.text()

    # --- drag and drop ---------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()
            self.setStyleSheet(HOVER)
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self.setStyleSheet(IDLE)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.setStyleSheet(IDLE)
        if self.accept_mime(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def accept_mime(self, mime: QMimeData) -> bool:
        """Handles dropped or pasted data; returns whether it held anything usable."""
        paths, remote = local_paths(mime)
        if paths:
            self.paths_dropped.emit(paths)
            if remote:
                self.drop_rejected.emit(f"Skipped {len(remote)} web address(es): only local files can be classified.")
            return True
        if mime.hasImage():
            image = mime.imageData()
            if isinstance(image, QImage) and not image.isNull():
                self.image_dropped.emit(qimage_to_array(image), "pasted image")
                return True
        if remote:
            self.drop_rejected.emit("Only local files can be classified; download the image first.")
        return False
