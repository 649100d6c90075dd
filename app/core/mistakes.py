"""Per-image results of a model on a labelled dataset: the contents of each confusion
matrix cell sorted by loss (the mistakes gallery), per-class precision/recall/F1, and
the training images whose label is most likely wrong (suspect labels).

Suspects are ranked by the trained model's loss on its own training images, -log
p(given label): the simplest of confident learning's rankings ("self-confidence",
Northcutt et al. 2021), no cross-validation needed. A model that has memorised a wrong
label gives it a low loss, so the ranking is best with a model trained with
augmentation and label smoothing for a moderate number of epochs (the app's recipes);
see docs/explain.md for the measured recall.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from app.core.confusion import column_totals, confusion_counts, row_totals_and_diagonal
from app.core.data import Dataset
from app.core.explain import app_logits, model_input
from app.core.fileio import atomic_write_bytes


@dataclass(frozen=True)
class SampleScores:
    """What a model said about each image of a labelled set.

    probabilities: float32 (N, K); labels: int64 (N,), the given labels.
    """

    probabilities: np.ndarray
    labels: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(1)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class."""
        return self.probabilities.max(1)

    @property
    def given_probability(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self.labels)), self.labels]

    @property
    def loss(self) -> np.ndarray:
        """Cross-entropy of each image against its given label."""
        return -np.log(np.clip(self.given_probability, 1e-12, None))

    def confusion(self) -> np.ndarray:
        """(K, K) counts, rows: given label, columns: predicted."""
        k = self.probabilities.shape[1]
        return np.bincount(self.labels * k + self.predicted, minlength=k * k).reshape(k, k)

    def counts(self) -> torch.Tensor:
        """The confusion counts as `app.core.confusion` keeps them: dense up to 1,000
        classes, sparse beyond (a dense 10,000-class matrix is 800 MB)."""
        k = self.probabilities.shape[1]
        return confusion_counts(torch.from_numpy(self.labels), torch.from_numpy(self.predicted), k)

    def cell(self, true: int, predicted: int) -> np.ndarray:
        """Indices of the images labelled `true` and predicted `predicted`, worst first
        (highest loss), what a click on a confusion-matrix cell opens."""
        idx = np.flatnonzero((self.labels == true) & (self.predicted == predicted))
        return idx[np.argsort(-self.loss[idx], kind="stable")]


@torch.inference_mode()
def score_samples(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    tta_flip: bool = False,
    batch_size: int = 256,
    temperature: float = 1.0,
) -> SampleScores:
    """Runs `model` (eval mode, e.g. `Predictor.model` or its fused copy) on uint8
    (N, C, H, W) images, with flip TTA for mirror-trained models and the card's
    calibration `temperature`, as the app does."""
    if model.training:
        raise ValueError("scoring needs a model in eval mode")
    probs = []
    for s in range(0, len(images), batch_size):
        x = model_input(model, images[s : s + batch_size])
        probs.append(torch.softmax(app_logits(model, x, tta_flip) / temperature, 1).cpu())
    k = getattr(model, "num_classes", None)
    p = torch.cat(probs).numpy() if probs else np.zeros((0, k or 0), np.float32)
    return SampleScores(p.astype(np.float32), labels.numpy().astype(np.int64))


def precision_recall_f1(confusion: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from a (true, predicted) confusion matrix;
    0 where a class was never predicted or never present."""
    if isinstance(confusion, torch.Tensor):  # dense or sparse (`Scores.counts`)
        actual_t, tp_t = row_totals_and_diagonal(confusion)
        tp, actual = tp_t.double().numpy(), actual_t.double().numpy()
        predicted = column_totals(confusion).double().numpy()
    else:
        c = np.asarray(confusion, dtype=np.float64)
        tp = np.diag(c)
        predicted, actual = c.sum(0), c.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


# --- suspect labels -------------------------------------------------------------------------


@dataclass(frozen=True)
class Suspect:
    """A training image whose given label the model doubts.

    score: the loss -log p(given); higher is more suspicious.
    """

    index: int
    path: str
    given: str
    predicted: str
    score: float
    given_probability: float
    predicted_probability: float


def rank_suspects(
    scores: SampleScores, classes: Sequence[str], paths: Sequence[str] = ()
) -> list[Suspect]:
    """Every image, most suspicious first (ties: dataset order)."""
    loss = scores.loss
    pred = scores.predicted
    order = np.argsort(-loss, kind="stable")
    given_p, conf = scores.given_probability, scores.confidence
    return [
        Suspect(
            int(i), paths[i] if paths else "", classes[scores.labels[i]], classes[pred[i]],
            float(loss[i]), float(given_p[i]), float(conf[i]),
        )  # fmt: skip
        for i in order
    ]


def find_suspects(model: nn.Module, data: Dataset, *, tta_flip: bool = False, top: int | None = None) -> list[Suspect]:
    """The images of `data` (an image folder: `data.paths` names the files) ranked by how
    likely their label is wrong under `model`, the model trained on them; `top` keeps
    only the first ones."""
    ranked = rank_suspects(score_samples(model, data.images, data.labels, tta_flip=tta_flip), data.classes, data.paths)
    return ranked if top is None else ranked[:top]


CSV_FIELDS = ("rank", "path", "given_label", "predicted_label", "loss", "p_given", "p_predicted")


def suspects_csv(suspects: Sequence[Suspect]) -> str:
    """The list as CSV text (one row per image, most suspicious first)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for rank, s in enumerate(suspects, 1):
        w.writerow(
            [rank, s.path, s.given, s.predicted, f"{s.score:.6f}", f"{s.given_probability:.6f}",
             f"{s.predicted_probability:.6f}"]
        )  # fmt: skip
    return buf.getvalue()


def write_suspects_csv(suspects: Sequence[Suspect], path: str | os.PathLike) -> None:
    """Writes `suspects_csv` atomically (a full disk never leaves half a file).

    Raises:
        OSError: the folder is not writable or the disk is full.
    """
    atomic_write_bytes(path, suspects_csv(suspects).encode("utf-8"))
