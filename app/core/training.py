"""The trainer: a plain-Python generator of typed events, driven by the CLI or a QThread.

Fast by design (see bench/): the dataset lives on the device as one uint8 tensor,
batches are index slices, augmentation is one batched `grid_sample` (random affine +
smooth elastic warp) on the device, convs run channels_last, and CPUs with native bf16
use bf16 autocast (fp32 master weights). No per-sample Python work in the hot loop.

Control (thread-safe, checked between steps): pause(), resume(), cancel(),
set_device(). Every epoch ends with an atomic checkpoint; resuming from it reproduces
an uninterrupted run exactly, because all randomness of an epoch comes from generators
seeded with (seed, epoch).
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from app.core.data import Dataset, split_train_val
from app.core.devices import autocast_dtype, is_device_failure, resolve_device
from app.core.modelio import ModelCard, _atomic_write, flip_tta, save_model
from app.core.models import ARCHITECTURES, Classifier, build_model


class TrainingError(Exception):
    """Training cannot go on (bad settings, diverged loss); str() is user-readable."""


# =========================================================================================
# Hyperparameters
# =========================================================================================


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run, with the defaults of the shipped digit recipe."""

    arch: str = "resnet-mnist"
    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.1  # peak of the one-cycle schedule (SGD, Nesterov momentum 0.9)
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1  # soft targets generalize better from 5k samples
    warmup_fraction: float = 0.15  # share of steps spent ramping the lr up
    augment: bool = True
    rotate_deg: float = 12.0  # random affine: rotation range (+/-)
    scale: float = 0.12  # zoom range (+/-, relative)
    shear_deg: float = 10.0
    shift: float = 0.10  # translation range (+/-, fraction of the image)
    elastic: float = 1.0  # smooth elastic warp amplitude, px (Simard et al. 2003); 0 = off
    hflip: bool = False  # random horizontal mirror: clothing and photos, never digits
    ema_decay: float = 0.998  # EMA of weights, used for eval and saving (+0.16% on MNIST 5k); 0 = off
    val_fraction: float = 0.1  # carved out of the training data for checkpoint choice
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast where the hardware has fast bf16
    channels_last: bool = True
    threads: int = 0  # torch intra-op threads; 0 = leave as is
    limit: int = 0  # use only the first N training samples (quick runs); 0 = all

    def validate(self) -> None:
        """Raises TrainingError naming the first setting that is out of range."""
        checks = [
            (self.arch in ARCHITECTURES, f"unknown architecture {self.arch!r}"),
            (1 <= self.epochs <= 1000, f"epochs must be 1..1000, not {self.epochs}"),
            (1 <= self.batch_size <= 8192, f"batch size must be 1..8192, not {self.batch_size}"),
            (0 < self.lr <= 10 and math.isfinite(self.lr), f"learning rate must be in (0, 10], not {self.lr}"),
            (0 <= self.weight_decay < 1, f"weight decay must be in [0, 1), not {self.weight_decay}"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (0 <= self.val_fraction < 0.9, f"validation fraction must be in [0, 0.9), not {self.val_fraction}"),
            (self.precision in ("auto", "fp32", "bf16"), "precision must be auto, fp32 or bf16"),
            (self.limit >= 0, "limit must be >= 0"),
            (0 <= self.ema_decay < 1, "EMA decay must be in [0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise TrainingError(msg)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# =========================================================================================
# Events
# =========================================================================================


@dataclass(frozen=True)
class StepEvent:
    epoch: int  # 0-based
    step: int  # within the epoch
    steps_per_epoch: int
    global_step: int
    total_steps: int
    loss: float
    lr: float
    images_per_s: float
    eta_s: float
    elapsed_s: float


@dataclass(frozen=True)
class EpochEvent:
    epoch: int  # 0-based, finished
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    per_class_acc: list[float]  # on validation (or training data when there is none)
    confusion: list[list[int]]  # rows: true class, columns: predicted
    images_per_s: float
    elapsed_s: float
    eta_s: float
    best: bool  # this epoch is the best so far (saved as the model)


@dataclass(frozen=True)
class StateEvent:
    """running | paused | resumed | device (moved) | problem (device failure, paused)."""

    state: str
    message: str = ""
    device: str = ""


@dataclass(frozen=True)
class FinishedEvent:
    status: str  # completed | stopped
    epochs_done: int
    best_val_acc: float | None
    best_epoch: int | None
    model_path: str | None
    elapsed_s: float


Event = StepEvent | EpochEvent | StateEvent | FinishedEvent


# =========================================================================================
# Augmentation: one batched grid_sample on the device
# =========================================================================================


def augment_batch(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, border: bool = False) -> torch.Tensor:
    """Random affine (rotate, scale, shear, shift, optional mirror) + smooth elastic warp.

    Random numbers come from `gen` on the CPU (tiny), so results do not depend on the
    device: a run moved between devices stays reproducible.
    """
    b, _, h, w = x.shape
    u = torch.rand(b, 5, generator=gen) * 2 - 1  # uniform in [-1, 1]
    rot = torch.deg2rad(u[:, 0] * cfg.rotate_deg)
    scale = 1 + u[:, 1] * cfg.scale
    shear = torch.deg2rad(u[:, 2] * cfg.shear_deg)
    tx, ty = u[:, 3] * cfg.shift * 2, u[:, 4] * cfg.shift * 2  # grid units: 2 = full width
    # Inverse map for affine_grid: output coords -> input coords.
    cos, sin = torch.cos(rot) / scale, torch.sin(rot) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + torch.tan(shear) * cos, tx], 1),
            torch.stack([sin, cos, ty], 1),
        ],
        1,
    )
    if cfg.hflip:  # mirror half of the batch: negate the x coefficients of the inverse map
        sign = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
        theta = torch.cat([theta[:, :, :1] * sign.view(b, 1, 1), theta[:, :, 1:]], 2)
    grid = F.affine_grid(theta.to(x.device), [b, 1, h, w], align_corners=False)
    if cfg.elastic > 0:
        coarse = torch.randn(b, 2, 3, 3, generator=gen).to(x.device)
        field_ = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        grid = grid + field_.permute(0, 2, 3, 1) * (cfg.elastic * 2.0 / h)
    return F.grid_sample(
        x, grid, mode="bilinear", padding_mode="border" if border else "zeros", align_corners=False
    )


