"""A small labelled digit dataset drawn from the bundled pen strokes: training tests
run without the MNIST files and in a fraction of a second per epoch."""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from app.core.data import MNIST_CLASSES, Dataset
from app.core.models import MNIST_SPEC
from app.core.preprocess import prepare
from tests.helpers.digits import draw_digit


@cache
def _drawn(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(per_class):
        for d in range(10):
            side = rng.uniform(40, 70)
            box = (rng.uniform(0, 80 - side), rng.uniform(0, 80 - side), side * rng.uniform(0.7, 1.0), side)
            img = draw_digit(d, 80, box=box, pen=rng.uniform(3, 8))
            images.append(prepare(img).pixels)
            labels.append(d)
    return np.stack(images)[:, None], np.array(labels, dtype=np.int64)


def drawn_digits(per_class: int = 24, seed: int = 0) -> Dataset:
    """10 * per_class prepared 28x28 digits, classes interleaved (0, 1, ..., 9, 0, ...)."""
    x, y = _drawn(per_class, seed)
    return Dataset(torch.from_numpy(x.copy()), torch.from_numpy(y.copy()), list(MNIST_CLASSES), MNIST_SPEC, "drawn", "tests")
