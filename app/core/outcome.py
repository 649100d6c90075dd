"""What a finished run leaves behind: the best weights judged on the test data, and the
model file with a card that says how it was made and how well it does."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from app.core.calibration import calibration_report
from app.core.config import TrainConfig
from app.core.confusion import confusion_counts, row_totals_and_diagonal
from app.core.data import Dataset
from app.core.evaluation import model_logits, per_class_accuracy
from app.core.modelio import ModelCard


def test_metrics(
    model: nn.Module, test: Dataset, n_classes: int, tta_flip: bool, temperature: float | None = None
) -> dict:
    """The model card's test entries: accuracy, loss, per-class accuracy of `model` on
    `test` (judged once, as the app uses the model), and with a `temperature` the test
    ECE and NLL before and after calibration (measured only; never fitted on)."""
    z = model_logits(model, test.images, tta_flip=tta_flip).reshape(len(test), n_classes)
    y = test.labels.cpu()
    conf = confusion_counts(y, z.argmax(1), n_classes)  # sparse for many classes
    out = {
        "test_accuracy": float(row_totals_and_diagonal(conf)[1].sum()) / max(len(y), 1),
        "test_loss": float(F.cross_entropy(z, y)) if len(y) else 0.0,
        "test_split": f"{test.name} test ({len(test)} images)",
        "test_per_class": per_class_accuracy(conf),
    }
    if temperature is not None and len(y) and bool(torch.isfinite(z).all()):
        before, after = calibration_report(z, y, 1.0), calibration_report(z, y, temperature)
        out.update(test_ece=after.ece, test_ece_uncalibrated=before.ece, test_nll=after.nll,
                   test_nll_uncalibrated=before.nll)  # fmt: skip
    return out


def run_card(
    path: Path,
    config: TrainConfig,
    history: list[dict],
    test: dict,
    n_train: int,
    data: Dataset,
    command: str,
) -> ModelCard:
    """The card saved beside a trained model: architecture, classes, input, data and the
    run's metrics (best validation accuracy, last training loss, `test` entries)."""
    last = history[-1] if history else {}
    best_val = max((h["val_acc"] for h in history if h.get("val_acc") is not None), default=None)
    metrics = {
        "val_accuracy": best_val,
        "val_split": f"{config.val_fraction:.0%} of the training data, seeded split",
        "final_train_loss": last.get("train_loss"),
        "epochs_trained": len(history),
    }
    metrics.update(test)
    return ModelCard(
        name=path.stem,
        arch=config.arch,
        classes=list(data.classes),
        input=data.spec,
        dataset=f"{data.name} ({data.source})" if data.source else data.name,
        train_samples=n_train,
        command=command,
        metrics=metrics,
        recipe=config.to_dict(),
    )