# =========================================================================================
# One epoch, evaluation
# =========================================================================================


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    batch_size: int = 500,
    autocast: torch.dtype | None = None,
    channels_last: bool = True,
    tta_flip: bool = False,
) -> tuple[float, float, torch.Tensor]:
    """Returns (mean loss, accuracy, confusion matrix [true, pred]) on uint8 images.

    tta_flip: average the logits of each image and its mirror (models trained with
    mirrored images; see `flip_tta`)."""
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct = 0.0, 0
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for start in range(0, len(images), batch_size):
        xb = images[start : start + batch_size].to(device).float().div_(255)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = labels[start : start + batch_size].to(device)
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            out = model(xb)
            if tta_flip:
                out = (out.float() + model(xb.flip(-1)).float()) / 2
        out = out.float()
        total_loss += float(F.cross_entropy(out, yb, reduction="sum"))
        pred = out.argmax(1)
        correct += int((pred == yb).sum())
        confusion += torch.bincount(
            (yb * num_classes + pred).cpu(), minlength=num_classes * num_classes
        ).view(num_classes, num_classes)
    n = max(len(images), 1)
    return total_loss / n, correct / n, confusion


def per_class_accuracy(confusion: torch.Tensor) -> list[float]:
    totals = confusion.sum(1).clamp(min=1)
    return (confusion.diag().float() / totals.float()).tolist()


# =========================================================================================
# The trainer
# =========================================================================================


@dataclass
class _Best:
    acc: float = -1.0
    epoch: int | None = None
    state: dict = field(default_factory=dict)


