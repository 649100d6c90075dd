"""What a finished run leaves behind: the best weights judged on the test data, and the
model file with a card that says how it was made and how well it does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from app.core.config import TrainConfig
from app.core.data import Dataset
from app.core.evaluation import evaluate, per_class_accuracy
from app.core.modelio import ModelCard


def test_metrics(
    model: nn.Module, test: Dataset, n_classes: int, tta_flip: bool, judge: Callable = evaluate
) -> dict:
    """The model card's test entries: accuracy, loss, per-class accuracy of `model` on
    `test` (judged once, as the app uses the model). `judge`: `evaluate` or one with its
    signature (a distributed run's, which shares the images out)."""
    loss, acc, conf = judge(model, test.images, test.labels, n_classes, tta_flip=tta_flip)
    return {
        "test_accuracy": acc,
        "test_loss": loss,
        "test_split": f"{test.name} test ({len(test)} images)",
        "test_per_class": per_class_accuracy(conf),
    }


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
