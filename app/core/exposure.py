"""Outlier exposure during training (Hendrycks, Mazeika & Dietterich 2019): every step
also shows the model synthetic images that belong to none of its classes
(`app.core.outliers`) with a "none of these" (uniform) target, so that its confidence
later tells real inputs from foreign ones ("this does not look like a digit").

`TrainConfig.outlier_exposure` is the weight of that loss; 0 (the default) turns it off.
It doubles the images per step (one outlier per training image), so a run costs about
twice as long; the pool is drawn once per run from the run's seed (resuming redraws the
same pool) and re-augmented every step like the training images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from app.core.models import InputSpec
from app.core.outliers import synthetic_outliers

POOL_MAX = 4000  # outliers per run; drawing one costs ~10-20 ms on a CPU (prepare())
OUTLIER = -1  # the label of an outlier row in a batch


def outlier_pool(
    n_train: int, spec: InputSpec, seed: int, images: torch.Tensor, labels: torch.Tensor,
    classes: Sequence[str] | None = None,
) -> torch.Tensor:
    """min(n_train, POOL_MAX) synthetic outliers (uint8, N C H W), drawn from `seed` and
    the training images (shuffled tiles and overlays of two classes); letters too when
    `classes` are the ten digits."""
    n = max(1, min(n_train, POOL_MAX))
    rng = np.random.default_rng([seed, 0x0E])
    return torch.from_numpy(
        synthetic_outliers(n, spec, rng, images.cpu().numpy(), labels.cpu().numpy(), classes)
    )


def step_outliers(pool: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """`n` outliers drawn from the pool with replacement (uint8)."""
    return pool[torch.randint(0, len(pool), (n,), generator=gen).to(pool.device)]


class OutlierExposureLoss(nn.Module):
    """Cross-entropy (label smoothed) on the rows with a class label, plus `weight` times
    the cross-entropy of the rows labelled OUTLIER to the uniform distribution."""

    def __init__(self, weight: float, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.weight = weight
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        inl = labels != OUTLIER
        loss = F.cross_entropy(logits[inl], labels[inl], label_smoothing=self.label_smoothing)
        if bool((~inl).any()):
            loss = loss + self.weight * (-F.log_softmax(logits[~inl], 1).mean(1)).mean()
        return loss
