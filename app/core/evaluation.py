"""Accuracy of a model on a labelled dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from app.core.data import Dataset
from app.core.modelio import Predictor
from app.core.training import evaluate, per_class_accuracy


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    loss: float
    per_class: list[float]
    confusion: list[list[int]]
    classes: list[str]
    n: int
    dataset: str
    model: str
    through_preprocess: bool

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "n": self.n,
            "accuracy": round(self.accuracy, 6),
            "loss": round(self.loss, 6),
            "per_class": {c: round(a, 6) for c, a in zip(self.classes, self.per_class)},
            "through_preprocess": self.through_preprocess,
        }

    def report(self) -> str:
        lines = [
            f"model:    {self.model}",
            f"dataset:  {self.dataset} ({self.n} images"
            + (", through the app's preprocessing)" if self.through_preprocess else ")"),
            f"accuracy: {self.accuracy:.2%} ({round(self.accuracy * self.n)}/{self.n})",
            "per class:",
        ]
        width = max(len(c) for c in self.classes)
        for c, a, row in zip(self.classes, self.per_class, self.confusion):
            lines.append(f"  {c:>{width}}  {a:7.2%}  ({sum(row)} images)")
        return "\n".join(lines)


def reprepare(data: Dataset, predictor: Predictor) -> torch.Tensor:
    """Runs every image through the app's preprocessing (as if it were a dropped file)."""
    out = []
    for img in data.images.numpy():
        arr = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
        out.append(predictor.prepare(arr).pixels)
    arr = np.stack(out)
    t = torch.from_numpy(arr)
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


def evaluate_model(predictor: Predictor, data: Dataset, through_preprocess: bool = False) -> EvalResult:
    """Accuracy, loss, per-class accuracy and confusion matrix of `predictor` on `data`."""
    images = reprepare(data, predictor) if through_preprocess else data.images
    loss, acc, conf = evaluate(
        predictor.model, images, data.labels, len(predictor.classes), tta_flip=predictor.tta_flip
    )
    return EvalResult(
        acc, loss, per_class_accuracy(conf), conf.tolist(), list(predictor.classes), len(data),
        f"{data.name} ({data.source})", str(predictor.path), through_preprocess,
    )  # fmt: skip
