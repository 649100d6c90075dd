"""Evaluating any model on any labelled data, step by step, for the Evaluate view and
the Train tab's confusion matrix: which data (`EvalSource`), scoring with progress
and cancel (`score_with_progress`), and saliency thumbnails for a gallery's images.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from app.core.config import TrainConfig
from app.core.data import DataError, Dataset
from app.core.datarequest import DataRequest
from app.core.explain import explain
from app.core.mistakes import SampleScores, score_samples
from app.core.overlay import input_overlay
from app.core.predictor import Predictor
from app.core.recalibration import training_split

CHUNK = 256  # images per progress report


@dataclass(frozen=True)
class EvalSource:
    """A model file and the labelled images to judge it on.

    split: "test" (the held-out split), "train", or "validation": the images a training
        run (`run`, its TrainConfig) held out, split exactly as the Trainer splits them
        (`limit`, `val_fraction`, `seed`): what the Train tab's confusion matrix counts.
    """

    model: str
    data: DataRequest
    split: str = "test"
    run: TrainConfig | None = None

    def describe(self) -> str:
        name = self.data.dataset if self.data.builtin else f"folder {self.data.dataset}"
        r = self.run
        part = (f"validation ({r.val_fraction:.0%} of train, seed {r.seed})"
                if self.split == "validation" and r is not None else self.split)  # fmt: skip
        return f"{name}, {part}"


def _names(classes: list[str]) -> str:
    shown = ", ".join(classes[:4])
    return f"{len(classes)} classes ({shown}{', ...' if len(classes) > 4 else ''})"


def run_source(model: str, data: DataRequest, config: TrainConfig) -> EvalSource:
    """A training run's model on the images its confusion matrix counts: the part of
    the training data held out, or the data it trained on when none was."""
    return EvalSource(model, data, "validation", config)


def load_source(source: EvalSource, device: str = "cpu") -> tuple[Predictor, Dataset]:
    """The model and the images, in the model's input size and class order.

    Raises:
        ModelFileError, DataError: with a readable message (missing file, class folders
            that do not match the model's classes, ...).
    """
    predictor = Predictor.load(source.model, device)
    card = predictor.card
    split = "train" if source.split == "validation" else source.split
    data = source.data.load(split, spec=card.input, classes=list(card.classes))
    if list(data.classes) != list(card.classes):  # a digit model on Fashion-MNIST
        raise DataError(
            f"the model knows {_names(card.classes)}, {data.name} has {_names(data.classes)}: "
            "choose data with the model's classes"
        )
    if source.split == "validation" and source.run is not None:
        data, train_idx, val_idx = training_split(data, source.run)
        data = data.subset(val_idx if len(val_idx) else train_idx)
    return predictor, data


def score_with_progress(
    predictor: Predictor,
    data: Dataset,
    on_progress: Callable[[int, int, float], object] | None = None,
    cancel: threading.Event | None = None,
) -> SampleScores | None:
    """`score_samples` in chunks of CHUNK images on the Predictor's inference model.

    Args:
        on_progress: called with (images done, total, seconds left) after each chunk.
        cancel: once set, scoring stops and None is returned.
    """
    n = len(data)
    probs: list[np.ndarray] = []
    t0 = time.perf_counter()
    for s in range(0, n, CHUNK):
        if cancel is not None and cancel.is_set():
            return None
        part = score_samples(predictor.inference_model, data.images[s : s + CHUNK], data.labels[s : s + CHUNK],
                             tta_flip=predictor.tta_flip, temperature=predictor.temperature)  # fmt: skip
        probs.append(part.probabilities)
        done = min(n, s + CHUNK)
        if on_progress is not None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            on_progress(done, n, (n - done) / rate)
    k = len(predictor.classes)
    p = np.concatenate(probs) if probs else np.zeros((0, k), np.float32)
    return SampleScores(p, data.labels.numpy().astype(np.int64))


def saliency_thumbnails(
    predictor: Predictor, images: torch.Tensor | np.ndarray, targets: list[int], zoom: int = 3
) -> list[np.ndarray]:
    """Grad-CAM of each image for its target class (a gallery explains the predicted
    one: why the model answered what it did), drawn over the image `zoom` times
    enlarged: uint8 RGB (H*zoom, W*zoom, 3) per image."""
    x = torch.as_tensor(np.asarray(images))
    out = explain(predictor.inference_model, x, list(targets), "gradcam", tta_flip=predictor.tta_flip)
    pictures = []
    for img, e in zip(x.numpy(), out):
        pixels = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
        pictures.append(np.asarray(input_overlay(pixels, e.heatmap, zoom=zoom)))
    return pictures
