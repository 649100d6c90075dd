"""Knowledge distillation from an ensemble, for runs from scratch (Hinton et al. 2015):
besides its labels, every augmented training image pulls the new model toward the mean
logits of a few trained models (`TrainConfig.teachers`) for the same image. An ensemble
is more accurate than each of its members, and its soft outputs carry what the labels do
not (which digit came second, how sure); one distilled model keeps most of the
ensemble's gain at one model's cost in the app.

The teachers must have held out the same validation digits as the run (same split seed,
validation share and limit): otherwise the digits the run calibrates on would have
reached it through the teachers. The loss is `app.core.distill`'s (LwF's) with every real
image distilled (outlier exposure's images are not)."""

from __future__ import annotations

import torch
from torch import nn

from app.core.config import TrainConfig, TrainingError
from app.core.data import Dataset
from app.core.distill import DistilledLoss, entry_block, teacher_tail
from app.core.training import Trainer, _Plan


class Ensemble(nn.Module):
    """The mean logits of frozen nets (eval mode) that take the same input."""

    def __init__(self, nets: list[nn.Module]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x).float() for net in self.nets]).mean(0)


def _split(config: TrainConfig | dict) -> tuple:
    """What decides a run's held-out digits: (split seed, validation share, limit)."""
    c = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    return (c.seed if c.split_seed is None else c.split_seed, c.val_fraction, c.limit)


def load_teachers(config: TrainConfig, data: Dataset) -> Ensemble:
    """The ensemble of `config.teachers` (each net without its normalisation: it is fed
    the student's normalised input).

    Raises:
        TrainingError: a teacher cannot be read, or has other classes, another input, or
            held out other digits than this run does.
    """
    from app.core.modelio import ModelFileError, load_model

    nets = []
    for path in config.teachers:
        try:
            model, card = load_model(path)
        except (ModelFileError, OSError) as e:
            raise TrainingError(f"teacher {path}: {e}") from None
        if list(card.classes) != list(data.classes) or card.input != data.spec:
            raise TrainingError(f"teacher {path}: other classes or input than {data.name}")
        if _split(card.recipe) != _split(config):
            raise TrainingError(
                f"teacher {path} held out other validation images (split seed, share, limit "
                f"{_split(card.recipe)}, this run {_split(config)}): train it with --split-seed"
            )
        nets.append(teacher_tail(model, 0))
    return Ensemble(nets).eval()


class TaughtTrainer(Trainer):
    """A `Trainer` whose loss adds `distill_weight` x the distillation loss at
    `distill_temperature` toward the teachers' mean logits, on every real image."""

    def _setup(self) -> _Plan:
        cfg = self.config
        teacher = load_teachers(cfg, self.data)  # before the run's set-up: a bad teacher fails fast
        plan = super()._setup()
        assert self.model is not None
        teacher = teacher.to(self.device)
        if cfg.channels_last:
            teacher = teacher.to(memory_format=torch.channels_last)
        self._distill = DistilledLoss(self._criterion, teacher, cfg.distill_weight, cfg.distill_temperature)
        self._criterion = self._distill
        self._entry = entry_block(self.model, 0)
        return plan

    def _train_step(self, plan: _Plan, idx: torch.Tensor, rows: slice, epoch: int, step: int) -> tuple[float, int]:
        with self._distill.watching(self._entry, torch.ones(len(idx), dtype=torch.bool)):
            return super()._train_step(plan, idx, rows, epoch, step)