class Trainer:
    """Trains a model on a `Dataset`, yielding events from `run()`.

    Args:
        config: the run's hyperparameters.
        data: training data (validation is carved out of it, `config.val_fraction`).
        out: model file to write at the end (best validation epoch), or None.
        checkpoint: where to write the per-epoch checkpoint (default: out + ".ckpt").
        resume: a checkpoint to continue from.
        command: the command line recorded in the model card.
    """

    def __init__(
        self,
        config: TrainConfig,
        data: Dataset,
        out: str | os.PathLike | None = None,
        checkpoint: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None,
        command: str = "",
        test_data: Dataset | None = None,
    ) -> None:
        config.validate()
        if len(data) < 2:
            raise TrainingError(f"{data.name}: needs at least 2 training images, has {len(data)}")
        self.config = config
        self.data = data
        self.test_data = test_data
        self.out = Path(out) if out else None
        self.checkpoint = Path(checkpoint) if checkpoint else (
            self.out.with_suffix(".ckpt") if self.out else None
        )
        self.resume_from = Path(resume) if resume else None
        self.command = command
        self.history: list[dict] = []
        self.model: Classifier | None = None
        self._tta = False  # flip TTA for evaluation, set by run() from the config
        self.test_metrics: dict = {}
        self._pause = threading.Event()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._device_request: str | None = None
        self.device = resolve_device(config.device)

    # --- control (any thread) ------------------------------------------------------------

    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def cancel(self) -> None:
        self._cancel.set()
        self._pause.clear()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def set_device(self, device: str) -> None:
        """Moves the run to `device` before the next step (raises ValueError if unusable)."""
        resolve_device(device)
        with self._lock:
            self._device_request = device

    # --- internals -----------------------------------------------------------------------

    def _move(self, device: torch.device) -> None:
        self.device = device
        assert self.model is not None
        self.model.to(device)
        for state in self._opt.state.values():
            for k, v in state.items():
                if isinstance(v, torch.Tensor):
                    state[k] = v.to(device)
        self._ema = {k: v.to(device) for k, v in self._ema.items()}
        self._train_x = self._train_x.to(device)
        self._train_y = self._train_y.to(device)
        self._autocast = autocast_dtype(device, self.config.precision)

    def _ema_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        assert self.model is not None
        live = self.model.state_dict()
        return [(self._ema[k], v) for k, v in live.items()]

    def _ema_update(self, step: int) -> None:
        """EMA of weights (and a copy of BN statistics), warmed up over the first steps."""
        d = min(self.config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            floats = [(e, v) for e, v in self._ema_pairs() if e.is_floating_point()]
            torch._foreach_lerp_([e for e, _ in floats], [v for _, v in floats], 1 - d)
            for e, v in self._ema_pairs():
                if not e.is_floating_point():
                    e.copy_(v)

    def eval_state(self) -> dict:
        """The weights to evaluate and save: the EMA when enabled, else the live ones."""
        assert self.model is not None
        if self._ema:
            return self._ema
        return self.model.state_dict()

    def evaluate_now(self, data: Dataset, tta_flip: bool | None = None) -> tuple[float, float, torch.Tensor]:
        """(loss, accuracy, confusion) on `data` of the weights the trainer would save now
        (the EMA), used as the app uses them (flip TTA for mirror-trained models unless
        `tta_flip` says otherwise). For benchmarks between epochs; the run is not touched."""
        assert self.model is not None, "no model before run() has started"
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.eval_state())
        return evaluate(
            model, data.images, data.labels, len(data.classes), autocast=self._autocast,
            channels_last=self.config.channels_last, tta_flip=self._tta if tta_flip is None else tta_flip,
        )  # fmt: skip

    def _save_checkpoint(self, epoch_done: int, best: _Best) -> None:
        if self.checkpoint is None:
            return
        assert self.model is not None
        state = {
            "format": 1,
            "epoch": epoch_done,
            "model": {k: v.cpu() for k, v in self.model.state_dict().items()},
            "ema": {k: v.cpu() for k, v in self._ema.items()},
            "optimizer": _to_cpu(self._opt.state_dict()),
            "scheduler": self._sched.state_dict(),
            "best_acc": best.acc,
            "best_epoch": -1 if best.epoch is None else best.epoch,
            "best_state": best.state,
            "history": self.history,
            "config": self.config.to_dict(),
            "rng": torch.get_rng_state(),
        }
        import io

        buf = io.BytesIO()
        torch.save(state, buf)
        try:
            _atomic_write(self.checkpoint, lambda f: f.write(buf.getbuffer()))
        except OSError as e:
            raise TrainingError(f"cannot write checkpoint {self.checkpoint}: {e.strerror or e}") from None

    def _load_checkpoint(self, path: Path, best: _Best) -> int:
        try:
            # weights_only: tensors and plain containers only, never arbitrary objects.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise TrainingError(f"{path}: checkpoint not found") from None
        except Exception as e:
            raise TrainingError(f"{path}: not a valid checkpoint ({e})") from None
        saved = TrainConfig.from_dict(state.get("config", {}))
        for key in ("arch", "epochs", "batch_size", "lr", "seed", "val_fraction", "limit"):
            if getattr(saved, key) != getattr(self.config, key):
                raise TrainingError(
                    f"{path}: checkpoint was made with {key}={getattr(saved, key)}, "
                    f"this run has {getattr(self.config, key)}"
                )
        assert self.model is not None
        try:
            self.model.load_state_dict(state["model"])
            self._opt.load_state_dict(state["optimizer"])
            self._sched.load_state_dict(state["scheduler"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise TrainingError(f"{path}: checkpoint does not fit this model ({e})") from None
        if self._ema and state.get("ema"):
            for k, v in state["ema"].items():
                self._ema[k].copy_(v)
        self.history = list(state.get("history", []))
        best.acc = float(state.get("best_acc", -1.0))
        be = int(state.get("best_epoch", -1))
        best.epoch = None if be < 0 else be
        best.state = state.get("best_state", {})
        torch.set_rng_state(state["rng"])
        return int(state["epoch"])

    def _apply_device_request(self) -> Iterator[Event]:
        with self._lock:
            req, self._device_request = self._device_request, None
        if req is not None:
            dev = resolve_device(req)
            if dev != self.device:
                self._move(dev)
                yield StateEvent("device", f"training moved to {dev}", str(dev))

    def _poll_controls(self) -> Iterator[Event]:
        """Between steps: device moves (also while paused), pause (blocks here), cancel."""
        yield from self._apply_device_request()
        if self._pause.is_set() and not self._cancel.is_set():
            yield StateEvent("paused", "training paused", str(self.device))
            while self._pause.is_set() and not self._cancel.is_set():
                yield from self._apply_device_request()
                self._cancel.wait(0.05)
            if not self._cancel.is_set():
                yield StateEvent("resumed", "training resumed", str(self.device))

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        """Trains, yielding events; the final event is a FinishedEvent.

        Raises:
            TrainingError: diverged loss (NaN/inf), unwritable checkpoint/model, bad resume.
        """
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        data = self.data
        if cfg.limit and cfg.limit < len(data):
            data = data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.limit])
        train_idx, val_idx = split_train_val(len(data), cfg.val_fraction, cfg.seed)
        n_classes = len(data.classes)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.arch, n_classes, data.spec)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._ema: dict[str, torch.Tensor] = {}
        if cfg.ema_decay > 0:
            self._ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self._train_x = data.images[train_idx]
        self._train_y = data.labels[train_idx]
        val_x, val_y = data.images[val_idx], data.labels[val_idx]
        n_train = len(train_idx)
        bs = min(cfg.batch_size, n_train)
        steps_per_epoch = max(1, n_train // bs)  # drop the ragged last batch (BN stability)
        total_steps = steps_per_epoch * cfg.epochs

        decay, no_decay = [], []
        for _name, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BN and biases
        self._opt = torch.optim.SGD(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, momentum=0.9, nesterov=True,
        )  # fmt: skip
        self._sched = torch.optim.lr_scheduler.OneCycleLR(
            self._opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=cfg.warmup_fraction,
            div_factor=20.0, final_div_factor=200.0,
        )  # fmt: skip
        self._tta = flip_tta(cfg.to_dict())
        self._move(self.device)
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        best = _Best()
        start_epoch = 0
        if self.resume_from is not None:
            start_epoch = self._load_checkpoint(self.resume_from, best)
            self._move(self.device)
        border = data.spec.mode == "resize"

        t0 = time.perf_counter()
        rate = 0.0  # images/s, smoothed
        yield StateEvent("running", f"training {cfg.arch} on {n_train} images ({data.name})", str(self.device))
        for epoch in range(start_epoch, cfg.epochs):
            if self._cancel.is_set():
                break
            self.model.train()
            gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            perm = torch.randperm(n_train, generator=gen)
            run_loss, run_correct, run_n = 0.0, 0, 0
            step = 0
            while step < steps_per_epoch:
                yield from self._poll_controls()
                if self._cancel.is_set():
                    break
                ts = time.perf_counter()
                idx = perm[step * bs : (step + 1) * bs].to(self.device)
                try:
                    xb = self._train_x[idx].float().div_(255)
                    yb = self._train_y[idx]
                    if cfg.augment:
                        xb = augment_batch(xb, cfg, gen, border)
                    if cfg.channels_last:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(
                        self.device.type, dtype=self._autocast or torch.float32, enabled=self._autocast is not None
                    ):
                        out = self.model(xb)
                        loss = criterion(out.float(), yb)
                    self._opt.zero_grad(set_to_none=True)
                    loss.backward()
                    loss_value = loss.item()  # float(loss) warns: the tensor requires grad
                    if not math.isfinite(loss_value):
                        raise TrainingError(
                            f"the loss became {loss_value} at epoch {epoch + 1}, step {step + 1}: "
                            f"training diverged. Try a lower learning rate (now {cfg.lr:g}). "
                            "The last good checkpoint is kept."
                        )
                    self._opt.step()
                except TrainingError:
                    raise
                except RuntimeError as e:
                    if not is_device_failure(e):
                        raise
                    # Out of memory or a lost GPU: pause with progress intact; the user can
                    # switch device (or resume to retry) and this step runs again.
                    self._opt.zero_grad(set_to_none=True)
                    self._pause.set()
                    yield StateEvent(
                        "problem",
                        f"{self.device} failed at epoch {epoch + 1}, step {step + 1}: {str(e)[:200]}. "
                        "Training is paused with its progress kept: switch to the CPU (or lower the "
                        "batch size and restart) and resume.",
                        str(self.device),
                    )
                    continue
                self._sched.step()
                if self._ema:
                    self._ema_update(epoch * steps_per_epoch + step)
                with torch.no_grad():
                    run_correct += int((out.argmax(1) == yb).sum())
                run_loss += loss_value * len(yb)
                run_n += len(yb)
                dt = time.perf_counter() - ts
                rate = len(yb) / dt if rate == 0 else 0.9 * rate + 0.1 * len(yb) / dt
                gstep = epoch * steps_per_epoch + step
                remaining = total_steps - gstep - 1
                yield StepEvent(
                    epoch, step, steps_per_epoch, gstep, total_steps, loss_value,
                    self._sched.get_last_lr()[0], rate, remaining * bs / max(rate, 1e-9),
                    time.perf_counter() - t0,
                )  # fmt: skip
                step += 1
            if self._cancel.is_set() and step < steps_per_epoch:
                break  # a partial epoch is not evaluated or saved; the checkpoint stands

            # --- end of epoch: evaluate, remember the best, checkpoint --------------------
            train_loss = run_loss / max(run_n, 1)
            train_acc = run_correct / max(run_n, 1)
            live = None
            if self._ema:  # judge (and keep) the averaged weights
                live = {k: v.clone() for k, v in self.model.state_dict().items()}
                self.model.load_state_dict(self._ema)
            if len(val_x):
                val_loss, val_acc, confusion = evaluate(
                    self.model, val_x, val_y, n_classes, autocast=self._autocast,
                    channels_last=cfg.channels_last, tta_flip=self._tta,
                )  # fmt: skip
            else:
                _, _, confusion = evaluate(
                    self.model, self._train_x, self._train_y, n_classes,
                    autocast=self._autocast, channels_last=cfg.channels_last, tta_flip=self._tta,
                )  # fmt: skip
                val_loss, val_acc = None, None
            score = val_acc if val_acc is not None else train_acc
            is_best = score >= best.acc
            if is_best:
                best.acc, best.epoch = score, epoch
                best.state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            if live is not None:
                self.model.load_state_dict(live)
            self.history.append(
                {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                 "val_loss": val_loss, "val_acc": val_acc}
            )  # fmt: skip
            self._save_checkpoint(epoch + 1, best)
            elapsed = time.perf_counter() - t0
            epochs_left = cfg.epochs - epoch - 1
            yield EpochEvent(
                epoch, cfg.epochs, train_loss, train_acc, val_loss, val_acc,
                per_class_accuracy(confusion), confusion.tolist(), rate, elapsed,
                epochs_left * steps_per_epoch * bs / max(rate, 1e-9), is_best,
            )  # fmt: skip

        epochs_done = len(self.history)
        status = "completed" if epochs_done >= cfg.epochs and not self._cancel.is_set() else "stopped"
        model_path = None
        if best.epoch is not None:
            self.model.load_state_dict(best.state)
            if self.test_data is not None:
                loss, acc, conf = evaluate(
                    self.model, self.test_data.images, self.test_data.labels, n_classes,
                    tta_flip=self._tta,
                )  # fmt: skip
                self.test_metrics = {
                    "test_accuracy": acc,
                    "test_loss": loss,
                    "test_split": f"{self.test_data.name} test ({len(self.test_data)} images)",
                    "test_per_class": per_class_accuracy(conf),
                }
            if self.out is not None:
                model_path = str(self.save(self.out, n_train, data))
        yield FinishedEvent(
            status, epochs_done, None if best.epoch is None else best.acc, best.epoch,
            model_path, time.perf_counter() - t0,
        )  # fmt: skip

    def save(self, path: Path, n_train: int, data: Dataset) -> Path:
        """Writes the model (best epoch) with its card."""
        assert self.model is not None
        last = self.history[-1] if self.history else {}
        best_val = max((h["val_acc"] for h in self.history if h.get("val_acc") is not None), default=None)
        metrics = {
            "val_accuracy": best_val,
            "val_split": f"{self.config.val_fraction:.0%} of the training data, seeded split",
            "final_train_loss": last.get("train_loss"),
            "epochs_trained": len(self.history),
        }
        metrics.update(self.test_metrics)
        card = ModelCard(
            name=path.stem,
            arch=self.config.arch,
            classes=list(data.classes),
            input=data.spec,
            dataset=f"{data.name} ({data.source})" if data.source else data.name,
            train_samples=n_train,
            command=self.command,
            metrics=metrics,
            recipe=self.config.to_dict(),
        )
        model = self.model.to(memory_format=torch.contiguous_format)
        return save_model(path, model, card)


def warm_up() -> None:
    """Does the one-off work of a first run ahead of time: a tiny run on synthetic data
    through the real code path. A first run imports torch._dynamo, the lr schedulers and
    torchvision's models (~1 s, ~1000 modules) and initializes kernels; imports hold the
    GIL for long stretches, so doing that while the GUI shows live plots would stall its
    event loop. The GUI calls this in a background thread on the first visit of the
    Train tab."""
    import torchvision.models  # noqa: F401  (resnet18/34/50 builders)

    from app.core.models import MNIST_SPEC

    g = torch.Generator().manual_seed(0)
    data = Dataset(
        torch.randint(0, 256, (24, 1, 28, 28), dtype=torch.uint8, generator=g),
        torch.arange(24) % 2,
        ["a", "b"],
        MNIST_SPEC,
        "warm-up",
    )
    config = TrainConfig(arch="resnet-mnist-small", epochs=1, batch_size=8, val_fraction=0.25, device="cpu")
    for _ in Trainer(config, data).run():
        pass


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def with_overrides(config: TrainConfig, **kw) -> TrainConfig:
    """A copy of `config` with the given non-None fields replaced."""
    return replace(config, **{k: v for k, v in kw.items() if v is not None})


# =========================================================================================
# Recipes: dataset-aware defaults
# =========================================================================================

# The TrainConfig defaults are the digit recipe (handwriting: small rotations, shears and
# elastic warps, never mirrors). Clothing and photos are mirror-symmetric and rigid, so
# their recipe mirrors, zooms and shifts instead (and the model is then judged and used
# with flip TTA, see modelio.flip_tta). Chosen with bench/recipe_sweep.py on Fashion-MNIST
# by validation accuracy, within a 15-minute run on a 2-core CPU: the compact ResNet-20
# for 12 epochs ties resnet-mnist for 8 (val 93.8-94.2%, 2 seeds each) at about half the
# CPU time per epoch; the digit recipe reached 92.2%.
RECIPES: dict[str, dict] = {
    "digits": {},
    "objects": dict(
        hflip=True, rotate_deg=0.0, shear_deg=0.0, scale=0.1, shift=0.1, elastic=0.0,
        arch="resnet-mnist-small", epochs=12, batch_size=128, lr=0.2,
    ),  # fmt: skip
}
RECIPE_LABELS = {  # what each recipe's augmentation does, for the UI
    "digits": "rotation, shear, zoom, shift and elastic warp",
    "objects": "mirror, zoom and shift",
}


def recipe_for(dataset: str) -> str:
    """The recipe a dataset gets by default: digits for MNIST, objects for everything else."""
    return "digits" if dataset == "mnist" else "objects"


def default_config(dataset: str, recipe: str | None = None, **overrides) -> TrainConfig:
    """TrainConfig for a dataset (`mnist`, `fashion-mnist` or a folder name) with its
    recipe applied, then the given non-None overrides."""
    name = recipe or recipe_for(dataset)
    if name not in RECIPES:
        raise TrainingError(f"unknown recipe {name!r}; use one of {', '.join(RECIPES)}")
    return with_overrides(TrainConfig(**RECIPES[name]), **overrides)


def recipe_of(config: TrainConfig) -> str | None:
    """The recipe whose augmentation settings `config` carries, or None when custom."""
    aug = ("hflip", "rotate_deg", "shear_deg", "scale", "shift", "elastic")
    for name, values in RECIPES.items():
        ref = TrainConfig(**values)
        if all(getattr(config, k) == getattr(ref, k) for k in aug):
            return name
    return None
