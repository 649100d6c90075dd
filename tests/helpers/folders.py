"""A tiny image-folder dataset written to disk, for tests that start `python -m app
train` in other processes (distributed runs): no MNIST files needed, a second per run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def tiny_class_folder(root: Path, classes: int = 4, per_class: int = 24, size: int = 16, seed: int = 0) -> Path:
    """`classes` subfolders of `per_class` gray PNGs: class k is a bright bar at angle
    k * 180 / classes on noise, so a small network learns it within a few epochs.

    Mid-gray noise everywhere, no flat background: flat regions put many activations at
    the same value, and ReLU's kink at 0 then makes float32 rounding (another summation
    order, e.g. of 2 processes) change gradients by percents within a step or two."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    for k in range(classes):
        folder = root / f"class{k}"
        folder.mkdir(parents=True, exist_ok=True)
        angle = np.pi * k / classes
        for i in range(per_class):
            a = angle + rng.normal(0, 0.1)
            dist = np.abs(xx * np.sin(a) - yy * np.cos(a) + rng.normal(0, 1))
            img = np.clip(80 + 100 * np.exp(-(dist**2) / 4) + rng.normal(0, 20, (size, size)), 1, 254)
            Image.fromarray(img.astype(np.uint8), "L").save(folder / f"{i:03d}.png")
    return root
