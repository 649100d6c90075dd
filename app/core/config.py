"""The hyperparameters of a training run: one typed, frozen dataclass (airbench's `hyp`,
typed), its validation, and the error every training problem raises. Imports no torch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

PRECISIONS = ("auto", "fp32", "bf16")
ANNEALS = ("cos", "linear")
MAX_SEED = 2**32 - 1  # every generator is seeded from seed*1000+epoch or a hash: well in range
MAX_THREADS = 1024


class TrainingError(Exception):
    """Training cannot go on (bad settings, diverged loss); str() is user-readable."""


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
    # shape of the one-cycle ramps: "cos" (cosine up and down) or "linear" (a triangle,
    # airbench's; reaches low lr sooner, so a short schedule passes a target earlier)
    anneal: str = "cos"
    augment: bool = True
    rotate_deg: float = 12.0  # random affine: rotation range (+/-)
    scale: float = 0.12  # zoom range (+/-, relative)
    shear_deg: float = 10.0
    shift: float = 0.10  # translation range (+/-, fraction of the image)
    elastic: float = 1.0  # smooth elastic warp amplitude, px (Simard et al. 2003); 0 = off
    hflip: bool = False  # random horizontal mirror: clothing and photos, never digits
    # random erasing (Zhong et al. 2017): this share of the images gets one rectangle
    # (2-40% of the area, aspect 0.3-3.3) filled with noise; 0 = off
    erase: float = 0.0
    ema_decay: float = 0.998  # EMA of weights, used for eval and saving (+0.16% on MNIST 5k); 0 = off
    # Weight of the outlier-exposure loss (app.core.exposure): each step also shows as many
    # synthetic non-class images with a uniform target; 0 = off (it doubles a step's work).
    outlier_exposure: float = 0.0
    val_fraction: float = 0.1  # carved out of the training data for checkpoint choice
    # Keep the last epoch's weights (a fixed schedule) instead of the best validation
    # epoch's: 500 validation digits move in steps of 0.2%, too coarse to pick among
    # epochs that differ by less; validation then only calibrates.
    keep_last: bool = False
    seed: int = 0  # model init, data split, shuffling and augmentation all derive from it
    # The validation split's seed when it must differ from `seed` (None = `seed`): runs
    # that differ only in init, shuffling and augmentation keep the same held-out digits
    # (an ensemble's members, and a model distilled from them, never see its validation).
    split_seed: int | None = None
    device: str = "auto"
    precision: str = "auto"  # auto: fp32 or bf16, whichever measured faster here (precision.py)
    channels_last: bool = True
    # torch intra-op threads; 0 = leave as is. Process-wide, so the process owner (CLI
    # entry, GUI thread) applies it, never the trainer: a worker must not change global
    # torch state under another run.
    threads: int = 0
    limit: int = 0  # use only the first N training samples (quick runs); 0 = all
    # Fine-tunes (`--init MODEL`, app.core.finetune); ignored by runs from scratch.
    train_last_stages: int = 0  # only the last N residual stages (+ the head) learn; 0 = all
    replay_size: int = 4000  # images of the base's training data mixed into the examples
    personal_share: float = 0.25  # share of each epoch that is the user's examples (repeated)
    freeze_norm_stats: bool = False  # BatchNorm keeps its running statistics (eval mode)
    # Learning without Forgetting (app.core.distill): weight of the pull toward the base's
    # own softened outputs on the replayed images; 0 = off. Its temperature:
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    # A run from scratch distils from these model files' mean logits (app.core.teachers),
    # at the weight and temperature above; () = none.
    teachers: tuple[str, ...] = ()

    def validate(self) -> None:
        """Raises TrainingError naming the first setting that is out of range."""
        # Imported here: the models import torch (seconds), and the CLI's parser and the
        # GUI's form read configs and recipes before anything needs torch.
        from app.core.models import ARCHITECTURES

        checks = [
            (self.arch in ARCHITECTURES, f"unknown architecture {self.arch!r}"),
            (1 <= self.epochs <= 1000, f"epochs must be 1..1000, not {self.epochs}"),
            (1 <= self.batch_size <= 8192, f"batch size must be 1..8192, not {self.batch_size}"),
            (0 < self.lr <= 10 and math.isfinite(self.lr), f"learning rate must be in (0, 10], not {self.lr}"),
            (0 <= self.weight_decay < 1, f"weight decay must be in [0, 1), not {self.weight_decay}"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (0 <= self.erase <= 1, f"erase must be in [0, 1], not {self.erase}"),
            (0 <= self.val_fraction < 0.9, f"validation fraction must be in [0, 0.9), not {self.val_fraction}"),
            (self.precision in PRECISIONS, "precision must be auto, fp32 or bf16"),
            (self.anneal in ANNEALS, f"anneal must be one of {', '.join(ANNEALS)}, not {self.anneal!r}"),
            (0 <= self.warmup_fraction < 1, f"warmup fraction must be in [0, 1), not {self.warmup_fraction}"),
            (self.limit >= 0, "limit must be >= 0"),
            (0 <= self.threads <= MAX_THREADS, f"threads must be 0 (torch's default) to {MAX_THREADS}, not {self.threads}"),
            (0 <= self.seed <= MAX_SEED, f"seed must be a whole number from 0 to {MAX_SEED}, not {self.seed}"),
            (self.split_seed is None or 0 <= self.split_seed <= MAX_SEED,
             f"split seed must be a whole number from 0 to {MAX_SEED}, not {self.split_seed}"),
            (0 <= self.ema_decay < 1, "EMA decay must be in [0, 1)"),
            (0 <= self.outlier_exposure <= 10, f"outlier exposure must be 0..10, not {self.outlier_exposure}"),
            (0 <= self.train_last_stages <= 10, "train_last_stages must be 0..10"),
            (0 <= self.replay_size <= 10**7, "replay size must be >= 0"),
            (0 < self.personal_share <= 1, "personal share must be in (0, 1]"),
            (0 <= self.distill_weight <= 100, f"distillation weight must be 0..100, not {self.distill_weight}"),
            (0 < self.distill_temperature <= 20, f"distillation temperature must be in (0, 20], not {self.distill_temperature}"),
            (not self.teachers or self.distill_weight > 0, "teachers need a distillation weight above 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise TrainingError(msg)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A config from a dict (a card's recipe, a checkpoint); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in d.items() if k in names}
        if isinstance(kept.get("teachers"), list):  # JSON has no tuples
            kept["teachers"] = tuple(kept["teachers"])
        return cls(**kept)


def with_overrides(config: TrainConfig, **kw) -> TrainConfig:
    """A copy of `config` with the given non-None fields replaced."""
    return replace(config, **{k: v for k, v in kw.items() if v is not None})
