"""Fine-tuning a trained model on the user's own examples ("Personalise").

The run starts from a model file (`init`): its classes keep their rows of the
classifier head, new classes get new rows "imprinted" from their examples (the mean of
their normalised penultimate features, scaled like the old rows; Qi et al. 2018), and a
short run trains the last residual stage and the head on the examples (augmented,
repeated to a fixed share of every epoch) mixed with replay of the base's training data,
so nothing is forgotten. A fifth of each class's examples is held out; at the end the
base and the new model are compared on them and on the base's test split.

`FineTuner` is the core `Trainer` with another starting model, frozen early layers and
a final comparison: the CLI and the GUI's trainer thread drive it like any run.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from app.core.config import TrainConfig, TrainingError
from app.core.data import Dataset
from app.core.distill import DistilledLoss, entry_block, teacher_tail
from app.core.modelio import ModelCard, load_model
from app.core.models import Classifier, CompactResNet
from app.core.personal import held_out_mask
from app.core.replay import load_replay, mixed, relabel, split_flags
from app.core.training import Trainer, _Plan

# --- the model ---------------------------------------------------------------------------------


def head_of(model: Classifier) -> nn.Linear:
    """The classifier head (both architectures' nets call it `fc`)."""
    fc = getattr(model.net, "fc", None)
    if not isinstance(fc, nn.Linear):
        raise TrainingError(f"{model.arch}: no linear classifier head to extend")
    return fc


def stages(model: Classifier) -> list[nn.Module]:
    """The residual stages, input side first: torchvision's layer1..4, or the
    CompactResNet's blocks grouped where a projection shortcut starts a stage."""
    net = model.net
    if isinstance(net, CompactResNet):
        groups: list[list[nn.Module]] = []
        for block in net.layers:
            if not groups or not isinstance(block.shortcut, nn.Identity):
                groups.append([])
            groups[-1].append(block)
        return [nn.Sequential(*g) for g in groups]
    return [getattr(net, f"layer{i}") for i in range(1, 5) if hasattr(net, f"layer{i}")]


def trainable_modules(model: Classifier, last_stages: int) -> list[nn.Module]:
    """The modules a fine-tune trains: the last `last_stages` stages and the head
    (everything when `last_stages` is 0)."""
    if last_stages <= 0:
        return [model]
    return [*stages(model)[-last_stages:], head_of(model)]


def freeze_except(model: Classifier, trainable: list[nn.Module]) -> list[nn.Module]:
    """Freezes every parameter outside `trainable`; returns the frozen modules that hold
    BatchNorm statistics (kept in eval mode while training, so they do not drift)."""
    keep = {id(p) for m in trainable for p in m.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    inside = {id(sub) for m in trainable for sub in m.modules()}
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and id(m) not in inside]


@torch.inference_mode()
def penultimate(model: Classifier, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The head's input features (N, D) of uint8 images, in eval mode."""
    fc = head_of(model)
    captured: list[torch.Tensor] = []
    hook = fc.register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach().float()))
    try:
        model.eval()
        device = next(model.parameters()).device
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size].to(device).float().div_(255))
    finally:
        hook.remove()
    return torch.cat(captured).cpu()


def extend_head(model: Classifier, n_total: int, images: torch.Tensor, labels: torch.Tensor) -> Classifier:
    """A copy of `model` with `n_total` outputs: old rows kept, each new class's row
    imprinted from its examples (`labels` index the new classes from the old count on):
    the mean normalised feature, scaled to the old rows' mean norm, with their mean bias.
    A class without examples gets the mean old row's norm along a random direction."""
    model = copy.deepcopy(model)
    fc = head_of(model)
    n_old = fc.out_features
    if n_total == n_old:
        return model
    feats = nn.functional.normalize(penultimate(model, images), dim=1) if len(images) else None
    w_old, b_old = fc.weight.detach(), fc.bias.detach()
    scale = float(w_old.norm(dim=1).mean())
    rows = []
    g = torch.Generator().manual_seed(0)
    for c in range(n_old, n_total):
        members = (labels == c) if feats is not None else None
        if members is not None and bool(members.any()):
            direction = feats[members].mean(0)
        else:
            direction = torch.randn(w_old.shape[1], generator=g)
        rows.append(nn.functional.normalize(direction, dim=0) * scale)
    new = nn.Linear(fc.in_features, n_total)
    with torch.no_grad():
        new.weight.copy_(torch.cat([w_old, torch.stack(rows).to(w_old)]))
        new.bias.copy_(torch.cat([b_old, b_old.mean().repeat(n_total - n_old)]))
    model.net.fc = new.to(w_old.device)
    model.num_classes = n_total
    return model


# --- the comparison ----------------------------------------------------------------------------


