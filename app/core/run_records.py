"""What a training run keeps: each epoch judged on validation (the best one remembered),
the per-epoch checkpoint and the resume from it, and at the end the best weights judged on
the test data, calibrated and saved with their card.

The half of `Trainer` that writes what outlives the run (`training.py` holds the steps);
a mixin, so that subclasses (fine-tuning, distributed runs) override the same hooks
(`_judge_final`, `_card`, `_evaluate`) as before.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from app.core.checkpoint import Best, restore_training, write_checkpoint
from app.core.config import TrainConfig
from app.core.confusion import shown as shown_confusion
from app.core.data import Dataset
from app.core.ema import WeightEMA
from app.core.evaluation import per_class_accuracy
from app.core.events import EpochEvent, FinishedEvent, FinishStatus
from app.core.modelcard import ModelCard
from app.core.modelio import save_model
from app.core.models import Classifier
from app.core.outcome import run_card, test_metrics
from app.core.recalibration import ModelCalibration, calibrate
from app.core.step import StepPrecision

if TYPE_CHECKING:
    import threading

    from app.core.training import _EpochStats, _Plan


class RunRecords:
    """Epoch ends, the finish, checkpoints and resume of a `Trainer` (see there)."""

    # Set by Trainer (declared for type checkers).
    config: TrainConfig
    model: Classifier | None
    history: list[dict]
    test_data: Dataset | None
    test_metrics: dict
    calibration: ModelCalibration | None
    comparison: dict | None
    out: Path | None
    checkpoint: Path | None
    resume_from: Path | None
    command: str
    _cancel: threading.Event
    _ema: WeightEMA | None
    _opt: torch.optim.Optimizer
    _sched: Any
    _precision: StepPrecision
    _tta: bool
    _rate: float
    _t0: float
    _train_x: torch.Tensor
    _train_y: torch.Tensor
    _data_id: Any
    _resume_state: dict | None
    device: torch.device

    def _eval_model(self) -> nn.Module:
        raise NotImplementedError

    def _evaluate(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int, **opts
    ) -> tuple[float, float, torch.Tensor]:
        raise NotImplementedError

    def _move(self, device: torch.device) -> str:
        raise NotImplementedError

    def _end_of_epoch(self, plan: _Plan, epoch: int, stats: _EpochStats, best: Best) -> EpochEvent:
        """Judges the saved weights (EMA) on validation, remembers the best, checkpoints."""
        cfg = self.config
        n_classes = len(plan.data.classes)
        train_loss = stats.loss / max(stats.n, 1)
        train_acc = stats.correct / max(stats.n, 1)
        judged = self._eval_model()
        opts = dict(autocast=self._precision.dtype, channels_last=cfg.channels_last, tta_flip=self._tta)
        val_loss: float | None
        val_acc: float | None
        if len(plan.val_x):
            val_loss, val_acc, confusion = self._evaluate(judged, plan.val_x, plan.val_y, n_classes, **opts)
        else:  # no validation split: judged on the training data
            _, _, confusion = self._evaluate(judged, self._train_x, self._train_y, n_classes, **opts)
            val_loss, val_acc = None, None
        score = val_acc if val_acc is not None else train_acc
        is_best = cfg.keep_last or score >= best.acc  # keep_last: the last epoch is the one kept
        if is_best:
            best.acc, best.epoch = score, epoch
            best.state = {k: v.detach().cpu().clone() for k, v in judged.state_dict().items()}
        self.history.append(
            {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
             "val_loss": val_loss, "val_acc": val_acc}
        )  # fmt: skip
        self._save_checkpoint(epoch + 1, best)
        epochs_left = cfg.epochs - epoch - 1
        index, drawn = shown_confusion(confusion)  # capped: 10,000 classes are not drawn
        return EpochEvent(
            epoch, cfg.epochs, train_loss, train_acc, val_loss, val_acc,
            per_class_accuracy(confusion), drawn, self._rate, time.perf_counter() - self._t0,
            epochs_left * plan.steps_per_epoch * plan.batch_size / max(self._rate, 1e-9), is_best, index,
        )  # fmt: skip

    def _finish(self, plan: _Plan, best: Best) -> FinishedEvent:
        """Loads the best epoch's weights, judges them on the test data, saves the model."""
        assert self.model is not None
        epochs_done = len(self.history)
        done = epochs_done >= self.config.epochs and not self._cancel.is_set()
        model_path = None
        calibration = None
        if best.epoch is not None:
            self.model.load_state_dict(best.state)
            # Temperature and "not sure" rule from the validation split (never the test data).
            calibration = self.calibration = calibrate(
                self.model, plan.val_x, plan.val_y, self.config, self._tta, plan.border, self._precision.dtype
            )
            self._judge_final(plan)
            if self.out is not None:
                model_path = str(self.save(self.out, plan.n_train, plan.data))
        return FinishedEvent(
            FinishStatus.COMPLETED if done else FinishStatus.STOPPED, epochs_done,
            None if best.epoch is None else best.acc, best.epoch, model_path, time.perf_counter() - self._t0,
            *((calibration.temperature, calibration.after.ece, calibration.before.ece) if calibration else ()),
            comparison=self.comparison,
        )  # fmt: skip

    def _judge_final(self, plan: _Plan) -> None:
        """Judges the final (best) weights on the test data, into `test_metrics`."""
        assert self.model is not None
        if self.test_data is not None:
            t = None if self.calibration is None else self.calibration.temperature
            self.test_metrics = test_metrics(self.model, self.test_data, len(plan.data.classes), self._tta, t)

    def save(self, path: Path, n_train: int, data: Dataset) -> Path:
        """Writes the model (best epoch) with its card."""
        assert self.model is not None
        card = self._card(path, n_train, data)
        model = self.model.to(memory_format=torch.contiguous_format)
        return save_model(path, model, card)

    def _card(self, path: Path, n_train: int, data: Dataset) -> ModelCard:
        """The card saved with the model."""
        card = run_card(path, self.config, self.history, self.test_metrics, n_train, data, self.command)
        return self.calibration.apply(card) if self.calibration is not None else card

    # --- checkpoints ------------------------------------------------------------------

    def _save_checkpoint(self, epoch_done: int, best: Best) -> None:
        if self.checkpoint is None:
            return
        assert self.model is not None
        write_checkpoint(self.checkpoint, {
            "epoch": epoch_done,
            "model": self.model.state_dict(),
            "ema": self._ema.module.state_dict() if self._ema is not None else {},
            "optimizer": self._opt.state_dict(),
            "scheduler": self._sched.state_dict(),
            **best.to_checkpoint(),
            "scaler": self._precision.scaler.state_dict() if self._precision.scaler is not None else {},
            "history": self.history,
            "config": self.config.to_dict(),
            "data": self._data_id,
        })  # fmt: skip

    def _resume(self, plan: _Plan, best: Best) -> int:
        """Restores a checkpoint into the set-up run; returns the epoch to start from."""
        state = self._resume_state
        assert self.model is not None and self.resume_from is not None and state is not None
        restore_training(self.resume_from, state, self.model, self._opt, self._sched, self._ema, plan.steps_per_epoch)
        self.history = list(state.get("history", []))
        best.restore(state)
        self._move(self.device)
        if self._precision.scaler is not None and state.get("scaler"):
            self._precision.scaler.load_state_dict(state["scaler"])  # fp16: the loss scale goes on
        return int(state["epoch"])
