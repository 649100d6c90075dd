"""QImage <-> numpy: what the model gets is exactly what was drawn."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from app.gui.qt_image import array_to_qimage, qimage_to_array


@pytest.mark.parametrize("shape", [(7, 5), (7, 5, 3), (7, 5, 4)])
def test_round_trip_keeps_every_pixel(qapp, shape):
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)  # odd width: padded rows
    back = qimage_to_array(array_to_qimage(a))
    if len(shape) == 3 and shape[2] == 3:
        assert back.shape == (7, 5, 4) and (back[..., 3] == 255).all()
        back = back[..., :3]
    assert np.array_equal(back, a)


def test_image_outlives_the_array(qapp):
    a = np.full((4, 4), 200, dtype=np.uint8)
    image = array_to_qimage(a)
    a[:] = 0
    del a
    assert QColor(image.pixel(1, 1)).red() == 200


def test_colour_image_becomes_rgba(qapp):
    image = QImage(3, 2, QImage.Format.Format_RGB32)
    image.fill(QColor(10, 20, 30))
    a = qimage_to_array(image)
    assert a.shape == (2, 3, 4) and tuple(a[1, 2]) == (10, 20, 30, 255)