@dataclass
class Comparison:
    """Before (base model) and after (fine-tuned) accuracies; None where not measured."""

    held_out_n: int = 0
    held_out_before: float | None = None
    held_out_after: float | None = None
    per_class: dict[str, dict] = field(default_factory=dict)  # class -> n, before, after
    test_split: str = ""
    test_before: float | None = None
    test_after: float | None = None
    test_before_from_card: bool = False  # test_before read off the base's card, not re-measured

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""

        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.1%}"

        out = []
        if self.held_out_n:
            out.append(f"held-out examples ({self.held_out_n}): {pct(self.held_out_before)} -> {pct(self.held_out_after)}")
        else:
            out.append("held-out examples: none (add 5 or more examples of a class to judge it)")
        if self.test_split:
            source = " (before: as the base's card records it)" if self.test_before_from_card else ""
            out.append(f"{self.test_split}: {pct(self.test_before)} -> {pct(self.test_after)}{source}")
        return out


@torch.inference_mode()
def predictions(model: nn.Module, images: torch.Tensor, batch_size: int = 500, autocast: torch.dtype | None = None) -> torch.Tensor:
    """The predicted class of each uint8 image, channels_last and (with `autocast`, as the
    trainer judges) in reduced precision: 3x faster on a CPU with bf16 (10k MNIST digits
    in 6 s instead of 20 s on 2 shared cores)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        xb = images[start : start + batch_size].to(device).float().div_(255).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            out.append(model(xb).float().argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def _accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float | None:
    return float((pred == labels).float().mean()) if len(labels) else None


# --- the run -------------------------------------------------------------------------------------


class FineTuner(Trainer):
    """A `Trainer` that starts from a trained model and learns the user's examples.

    Args:
        config: the run's settings (see `recipes.FINETUNE`); `arch` must be the base's.
        init: the base model file.
        personal: the user's examples (any class names; the base's classes keep theirs).
        replay: the base's training data to mix in (its classes matched by name), or None.
        base_test: the base's test split, judged before and after, or None.
        out, checkpoint, command: as for `Trainer`.
    """

    def __init__(
        self,
        config: TrainConfig,
        init: str | os.PathLike,
        personal: Dataset,
        replay: Dataset | None = None,
        base_test: Dataset | None = None,
        out: str | os.PathLike | None = None,
        checkpoint: str | os.PathLike | None = None,
        command: str = "",
    ) -> None:
        self.init = Path(init)
        base, card = load_model(self.init)
        self.base, self.base_card = base, card
        if config.arch != card.arch:
            raise TrainingError(f"a fine-tune keeps the base's architecture ({card.arch}), not {config.arch}")
        if personal.spec != card.input:
            raise TrainingError(f"{personal.name}: examples prepared for another input than {card.name}'s")
        classes = list(card.classes) + [c for c in personal.classes if c not in card.classes]
        personal = relabel(personal, classes)
        held = torch.tensor(held_out_mask(personal.paths, personal.labels.tolist()) if personal.paths
                            else [False] * len(personal), dtype=torch.bool)  # fmt: skip
        self.personal_train = personal.subset(~held)
        self.held_out = personal.subset(held)
        if len(self.personal_train) == 0:
            raise TrainingError(f"{personal.name}: no examples to learn from")
        replay = relabel(replay, classes) if replay is not None else None
        self.replay = replay
        self.classes = classes
        self.comparison_test = relabel(base_test, list(card.classes)) if base_test is not None else None
        data, self._replayed = mixed(self.personal_train, replay, config)
        self._distill: DistilledLoss | None = None
        super().__init__(config, data, out=out, checkpoint=checkpoint, command=command)

    # --- Trainer hooks ----------------------------------------------------------------------

    def _initial_model(self, data: Dataset) -> Classifier:
        n_old = len(self.base_card.classes)
        new = self.personal_train.labels >= n_old
        model = extend_head(self.base, len(self.classes), self.personal_train.images[new], self.personal_train.labels[new])
        self._frozen_norms = freeze_except(model, trainable_modules(model, self.config.train_last_stages))
        return model

    def _setup(self) -> _Plan:
        plan = super()._setup()
        cfg = self.config
        if cfg.distill_weight > 0 and bool(self._replayed.any()):
            assert self.model is not None
            teacher = teacher_tail(self.base, cfg.train_last_stages).to(self.device)
            if cfg.channels_last:
                teacher = teacher.to(memory_format=torch.channels_last)
            self._distill = DistilledLoss(self._criterion, teacher, cfg.distill_weight, cfg.distill_temperature)
            self._criterion = self._distill
            self._entry = entry_block(self.model, cfg.train_last_stages)
            self._replay_rows = split_flags(self.data, self._replayed, cfg)
        return plan

    def _train_step(self, plan: _Plan, idx: torch.Tensor, rows: slice, epoch: int, step: int) -> tuple[float, int]:
        if self._distill is None:
            return super()._train_step(plan, idx, rows, epoch, step)
        with self._distill.watching(self._entry, self._replay_rows[idx.cpu()]):
            return super()._train_step(plan, idx, rows, epoch, step)

    def _train_mode(self) -> None:
        super()._train_mode()
        assert self.model is not None
        norms = self.model.modules() if self.config.freeze_norm_stats else self._frozen_norms
        for m in norms:
            if isinstance(m, nn.BatchNorm2d):
                m.eval()

    def _judge_final(self, plan: _Plan) -> None:
        super()._judge_final(plan)
        assert self.model is not None
        c = Comparison(held_out_n=len(self.held_out))
        base = self.base.to(self.device).to(memory_format=torch.channels_last)
        fast = dict(autocast=self._precision.dtype)  # both judged alike, as the trainer judges
        if len(self.held_out):
            before = predictions(base, self.held_out.images, **fast)
            after = predictions(self.model, self.held_out.images, **fast)
            y = self.held_out.labels
            c.held_out_before, c.held_out_after = _accuracy(before, y), _accuracy(after, y)
            for k in sorted(set(y.tolist())):
                m = y == k
                c.per_class[self.classes[k]] = {
                    "n": int(m.sum()), "before": _accuracy(before[m], y[m]), "after": _accuracy(after[m], y[m]),
                }  # fmt: skip
        test = self.comparison_test
        if test is not None and len(test):
            c.test_split = f"{test.name} test ({len(test)} images)"
            c.test_before = self._recorded_test_accuracy(c.test_split)
            c.test_before_from_card = c.test_before is not None
            if c.test_before is None:
                c.test_before = _accuracy(predictions(base, test.images, **fast), test.labels)
            c.test_after = _accuracy(predictions(self.model, test.images, **fast), test.labels)
        self.comparison = c.to_dict()

    def _recorded_test_accuracy(self, split: str) -> float | None:
        """The base's test accuracy from its card when the card measured it on `split`
        the way the comparison judges (one view, no mirror): 10k forward passes saved.
        None when the card has none for that split, or judged the model with a mirror."""
        from app.core.predictor import flip_tta

        m = self.base_card.metrics
        recorded = m.get("test_accuracy")
        if m.get("test_split") != split or not isinstance(recorded, (int, float)) or flip_tta(self.base_card.recipe or {}):
            return None
        return float(recorded)

    def _card(self, path: Path, n_train: int, data: Dataset) -> ModelCard:
        card = super()._card(path, n_train, data)
        counts = torch.bincount(self.personal_train.labels, minlength=len(self.classes)).tolist()
        card.classes = list(self.classes)
        card.dataset = f"{self.base_card.dataset} + personal examples ({self.personal_train.source})"
        if self.comparison and self.comparison.get("test_after") is not None:
            card.metrics.update(test_accuracy=self.comparison["test_after"], test_split=self.comparison["test_split"])
            card.metrics.pop("test_per_class", None)
            card.metrics.pop("test_loss", None)
        card.finetune = {
            "base_model": self.base_card.name,
            "base_path": str(self.init),
            "examples_per_class": {self.classes[i]: n for i, n in enumerate(counts) if n},
            "held_out_per_class": {k: v["n"] for k, v in (self.comparison or {}).get("per_class", {}).items()},
            "new_classes": self.classes[len(self.base_card.classes):],
            "replay": f"{self.replay.name} ({min(len(self.replay), self.config.replay_size)} images)" if self.replay else "none",
            "comparison": self.comparison or {},
        }  # fmt: skip
        return card


# --- building a run ------------------------------------------------------------------------------


def finetune_config(card: ModelCard, **overrides) -> TrainConfig:
    """The short fine-tune's settings for a base model: its recipe's augmentation (from
    its card), its architecture, `recipes.FINETUNE`, then the non-None overrides."""
    from app.core.recipes import default_config, recipe_for, recipe_of

    recipe = recipe_of(TrainConfig.from_dict(card.recipe)) if card.recipe else None
    if recipe is None:
        recipe = recipe_for("mnist" if card.input.mode == "digit" else card.dataset)
    overrides.setdefault("arch", card.arch)
    overrides["arch"] = overrides["arch"] or card.arch
    return default_config(card.dataset, recipe, finetune=True, **overrides)


def build_finetuner(
    init: str | os.PathLike,
    examples: str | os.PathLike,
    replay: str | None,
    replay_dir: str | None = None,
    out: str | os.PathLike | None = None,
    command: str = "",
    **overrides,
) -> FineTuner:
    """Loads the base model's card, the examples and the replay data, and sets up the run
    (the CLI's `train --init` and the GUI's "Personalise").

    Raises:
        ModelFileError, DataError, TrainingError: with a user-readable message.
    """
    from app.core.modelio import read_card
    from app.core.personal import load_examples

    card = read_card(init)
    config = finetune_config(card, **overrides)
    config.validate()
    personal = load_examples(examples, card.input)
    train, test = load_replay(replay, replay_dir, card)
    return FineTuner(config, init, personal, train, test, out=out, command=command)
