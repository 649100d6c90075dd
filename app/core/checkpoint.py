"""Per-epoch training checkpoints: written atomically, read without unpickling objects.

A checkpoint holds everything an exact resume needs (model, EMA, optimizer, schedule,
best epoch, history, config). It is ours, not a user's model file, so it may use
`torch.save`; it is read with `weights_only=True` (tensors and plain containers only).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from app.core.config import TrainConfig, TrainingError
from app.core.ema import WeightEMA
from app.core.fileio import atomic_write

CHECKPOINT_FORMAT = 1
# Settings that shape the run's schedule and data: resuming with another value would not
# continue the same run.
RESUME_KEYS = ("arch", "epochs", "batch_size", "lr", "seed", "val_fraction", "limit")


def to_cpu(obj):
    """A copy of nested dicts/lists with every tensor moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    return obj


def write_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Writes `state` (tensors are moved to the CPU) atomically.

    Raises:
        TrainingError: the file cannot be written (full disk, no permission).
    """
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **to_cpu(state)}, buf)
    try:
        atomic_write(path, lambda f: f.write(buf.getbuffer()))
    except OSError as e:
        raise TrainingError(f"cannot write checkpoint {path}: {e.strerror or e}") from None


def read_checkpoint(path: str | os.PathLike, config: TrainConfig) -> dict:
    """Reads a checkpoint made by a run with the same `RESUME_KEYS` settings as `config`.

    Raises:
        TrainingError: missing or invalid file, or made with other settings (named).
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"{path}: checkpoint not found") from None
    except Exception as e:
        raise TrainingError(f"{path}: not a valid checkpoint ({e})") from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise TrainingError(f"{path}: not a valid checkpoint (no epoch)")
    saved = TrainConfig.from_dict(state.get("config", {}))
    for key in RESUME_KEYS:
        if getattr(saved, key) != getattr(config, key):
            raise TrainingError(
                f"{path}: checkpoint was made with {key}={getattr(saved, key)}, "
                f"this run has {getattr(config, key)}"
            )
    return state


@dataclass
class Best:
    """The best epoch so far: its score, its index and its weights (the model file's)."""

    acc: float = -1.0
    epoch: int | None = None
    state: dict = field(default_factory=dict)

    def to_checkpoint(self) -> dict:
        return {"best_acc": self.acc, "best_epoch": -1 if self.epoch is None else self.epoch, "best_state": self.state}

    def restore(self, state: dict) -> None:
        """Takes the best epoch from a checkpoint's `state`."""
        self.acc = float(state.get("best_acc", -1.0))
        be = int(state.get("best_epoch", -1))
        self.epoch = None if be < 0 else be
        self.state = state.get("best_state", {})


def restore_training(
    path: Path, state: dict, model: nn.Module, opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler, ema: WeightEMA | None, steps_per_epoch: int,
) -> None:  # fmt: skip
    """Loads a checkpoint's weights, optimizer, schedule and EMA into a set-up run.

    Raises:
        TrainingError: the checkpoint does not fit this model.
    """
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema"):
            ema.restore(state["ema"], int(state["epoch"]) * steps_per_epoch)
    except (KeyError, RuntimeError, ValueError) as e:
        raise TrainingError(f"{path}: checkpoint does not fit this model ({e})") from None
