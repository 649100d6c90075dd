"""Calibrating a model: its temperature and its "not sure" / "does not look like" rule,
fitted on its own validation split and written into its card.

The trainer calls `calibrate` at the end of every run; `python -m app calibrate`
(`recalibrate_file`) does the same for a saved model without retraining it. Both use the
split the trainer made (`training_split`: the recipe's `limit`, `val_fraction` and
`seed`), so the images the temperature and the threshold are read off were never trained
on, and no test image is ever used to choose anything.

The rule's threshold is read off the validation images plus `AUGMENTED_COPIES` copies of
each under the model's own training augmentation: validation images share their writers
with the training images, and a threshold read off them alone flags about twice its
budget on new writers' digits (docs/calibration.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from app.core import calibration as cal
from app.core import ood
from app.core.augment import augment_batch
from app.core.config import TrainConfig
from app.core.data import Dataset, split_train_val
from app.core.modelio import ModelCard, ModelFileError, load_model, weights_path, write_card

# The outlier score of the rule. Energy (Liu et al. 2020) needs nothing beyond the logits,
# so a card carries it in a few numbers (Mahalanobis needs class means and a covariance:
# 70 KB for resnet-mnist, 17 MB for ResNet-50); on the shipped model it flags 53% of the
# non-digit set post hoc, 80% after outlier exposure (docs/calibration.md).
ABSTAIN_SCORE = "energy"
AUGMENTED_COPIES = 5  # augmented versions of each validation image, read with it
_AUG_SEED = 100  # seeds of the augmented copies (fixed: recalibrating twice gives one card)
_CHUNK = 500  # images augmented and run at once


def training_split(data: Dataset, config: TrainConfig) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """(data after `limit`, train indices, validation indices), as the Trainer splits them."""
    if config.limit and config.limit < len(data):
        g = torch.Generator().manual_seed(config.seed)
        data = data.subset(torch.randperm(len(data), generator=g)[: config.limit])
    split_seed = config.seed if config.split_seed is None else config.split_seed
    train_idx, val_idx = split_train_val(len(data), config.val_fraction, split_seed)
    return data, train_idx, val_idx


@dataclass(frozen=True)
class ModelCalibration:
    """What was fitted on a model's validation split and how it did there.

    fit: the temperature fit (NLL before/after). rule: the abstain rule (None when the
    threshold could not be read off anything). before/after: calibration of the
    validation images at T = 1 and at the fitted T. n_reference: images the rule's
    threshold was read off (validation + augmented copies).
    """

    fit: cal.TemperatureFit
    rule: ood.AbstainRule | None
    before: cal.CalibrationReport
    after: cal.CalibrationReport
    n_reference: int

    @property
    def temperature(self) -> float:
        return self.fit.temperature

    def card_rule(self) -> dict | None:
        """The rule as the card stores it (its temperature is the card's own)."""
        if self.rule is None or not math.isfinite(self.rule.threshold):
            return None
        d = self.rule.to_dict()
        d.pop("temperature", None)
        return d

    def metrics(self) -> dict:
        """Validation calibration numbers for the card's metrics."""
        return {
            "val_ece": self.after.ece, "val_ece_uncalibrated": self.before.ece,
            "val_nll": self.after.nll, "val_nll_uncalibrated": self.before.nll,
            "calibration_split": f"{self.fit.n} validation images (the training run's seeded split)"
            + (f"; rule read off them and {self.n_reference - self.fit.n} augmented copies"
               if self.n_reference > self.fit.n else ""),
        }  # fmt: skip

    def apply(self, card: ModelCard) -> ModelCard:
        """A copy of `card` carrying this calibration."""
        return dataclasses.replace(
            card, temperature=self.temperature, abstain=self.card_rule(), metrics={**card.metrics, **self.metrics()}
        )

    def summary(self) -> str:
        lines = [
            f"temperature {self.temperature:.4f}, fitted on {self.fit.n} validation images"
            + (" (no finite optimum: smoothed targets)" if self.fit.smoothed else ""),
            f"validation ECE {self.before.ece:.2%} -> {self.after.ece:.2%}, "
            f"NLL {self.before.nll:.4f} -> {self.after.nll:.4f}",
        ]
        if self.rule is not None and math.isfinite(self.rule.threshold):
            lines.append(
                f"'not sure' / 'does not look like' rule: {self.rule.score} > {self.rule.threshold:.4f}; "
                f"flags {self.rule.flagged_val:.2%} of {self.rule.n_val:,} validation images and augmented copies"
            )
        else:
            lines.append("no 'does not look like' rule: no validation images to read a threshold off")
        return "\n".join(lines)


def _logits(model: nn.Module, images: torch.Tensor, tta_flip: bool, autocast: torch.dtype | None = None) -> torch.Tensor:
    """Float logits of uint8 images; with `autocast` the forward passes run in that
    precision, as the trainer judges its epochs (bf16: about 2x faster on 2 CPU cores)."""
    device = next(model.parameters()).device
    with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
        z, _ = ood.logits_and_features(model, images, tta_flip=tta_flip)
    return z.float()


def _augmented_logits(
    model: nn.Module, images: torch.Tensor, config: TrainConfig, tta_flip: bool, border: bool,
    autocast: torch.dtype | None = None,
) -> torch.Tensor:
    """Logits of AUGMENTED_COPIES augmented versions of `images` (seeded, in chunks)."""
    out = []
    for copy in range(AUGMENTED_COPIES):
        gen = torch.Generator().manual_seed(_AUG_SEED + copy)
        for start in range(0, len(images), _CHUNK):
            x = images[start : start + _CHUNK].float().div(255)
            x = augment_batch(x, config, gen, border)
            out.append(_logits(model, x.mul(255).round().clamp(0, 255).to(torch.uint8), tta_flip, autocast))
    return torch.cat(out) if out else torch.zeros(0)


def calibrate(
    model: nn.Module,
    val_images: torch.Tensor,
    val_labels: torch.Tensor,
    config: TrainConfig,
    tta_flip: bool = False,
    border: bool = False,
    autocast: torch.dtype | None = None,
) -> ModelCalibration | None:
    """Fits the temperature and the abstain rule on validation images (uint8, N C H W).

    Returns None when there are no validation images (nothing to fit on).

    Args:
        config: the model's training recipe (its augmentation makes the copies).
        tta_flip: run each image and its mirror, as the app runs the model.
        border: augmentation pads with edge pixels (photos), as in training.
        autocast: run the forward passes in this precision (the trainer passes its own,
            so a run's calibration costs what its evaluation does); None: fp32.
    """
    if len(val_images) == 0:
        return None
    z = _logits(model, val_images, tta_flip, autocast)
    y = val_labels.cpu()
    fit = cal.fit_temperature(z, y)
    ref = z
    if config.augment:
        ref = torch.cat([z, _augmented_logits(model, val_images, config, tta_flip, border, autocast)])
    rule = ood.fit_abstain_rule(ref.numpy(), ABSTAIN_SCORE, fit.temperature)
    return ModelCalibration(
        fit, rule, cal.calibration_report(z, y, 1.0), cal.calibration_report(z, y, fit.temperature), len(ref)
    )


def recalibrate_file(
    path: str | Path, data: Dataset, test: Dataset | None = None
) -> tuple[ModelCard, ModelCalibration]:
    """Calibrates a saved model on the validation split of its own training data and
    rewrites its card atomically (the weights are not touched).

    Args:
        path: the model (NAME.safetensors, NAME.json or NAME).
        data: the training data the model was trained on (the split is made from the
            card's recipe, exactly as the trainer made it).
        test: optional test data; its ECE and NLL are recorded in the card's metrics.

    Raises:
        ModelFileError: the model cannot be read or its card written, the data's classes
            differ from the model's, or its recipe leaves no validation images.
    """
    from app.core.predictor import flip_tta

    model, card = load_model(path)
    if list(data.classes) != list(card.classes):
        raise ModelFileError(f"the data's classes {data.classes} differ from the model's {card.classes}")
    try:
        config = TrainConfig.from_dict(card.recipe)
    except TypeError as e:  # a recipe entry of the wrong kind
        raise ModelFileError(f"{weights_path(path)}: the card's recipe is unusable ({e})") from None
    split_data, _, val_idx = training_split(data, config)
    tta = flip_tta(card.recipe)
    result = calibrate(
        model, split_data.images[val_idx], split_data.labels[val_idx], config, tta, data.spec.mode == "resize"
    )
    if result is None:
        raise ModelFileError(
            f"{weights_path(path)}: its recipe (val_fraction {config.val_fraction:g}) leaves no validation "
            "images to calibrate on"
        )
    new = result.apply(card)
    if test is not None:
        from app.core.outcome import test_metrics

        measured = test_metrics(model, test, len(card.classes), tta, result.temperature)
        new.metrics.update({k: v for k, v in measured.items() if "ece" in k or "nll" in k})
    write_card(path, new)
    return new, result
