"""Warming up torch's training path ahead of a user's first run."""

from __future__ import annotations

import torch

from app.core.config import TrainConfig
from app.core.data import Dataset
from app.core.models import MNIST_SPEC
from app.core.training import Trainer


def warm_up() -> None:
    """Does the one-off work of a first run ahead of time: a tiny run on synthetic data
    through the real code path. A first run imports torch._dynamo, the lr schedulers and
    torchvision's models (~1 s, ~1000 modules) and initializes kernels; imports hold the
    GIL for long stretches, so doing that while the GUI shows live plots would stall its
    event loop. The GUI calls this in a background thread on the first visit of the
    Train tab; it changes no global torch state (RNG, threads), so a run started
    meanwhile is not affected."""
    import torchvision.models  # noqa: F401  (resnet18/34/50 builders)

    g = torch.Generator().manual_seed(0)
    data = Dataset(
        torch.randint(0, 256, (24, 1, 28, 28), dtype=torch.uint8, generator=g),
        torch.arange(24) % 2,
        ["a", "b"],
        MNIST_SPEC,
        "warm-up",
    )
    # fp32: no precision measurement (and no cache entry) for a made-up 24-image run.
    config = TrainConfig(
        arch="resnet-mnist-small", epochs=1, batch_size=8, val_fraction=0.25, device="cpu", precision="fp32"
    )
    for _ in Trainer(config, data).run():
        pass
