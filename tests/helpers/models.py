"""Model files for tests: small, untrained but with non-trivial weights, written in
well under a second (training is tested in test_training.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from app.core.data import MNIST_CLASSES
from app.core.modelio import ModelCard, save_model
from app.core.models import MNIST_SPEC, Classifier, InputSpec, build_model


def random_model(
    arch: str = "resnet-mnist-small", classes: int = 10, spec: InputSpec = MNIST_SPEC, seed: int = 0
) -> Classifier:
    """A model whose every weight and BN statistic is random, so two different models
    disagree and a model that lost weights on the way through a file is noticed."""
    torch.manual_seed(seed)
    model = build_model(arch, classes, spec)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(
                    torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.2
                )
    return model.eval()


def write_model(
    path: Path,
    arch: str = "resnet-mnist-small",
    classes: list[str] | None = None,
    spec: InputSpec = MNIST_SPEC,
    seed: int = 0,
) -> Path:
    classes = list(MNIST_CLASSES) if classes is None else classes
    model = random_model(arch, len(classes), spec, seed)
    card = ModelCard(
        name=path.stem, arch=arch, classes=classes, input=spec, dataset="none (random weights)"
    )
    return save_model(path, model, card)
