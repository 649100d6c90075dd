"""The trainer: a plain-Python generator of typed events, driven by the CLI or a QThread.

Fast by design (see bench/): the dataset lives on the device as one uint8 tensor, batches
are index slices, augmentation is one batched `grid_sample` on the device, convs run
channels_last, and precision `auto` uses bf16 autocast (fp32 master weights) where it
measured faster on this machine (`precision.py`).

Shaped like torchvision's reference `train.py`: `_setup`, `_train_one_epoch` (a generator),
`_end_of_epoch` (evaluate, best, checkpoint) and `_finish` (test, save); the last two, with
checkpoints and resume, live in `run_records.py` (what a run keeps). Every epoch ends with
an atomic checkpoint; resuming reproduces an uninterrupted run exactly, because all
randomness comes from local generators seeded by the run's seed (model init; shuffle per
(seed, epoch); augmentation per (seed, epoch, step)). The trainer never touches torch's
global state (RNG, threads): other threads' runs cannot disturb it, nor it them.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from app.core.augment import augment_batch, step_generator
from app.core.checkpoint import (
    Best,
    data_identity,
    read_checkpoint,
)
from app.core.config import TrainConfig, TrainingError
from app.core.control import RunControl
from app.core.data import Dataset
from app.core.devices import is_device_failure, resolve_device
from app.core.ema import WeightEMA
from app.core.evaluation import evaluate
from app.core.events import (
    Event,
    PauseCause,
    StateEvent,
    StepEvent,
    TrainState,
)
from app.core.exposure import OUTLIER, OutlierExposureLoss, outlier_pool, step_outliers
from app.core.fileio import check_writable
from app.core.modelio import load_start_model
from app.core.models import Classifier, build_model, init_weights
from app.core.precision import Choice, choose_for_training
from app.core.predictor import flip_tta
from app.core.recalibration import ModelCalibration, training_split
from app.core.run_records import RunRecords
from app.core.runlock import run_files
from app.core.step import NonFiniteLoss, StepPrecision


@dataclass
class _Plan:
    """The shape of a run, fixed by `_setup`."""

    data: Dataset  # after `limit`
    val_x: torch.Tensor
    val_y: torch.Tensor
    n_train: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    border: bool  # augmentation pads with edge pixels (photos), not zeros (ink on paper)


@dataclass
class _EpochStats:
    loss: float = 0.0
    correct: int = 0
    n: int = 0


class Trainer(RunControl, RunRecords):
    """Trains a model on a `Dataset`, yielding events from `run()`.

    Args:
        config: the run's hyperparameters.
        data: training data (validation is carved out of it, `config.val_fraction`).
        out: model file to write at the end (best validation epoch), or None.
        checkpoint: where to write the per-epoch checkpoint (default: out + ".ckpt").
        resume: a checkpoint to continue from.
        command: the command line recorded in the model card.
        test_data: judged once at the end; its metrics go into the model card.
        start_from: a model file whose weights the run starts from instead of new ones.
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
        start_from: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
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
        for target, what in ((self.out, "model file"), (self.checkpoint, "checkpoint")):
            if target is not None:  # said now, not after the first epoch
                try:
                    check_writable(target, what)
                except OSError as e:
                    raise TrainingError(e.strerror or str(e)) from None
        self.command = command
        # start_from's weights, checked now (a ModelFileError before the run, not after its set-up)
        self._start = load_start_model(start_from, config.arch, data.classes, data.spec) if start_from else None
        # Every checkpoint records the data; a resume is checked against it (and every setting) now.
        self._data_id = data_identity(data) if (self.checkpoint or self.resume_from) else None
        self._resume_state = read_checkpoint(self.resume_from, config, self._data_id) if resume else None
        self.history: list[dict] = []
        self.model: Classifier | None = None
        self.test_metrics: dict = {}
        self.comparison: dict | None = None  # before/after figures of a fine-tune (finetune.py)
        self.calibration: ModelCalibration | None = None  # fitted at the end of the run
        self._outliers: torch.Tensor | None = None  # outlier exposure's pool (app.core.exposure)
        self._ema: WeightEMA | None = None
        self._tta = flip_tta(config.to_dict())  # mirror-trained: judged on both views
        self.device = resolve_device(config.device)
        self._choices: dict[str, Choice] = {}
        self.precision_note = ""  # which precision the run uses, and why

    # --- the weights that count ------------------------------------------------------------

    def _eval_model(self) -> nn.Module:
        """The model judged and saved: the EMA when enabled, else the live one."""
        assert self.model is not None
        return self._ema.module if self._ema is not None else self.model

    def eval_state(self) -> dict:
        """The weights to evaluate and save: the EMA when enabled, else the live ones."""
        return self._eval_model().state_dict()

    def evaluate_now(self, data: Dataset, tta_flip: bool | None = None) -> tuple[float, float, torch.Tensor]:
        """(loss, accuracy, confusion) on `data` of the weights it would save now, run as the
        app runs them (flip TTA unless `tta_flip` says otherwise); the run is not touched."""
        assert self.model is not None, "no model before run() has started"
        # The EMA is never trained; the live model is copied (evaluate() sets eval mode).
        model = self._ema.module if self._ema is not None else copy.deepcopy(self.model)
        return evaluate(
            model, data.images, data.labels, len(data.classes), autocast=self._precision.dtype,
            channels_last=self.config.channels_last, tta_flip=self._tta if tta_flip is None else tta_flip,
        )  # fmt: skip

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        """Trains, yielding events; the final event is a FinishedEvent.

        The run holds `OUT.lock` (see `app.core.runlock`) from start to end, and first
        removes the temp files that a killed run left beside its files.

        Raises:
            TrainingError: diverged loss (NaN/inf), unwritable checkpoint/model, bad
                resume, another run writing the same model.
        """
        with run_files(self.out, self.checkpoint):
            yield from self._run()

    def _run(self) -> Iterator[Event]:
        plan = self._setup()
        best = Best()
        start_epoch = self._resume(plan, best) if self.resume_from is not None else 0
        self._net = self._wrap(self.model)
        self._t0 = time.perf_counter()
        self._rate = 0.0  # images/s, smoothed
        yield StateEvent(
            TrainState.RUNNING,
            f"training {self.config.arch} on {plan.n_train} images ({plan.data.name}); {self.precision_note}",
            str(self.device),
        )
        for epoch in range(start_epoch, self.config.epochs):
            if self._cancel.is_set():
                break
            stats = yield from self._train_one_epoch(plan, epoch)
            if stats is None:
                break  # a partial epoch is not evaluated or saved; the checkpoint stands
            yield self._end_of_epoch(plan, epoch, stats, best)
        yield self._finish(plan, best)

    def _setup(self) -> _Plan:
        """Data split, model (seeded locally), optimizer, schedule and EMA."""
        cfg = self.config
        data = self.data
        data, train_idx, val_idx = training_split(data, cfg)
        model = self._initial_model(data)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._ema = WeightEMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self._train_x, self._train_y = data.images[train_idx], data.labels[train_idx]
        n_train = len(train_idx)
        bs = min(cfg.batch_size, n_train)
        steps = max(1, n_train // bs)  # drop the ragged last batch (BN stability)

        decay, no_decay = [], []
        for p in (p for p in model.parameters() if p.requires_grad):  # frozen layers: not trained
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BN and biases
        self._opt = torch.optim.SGD(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, momentum=0.9, nesterov=True,
        )  # fmt: skip
        self._sched = torch.optim.lr_scheduler.OneCycleLR(
            self._opt, max_lr=cfg.lr, total_steps=steps * cfg.epochs, pct_start=cfg.warmup_fraction,
            div_factor=20.0, final_div_factor=200.0, anneal_strategy=cfg.anneal,
        )  # fmt: skip
        self._criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self._batch_size = bs
        self._outliers = None
        if cfg.outlier_exposure > 0:  # "none of these" examples (app.core.exposure)
            self._outliers = outlier_pool(
                n_train, data.spec, cfg.seed, self._train_x, self._train_y, data.classes
            )
            self._criterion = OutlierExposureLoss(cfg.outlier_exposure, cfg.label_smoothing)
        self._move(self.device)
        return _Plan(
            data, data.images[val_idx], data.labels[val_idx], n_train, bs, steps, steps * cfg.epochs,
            data.spec.mode == "resize",
        )  # fmt: skip

    def _initial_model(self, data: Dataset) -> Classifier:
        """New, seeded weights, or `start_from`'s (a fine-tune: `app.core.finetune`)."""
        if self._start is not None:
            return copy.deepcopy(self._start)
        model = build_model(self.config.arch, len(data.classes), data.spec)
        init_weights(model, torch.Generator().manual_seed(self.config.seed))
        return model

    def _train_mode(self) -> None:
        """Training mode for an epoch (a fine-tune keeps frozen layers in eval mode)."""
        assert self.model is not None
        self.model.train()

    def _train_one_epoch(self, plan: _Plan, epoch: int) -> Iterator[Event]:
        """Runs the steps of `epoch`, yielding step and state events. Returns the epoch's
        running loss/accuracy, or None when the run was cancelled part-way."""
        cfg = self.config
        self._train_mode()
        perm = torch.randperm(plan.n_train, generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        stats = _EpochStats()
        step = 0
        while step < plan.steps_per_epoch:
            yield from self._poll_controls()
            if self._cancel.is_set():
                return None
            ts = time.perf_counter()
            idx, rows = self._batch(perm, step, plan)
            idx = idx.to(self.device)
            try:
                loss, correct = self._train_step(plan, idx, rows, epoch, step)
            except RuntimeError as e:
                if not is_device_failure(e):
                    raise
                yield self._device_problem(e, epoch, step)
                continue  # the same step runs again once resumed, with the same draws
            self._sched.step()
            if self._ema is not None:
                self._ema.update_parameters(self.model)
            n = len(idx)
            stats.loss += loss * n
            stats.correct += correct
            stats.n += n
            dt = time.perf_counter() - ts
            n_all = plan.batch_size  # every process's images: the run's speed
            self._rate = n_all / dt if self._rate == 0 else 0.9 * self._rate + 0.1 * n_all / dt
            gstep = epoch * plan.steps_per_epoch + step
            remaining = plan.total_steps - gstep - 1
            yield StepEvent(
                epoch, step, plan.steps_per_epoch, gstep, plan.total_steps, loss,
                self._sched.get_last_lr()[0], self._rate, remaining * plan.batch_size / max(self._rate, 1e-9),
                time.perf_counter() - self._t0,
            )  # fmt: skip
            step += 1
        return self._reduce_stats(stats)

    def _train_step(self, plan: _Plan, idx: torch.Tensor, rows: slice, epoch: int, step: int) -> tuple[float, int]:
        """Forward, backward and optimizer step on the images at `idx` (`rows` of the
        step's global batch); returns (loss, correct count). Raises what the device
        raises (see `_device_problem`)."""
        cfg = self.config
        assert self.model is not None
        xb = self._train_x[idx].float().div_(255)
        yb = self._train_y[idx]
        if cfg.augment:
            xb = augment_batch(xb, cfg, step_generator(cfg.seed, epoch, step), plan.border, (plan.batch_size, rows))
        n = len(yb)
        if self._outliers is not None:  # as many outliers, drawn and augmented per step
            gen = step_generator(-1 - cfg.seed, epoch, step)  # apart from the images' draws
            ob = step_outliers(self._outliers, plan.batch_size, gen)[rows].float().div_(255)
            if cfg.augment:
                ob = augment_batch(ob, cfg, gen, plan.border, (plan.batch_size, rows))
            xb = torch.cat([xb, ob])
            yb = torch.cat([yb, torch.full((n,), OUTLIER, dtype=yb.dtype, device=yb.device)])
        if cfg.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        try:
            loss_value, out = self._precision.train_step(
                self._net, xb, yb, self._criterion, self._opt, self._loss_weight(len(idx), plan)
            )
        except NonFiniteLoss as e:
            raise TrainingError(
                f"the loss became {e.value} at epoch {epoch + 1}, step {step + 1}: "
                f"training diverged. Try a lower learning rate (now {cfg.lr:g}). "
                "The last good checkpoint is kept."
            ) from None
        with torch.no_grad():
            correct = int((out[:n].argmax(1) == yb[:n]).sum())
        return loss_value, correct

    def _device_problem(self, e: RuntimeError, epoch: int, step: int) -> StateEvent:
        """Out of memory or a lost GPU: pause with progress intact (switch device, resume)."""
        self._opt.zero_grad(set_to_none=True)
        self.pause(PauseCause.DEVICE_PROBLEM)
        return StateEvent(
            TrainState.PROBLEM,
            f"{self.device} failed at epoch {epoch + 1}, step {step + 1}: {str(e)[:200]}. "
            "Training is paused with its progress kept: switch to the CPU (or lower the "
            "batch size and restart) and resume.",
            str(self.device),
        )

    # --- what a distributed run changes (see distributed.DistributedTrainer) ---------------

    def _wrap(self, model: nn.Module) -> nn.Module:
        """The module the training steps call (DDP in a distributed run)."""
        return model

    def _batch(self, perm: torch.Tensor, step: int, plan: _Plan) -> tuple[torch.Tensor, slice]:
        """The indices this process trains on at `step`, and their rows of the global batch."""
        return perm[step * plan.batch_size : (step + 1) * plan.batch_size], slice(None)

    def _loss_weight(self, n: int, plan: _Plan) -> float:
        """Weight of this process's mean loss in the gradient (1 for one process)."""
        return 1.0

    def _reduce_stats(self, stats: _EpochStats) -> _EpochStats:
        """The epoch's loss and accuracy over every process's images."""
        return stats

    def _evaluate(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int, **opts
    ) -> tuple[float, float, torch.Tensor]:
        """`evaluation.evaluate`; a distributed run shares the images out."""
        return evaluate(model, images, labels, num_classes, **opts)

    # --- devices ------------------------------------------------------------------

    def _choose_precision(self, device: torch.device) -> Choice:
        """fp32 or bf16/fp16 on `device`: set by the config, or measured on a batch of the
        run's images (a distributed run measures on rank 0 and shares the choice)."""
        cfg = self.config
        xb = self._train_x[: self._batch_size].float().div_(255)
        if cfg.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return choose_for_training(
            cfg.precision, self.model, xb, self._train_y[: self._batch_size], self._criterion, cfg.arch, device
        )

    def _move(self, device: torch.device) -> str:
        """Moves model, optimizer state, EMA and data to `device`; picks its precision."""
        self.device = device
        assert self.model is not None
        self.model.to(device)
        for state in self._opt.state.values():
            for k, v in state.items():
                if isinstance(v, torch.Tensor):
                    state[k] = v.to(device)
        if self._ema is not None:
            self._ema.to(device)
        self._train_x = self._train_x.to(device)
        self._train_y = self._train_y.to(device)
        if self._outliers is not None:
            self._outliers = self._outliers.to(device)
        if str(device) not in self._choices:  # measured (or read from the cache) once per device
            self._choices[str(device)] = self._choose_precision(device)
        choice = self._choices[str(device)]
        current = getattr(self, "_precision", None)
        if current is None or current.device != device or current.dtype != choice.dtype:
            self._precision = StepPrecision(device, choice.dtype)  # kept otherwise: its loss scale
        self.precision_note = choice.note
        return choice.note
