"""Per-epoch training checkpoints: written atomically, read without unpickling objects.

A checkpoint holds everything an exact resume needs (model, EMA, optimizer, schedule,
best epoch, history, config). It is ours, not a user's model file, so it may use
`torch.save`; it is read with `weights_only=True` (tensors and plain containers only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from app.core.config import TrainConfig, TrainingError
from app.core.dataset import Dataset
from app.core.ema import WeightEMA
from app.core.fileio import atomic_write

CHECKPOINT_FORMAT = 1
# Settings that only say where and how fast a run goes: a resume may change them (move to
# another device). Every other setting shapes the run (schedule, data, augmentation,
# loss), so resuming with another value would not continue the same run.
FREE_ON_RESUME = ("device", "precision", "threads", "channels_last")
RESUME_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in FREE_ON_RESUME)


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


def data_identity(data: Dataset) -> dict:
    """What a checkpoint records of its training data, to refuse a resume on other data:
    name, size, classes, input spec and a digest of every image and label."""
    h = hashlib.blake2b(digest_size=16)
    h.update(data.images.detach().cpu().contiguous().numpy().tobytes())
    h.update(data.labels.detach().cpu().contiguous().numpy().tobytes())
    return {
        "name": data.name, "images": len(data), "classes": list(data.classes),
        "spec": data.spec.to_dict(), "digest": h.hexdigest(),
    }  # fmt: skip


def _check_data(path: Path, saved: object, data: dict) -> None:
    if not isinstance(saved, dict) or "digest" not in saved:
        return  # a checkpoint from before data identities: settings alone are checked
    if saved.get("digest") == data["digest"]:
        return
    was = f"{saved.get('name', '?')} ({saved.get('images', '?')} images, {len(saved.get('classes') or [])} classes)"
    now = f"{data['name']} ({data['images']} images, {len(data['classes'])} classes)"
    if was == now:
        detail = "the same name and size, but other images or labels (the files changed?)"
    else:
        detail = f"this run trains on {now}"
    raise TrainingError(
        f"{path}: checkpoint was made on {was}; {detail}. A resume continues a run on "
        "the data it started with: use that dataset, or start a new run without --resume"
    )


def _refuse_model_file(path: Path) -> None:
    """A model file (safetensors) given to --resume: say what --resume takes."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return
    if path.suffix not in (".safetensors", ".json") and not (len(head) == 9 and head[8:9] == b"{"):
        return
    ckpt = path.with_suffix(".ckpt")
    hint = f"Did you mean --resume {ckpt}?" if ckpt.is_file() else "A finished model cannot be resumed."
    raise TrainingError(
        f"{path}: this is a model file, not a training checkpoint. --resume continues an "
        f"interrupted run from the .ckpt file written beside its model. {hint} To train "
        f"further from this model's weights, fine-tune it: --init {path} --dataset DIR"
    )


def read_checkpoint(path: str | os.PathLike, config: TrainConfig, data: dict | None = None) -> dict:
    """Reads a checkpoint made by a run with the same `RESUME_KEYS` settings as `config`
    and, when `data` (a `data_identity`) is given, on the same data.

    Raises:
        TrainingError: missing or invalid file, a model file, or made with other data or
            settings (named).
    """
    path = Path(path)
    _refuse_model_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"{path}: checkpoint not found") from None
    except Exception as e:
        raise TrainingError(f"{path}: not a valid checkpoint ({e})") from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise TrainingError(f"{path}: not a valid checkpoint (no epoch)")
    if data is not None:
        _check_data(path, state.get("data"), data)
    try:
        saved = TrainConfig.from_dict(state.get("config", {}))
    except TypeError as e:
        raise TrainingError(f"{path}: not a valid checkpoint (config: {e})") from None
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
