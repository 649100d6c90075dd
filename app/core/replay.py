"""Replay for fine-tuning: the base model's own training data, mixed into a fine-tune so
that nothing it knew is forgotten (app/core/finetune.py)."""

from __future__ import annotations

from app.core.config import TrainingError
from app.core.data import Dataset
from app.core.modelio import ModelCard


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
