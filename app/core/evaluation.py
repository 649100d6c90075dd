"""Accuracy of a model on a labelled dataset: the batched evaluation the trainer runs
every epoch, and the report of a saved model (`python -m app evaluate`).

Sits below the trainer (training imports it, never the reverse)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from app.core.calibration import CalibrationReport, calibration_report
from app.core.confusion import add_counts, confusion_counts, row_totals_and_diagonal
from app.core.data import Dataset
from app.core.formatting import percent

if TYPE_CHECKING:  # only the type: evaluation stays importable without the inference stack
    from app.core.predictor import Predictor


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    batch_size: int = 500,
    autocast: torch.dtype | None = None,
    channels_last: bool = True,
    tta_flip: bool = False,
) -> tuple[float, float, torch.Tensor]:
    """Returns (mean loss, accuracy, confusion matrix [true, pred]) on uint8 images; the
    matrix is sparse beyond `MAX_DENSE_CLASSES` classes (`app.core.confusion`).

    tta_flip: average the logits of each image and its mirror (models trained with
    mirrored images; see `flip_tta`)."""
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct = 0.0, 0
    confusion = None
    for start in range(0, len(images), batch_size):
        xb = images[start : start + batch_size].to(device).float().div_(255)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = labels[start : start + batch_size].to(device)
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            out = model(xb)
            if tta_flip:
                out = (out.float() + model(xb.flip(-1)).float()) / 2
        out = out.float()
        total_loss += float(F.cross_entropy(out, yb, reduction="sum"))
        pred = out.argmax(1)
        correct += int((pred == yb).sum())
        confusion = add_counts(confusion, confusion_counts(yb, pred, num_classes))
    if confusion is None:  # no images
        confusion = confusion_counts(labels[:0], labels[:0], num_classes)
    n = max(len(images), 1)
    return total_loss / n, correct / n, confusion


def per_class_accuracy(confusion: torch.Tensor) -> list[float]:
    """Accuracy of each class (row) of a confusion matrix [true, pred]; 0 for absent classes."""
    totals, diag = row_totals_and_diagonal(confusion)
    return (diag.float() / totals.clamp(min=1).float()).tolist()


@dataclass(frozen=True)
class EvalResult:
    """A saved model's accuracy and calibration on a dataset; `report()` for people,
    `to_json()` for tools.

    loss: cross-entropy of the raw logits (T = 1). ece/nll: of the probabilities the app
    shows (softmax(logits / T), T the card's temperature; 1 if it has none), 15 bins;
    ece_uncalibrated/nll_uncalibrated: the same at T = 1. calibration: the full report
    (reliability bins) behind ece/nll, for the reliability diagram.
    """

    accuracy: float
    loss: float
    per_class: list[float]
    confusion: list[list[int]]  # [] beyond MAX_DENSE_CLASSES classes (see `support`)
    classes: list[str]
    n: int
    dataset: str
    model: str
    through_preprocess: bool
    temperature: float = 1.0
    calibrated: bool = False
    ece: float = float("nan")
    nll: float = float("nan")
    ece_uncalibrated: float = float("nan")
    nll_uncalibrated: float = float("nan")
    calibration: CalibrationReport | None = field(default=None, repr=False, compare=False)
    support: list[int] = field(default_factory=list)  # images of each class

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "n": self.n,
            "accuracy": round(self.accuracy, 6),
            "loss": round(self.loss, 6),
            "ece": round(self.ece, 6),
            "nll": round(self.nll, 6),
            "ece_uncalibrated": round(self.ece_uncalibrated, 6),
            "nll_uncalibrated": round(self.nll_uncalibrated, 6),
            "temperature": round(self.temperature, 6),
            "calibrated": self.calibrated,
            "per_class": {c: round(a, 6) for c, a in zip(self.classes, self.per_class)},
            "through_preprocess": self.through_preprocess,
        }

    def report(self) -> str:
        lines = [
            f"model:    {self.model}",
            f"dataset:  {self.dataset} ({self.n} images"
            + (", through the app's preprocessing)" if self.through_preprocess else ")"),
            f"accuracy: {self.accuracy:.2%} ({round(self.accuracy * self.n)}/{self.n})",
            "calibration (ECE: 15 equal-width bins; NLL: mean negative log-likelihood):",
            f"  {'probabilities':<28} {'ECE':>7} {'NLL':>8}",
            f"  {'raw softmax (T = 1)':<28} {percent(self.ece_uncalibrated, 2):>7} {self.nll_uncalibrated:8.4f}",
        ]
        if self.calibrated:
            lines.append(f"  {f'as shown (T = {self.temperature:.4g})':<28} {percent(self.ece, 2):>7} {self.nll:8.4f}")
        else:
            lines.append("  (never calibrated: python -m app calibrate fits its temperature)")
        lines.append("per class:")
        width = max(len(c) for c in self.classes)
        support = self.support or [sum(row) for row in self.confusion]
        for c, a, n in zip(self.classes, self.per_class, support):
            lines.append(f"  {c:>{width}}  {a:7.2%}  ({n} images)")
        return "\n".join(lines)


@torch.inference_mode()
def model_logits(
    model: nn.Module, images: torch.Tensor, batch_size: int = 500, channels_last: bool = True, tta_flip: bool = False
) -> torch.Tensor:
    """Float logits (N, K) on the CPU of uint8 images (N, C, H, W), run as `evaluate` runs them."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        xb = images[start : start + batch_size].to(device).float().div_(255)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        z = model(xb).float()
        if tta_flip:
            z = (z + model(xb.flip(-1)).float()) / 2
        out.append(z.cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


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
    k = len(predictor.classes)
    z = model_logits(predictor.model, images, tta_flip=predictor.tta_flip).reshape(len(images), k)
    y = data.labels.cpu()
    loss = float(F.cross_entropy(z, y)) if len(y) else 0.0
    conf = confusion_counts(y, z.argmax(1), k)
    totals, diag = row_totals_and_diagonal(conf)
    acc = float(diag.sum()) / max(len(y), 1)
    t = predictor.temperature
    shown = raw = None
    if len(y) and bool(torch.isfinite(z).all()):  # NaN logits: calibration is not defined
        shown, raw = calibration_report(z, y, t), calibration_report(z, y, 1.0)
    nan = float("nan")
    return EvalResult(
        acc, loss, per_class_accuracy(conf), [] if conf.is_sparse else conf.tolist(), list(predictor.classes), len(data),
        f"{data.name} ({data.source})", str(predictor.path), through_preprocess,
        t, predictor.calibrated, shown.ece if shown else nan, shown.nll if shown else nan,
        raw.ece if raw else nan, raw.nll if raw else nan, shown, totals.tolist(),
    )  # fmt: skip
