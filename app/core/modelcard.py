"""The model card: everything needed to rebuild, use and judge a model, and the one
validation of every field a card file can hold (type and range, naming the field)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from app import __version__
from app.core import fields
from app.core.calibration import T_MAX, T_MIN
from app.core.models import ARCHITECTURES, InputSpec

CARD_FORMAT = 1
MAX_CLASSES = 100_000
MAX_CLASS_NAME = 200  # characters


class ModelFileError(Exception):
    """A model file that cannot be used; str() is a user-readable message."""


@dataclass
class ModelCard:
    """Everything needed to rebuild, use and judge a model."""

    name: str
    arch: str
    classes: list[str]
    input: InputSpec
    dataset: str = ""
    train_samples: int = 0
    command: str = ""
    metrics: dict = field(default_factory=dict)  # e.g. {"test_accuracy": .., "test_split": ..}
    recipe: dict = field(default_factory=dict)
    # A fine-tuned model: its base model, the personal examples per class it learnt
    # from, the replayed data and the before/after comparison (app.core.finetune).
    finetune: dict = field(default_factory=dict)
    created: str = ""
    app_version: str = __version__
    torch_version: str = torch.__version__
    parameters: int = 0
    # Calibration (app.core.recalibration): the temperature that divides the logits before
    # the softmax (None: never calibrated, probabilities are the raw softmax), and the
    # fitted "not sure" / "does not look like" rule (`ood.AbstainRule.to_dict()` without
    # its temperature, which is this card's). Cards written before either existed load
    # with None.
    temperature: float | None = None
    abstain: dict | None = None
    format: int = CARD_FORMAT
    pair: str = ""  # the id shared with the weights file of the same save

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"] = self.input.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "card") -> ModelCard:
        """Builds a card from parsed JSON, checking every field's type and range (the
        one validation of a card; unknown fields are ignored).

        Raises:
            ModelFileError: naming `source` and the field that is wrong.
        """
        if not isinstance(d, dict):
            raise ModelFileError(f"{source}: model card is not a JSON object")
        try:
            fmt = fields.integer(d, "format", 1, 1_000_000, CARD_FORMAT)
            if fmt > CARD_FORMAT:
                raise fields.FieldError(
                    f"format {fmt} is newer than this version of ResNet Studio reads "
                    f"({CARD_FORMAT}); update the app"
                )
            arch = str(fields.text(d, "arch", max_len=100))
            if arch not in ARCHITECTURES:
                raise ModelFileError(
                    f"{source}: unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})"
                )
            card = cls(
                name=str(fields.text(d, "name", "", max_len=1000)),
                arch=arch,
                classes=fields.names(d, "classes", 2, MAX_CLASSES, MAX_CLASS_NAME),
                input=InputSpec.from_dict(d["input"]),
                dataset=str(fields.text(d, "dataset", "")),
                train_samples=fields.integer(d, "train_samples", 0, 10**12, 0),
                command=str(fields.text(d, "command", "")),
                metrics=_checked_metrics(fields.mapping(d, "metrics", {})),
                recipe=_checked_recipe(fields.mapping(d, "recipe", {})),
                finetune=dict(fields.mapping(d, "finetune", {})),
                created=str(fields.text(d, "created", "", max_len=100)),
                app_version=str(fields.text(d, "app_version", "", max_len=100)),
                torch_version=str(fields.text(d, "torch_version", "", max_len=100)),
                parameters=fields.integer(d, "parameters", 0, 10**12, 0),
                temperature=fields.number(d, "temperature", T_MIN, T_MAX, None, allow_none=True),
                abstain=_checked_abstain(d.get("abstain")),
                format=fmt,
                pair=str(fields.text(d, "pair", "", max_len=100)),
            )
        except KeyError as e:
            raise ModelFileError(f"{source}: model card lacks the field {e.args[0]!r}") from None
        except ValueError as e:  # FieldError, and InputSpec's own checks
            raise ModelFileError(f"{source}: invalid model card ({e})") from None
        return card

    def summary(self) -> str:
        acc = self.metrics.get("test_accuracy")
        split = self.metrics.get("test_split") or "test"
        acc_s = f", {acc * 100:.2f}% on {split}" if fields.is_number(acc) else ""
        return f"{self.name} ({self.arch}, {len(self.classes)} classes{acc_s})"


def _checked_metrics(metrics: dict) -> dict:
    """The metrics the app reads or shows must have their type (accuracy in 0..1, loss
    >= 0, or null); other entries are kept as they are."""
    w = "metrics."
    for key in ("test_accuracy", "val_accuracy"):
        fields.number(metrics, key, 0.0, 1.0, None, w, allow_none=True)
    for key in ("test_loss", "final_train_loss"):
        fields.number(metrics, key, 0.0, math.inf, None, w, allow_none=True)
    if metrics.get("epochs_trained") is not None:
        fields.integer(metrics, "epochs_trained", 0, 10**9, where=w)
    for key in ("test_split", "val_split"):
        fields.text(metrics, key, None, w, max_len=10_000, allow_none=True)
    per_class = metrics.get("test_per_class")
    if per_class is not None and not (
        isinstance(per_class, list) and all(fields.is_number(a) and 0 <= a <= 1 for a in per_class)
    ):
        raise fields.FieldError(f"{w}test_per_class must be a list of numbers in 0..1")
    return dict(metrics)


ABSTAIN_SCORES = ("msp", "maxlogit", "energy")  # scores a card can carry (no feature statistics)


def _checked_abstain(rule: object) -> dict | None:
    """The fitted abstain rule: null, or an object with a known logit score, a finite
    threshold and ratios in range."""
    if rule is None:
        return None
    w = "abstain."
    if not isinstance(rule, dict):
        raise fields.FieldError(f"abstain must be an object or null, not {fields.shown(rule)}")
    score = fields.text(rule, "score", where=w, max_len=40)
    if score not in ABSTAIN_SCORES:
        raise fields.FieldError(f"{w}score must be one of {', '.join(ABSTAIN_SCORES)}, not {fields.shown(score)}")
    fields.number(rule, "threshold", -1e30, 1e30, where=w)
    fields.number(rule, "unsure_ratio", 0.0, 1.0, 0.5, w)
    fields.number(rule, "budget", 0.0, 1.0, 0.01, w)
    fields.number(rule, "flagged_val", 0.0, 1.0, 0.0, w)
    fields.integer(rule, "n_val", 0, 10**12, 0, w)
    return {k: v for k, v in rule.items() if k != "temperature"}  # the card's own T counts


def _checked_recipe(recipe: dict) -> dict:
    """The recipe settings that change how the model is used (`flip_tta`) must be
    true/false; the rest is a record of the training run."""
    for key in ("hflip", "augment"):
        if key in recipe:
            fields.boolean(recipe, key, where="recipe.")
    return dict(recipe)
