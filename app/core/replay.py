"""Replay for fine-tuning: the base model's own training data, mixed into a fine-tune so
that nothing it knew is forgotten (app/core/finetune.py); which images of the mix are
replayed (the ones distilled, app/core/distill.py)."""

from __future__ import annotations

import math

import torch

from app.core.config import TrainConfig, TrainingError
from app.core.data import Dataset
from app.core.modelio import ModelCard
from app.core.recalibration import training_split


def load_replay(replay: str | None, replay_dir: str | None, card: ModelCard) -> tuple[Dataset | None, Dataset | None]:
    """The replay data's training split and (when it has one) its test split, prepared
    for the base model's input.

    Raises:
        DataError: the data cannot be read.
        TrainingError: the data is prepared for another input than the base model's.
    """
    from app.core.data import split_folder
    from app.core.datarequest import DataRequest

    if not replay:
        return None, None
    request = DataRequest(replay, replay_dir)
    train = request.load("train", None if request.builtin else card.input)
    if train.spec != card.input:
        raise TrainingError(
            f"{replay} is prepared for another input ({train.spec.mode}, {train.spec.size} px) "
            f"than {card.name} ({card.input.mode}, {card.input.size} px): replay the data it was trained on"
        )
    test = None
    if request.builtin or split_folder(replay, "test") != split_folder(replay, "train"):
        test = request.load("test", None if request.builtin else card.input)
    return train, test


def replay_for(card: ModelCard) -> str | None:
    """The built-in dataset a model was trained on (read from its card), to replay when
    fine-tuning it; None when it was trained on something else."""
    from app.core.data import BUILTIN

    first = card.dataset.split(" ", 1)[0] if card.dataset else ""
    return first if first in BUILTIN else None


def relabel(data: Dataset, classes: list[str]) -> Dataset:
    """`data` with labels indexing `classes` (by name); images of classes not in it are
    dropped."""
    mapping = torch.tensor([classes.index(c) if c in classes else -1 for c in data.classes], dtype=torch.int64)
    labels = mapping[data.labels]
    keep = labels >= 0
    paths = [p for p, k in zip(data.paths, keep.tolist()) if k] if data.paths else []
    return Dataset(data.images[keep], labels[keep], list(classes), data.spec, data.name, data.source, paths=paths)


def replay_sample(n: int, config: TrainConfig) -> torch.Tensor:
    """Which of `n` replay images a fine-tune mixes in: a seeded sample of `replay_size`."""
    g = torch.Generator().manual_seed(config.seed)
    return torch.randperm(n, generator=g)[: config.replay_size]


def mixed(personal: Dataset, replay: Dataset | None, config: TrainConfig) -> tuple[Dataset, torch.Tensor]:
    """The training set of a fine-tune: a seeded sample of `replay_size` replayed
    images, plus the personal examples repeated until they are `personal_share` of it;
    and which of its images are replayed (bool)."""
    if replay is None or len(replay) == 0 or config.replay_size == 0:
        return personal, torch.zeros(len(personal), dtype=torch.bool)
    sample = replay.subset(replay_sample(len(replay), config))
    want = config.personal_share / max(1e-9, 1.0 - config.personal_share) * len(sample)
    repeats = max(1, math.ceil(want / max(len(personal), 1)))
    images = torch.cat([sample.images, personal.images.repeat(repeats, 1, 1, 1)])
    labels = torch.cat([sample.labels, personal.labels.repeat(repeats)])
    name = f"{personal.name} + {replay.name} replay"
    replayed = torch.arange(len(labels)) < len(sample)
    return Dataset(images, labels, list(personal.classes), personal.spec, name, personal.source), replayed


def split_flags(data: Dataset, flags: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """`flags` (one for each image of `data`) of the training rows, as the trainer splits them."""
    marks = Dataset(flags.to(torch.uint8).view(-1, 1, 1, 1), data.labels, data.classes, data.spec, data.name)
    kept, train_idx, _ = training_split(marks, config)
    return kept.images[train_idx].view(-1).bool()
