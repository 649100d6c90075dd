"""The one module that converts between QImage and numpy arrays.

Everything else in the GUI hands numpy arrays to the worker and QImages to painters;
only this module knows about strides, formats and who owns the pixel memory.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

_FORMATS = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}


def qimage_to_array(image: QImage) -> np.ndarray:
    """Copies a QImage into a numpy array.

    Returns:
        uint8 (H, W) for grayscale images, (H, W, 4) RGBA for everything else
        (transparency is kept; `app.core.preprocess.prepare` composites it).
    """
    if image.isNull():
        return np.zeros((0, 0), dtype=np.uint8)
    if image.format() in (QImage.Format.Format_Grayscale8, QImage.Format.Format_Indexed8) and image.isGrayscale():
        img, channels = image.convertToFormat(QImage.Format.Format_Grayscale8), 1
    else:
        img, channels = image.convertToFormat(QImage.Format.Format_RGBA8888), 4
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    # Rows may be padded to 4 bytes: view the whole buffer, then cut each row.
    raw = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    rows = raw[:, : w * channels]
    out = rows.reshape(h, w) if channels == 1 else rows.reshape(h, w, channels)
    return out.copy()


def array_to_qimage(array: np.ndarray) -> QImage:
    """Copies a uint8 array (H, W), (H, W, 3) or (H, W, 4) into a QImage that owns its
    pixels (so the array may be freed). Other dtypes are clipped to 0..255."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    channels = 1 if a.ndim == 2 else a.shape[2]
    if a.ndim not in (2, 3) or channels not in _FORMATS:
        raise ValueError(f"cannot make an image from an array of shape {a.shape}")
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    image = QImage(a.data, w, h, a.strides[0], _FORMATS[channels])
    return image.copy()  # detach from the numpy buffer
