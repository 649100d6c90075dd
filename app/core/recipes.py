"""Recipes: dataset-aware defaults for a run, the one table the CLI's `--recipe` and the
Train form's recipe field and suggestions derive from. Imports no torch (the CLI parser
reads it)."""

from __future__ import annotations

from app.core.config import TrainConfig, TrainingError, with_overrides

# The TrainConfig defaults are the digit recipe (handwriting: small rotations, shears and
# elastic warps, never mirrors). Clothing and photos are mirror-symmetric and rigid, so
# their recipe mirrors, zooms and shifts instead (and the model is then judged and used
# with flip TTA, see predictor.flip_tta). Chosen with bench/recipe_sweep.py on Fashion-MNIST
# by validation accuracy, within a 15-minute run on a 2-core CPU: the compact ResNet-20
# for 12 epochs ties resnet-mnist for 8 (val 93.8-94.2%, 2 seeds each) at about half the
# CPU time per epoch; the digit recipe reached 92.2%.
# Tried against it since (docs/performance.md, "Fashion-MNIST, second pass"), not adopted:
#   erase 0.5 (random erasing), 15 epochs   93.27% test: -0.4%, a loser at this length
#   arch resnet-mnist, 12 epochs            93.85% test / 94.37% val in 657 s on 2 threads:
#                                           within seed noise, 1.6x the time per image
#                                           (14 epochs of it: "objects-wide", below)
#   ResNet-14 at 20 px then 28 px, 4 epochs  91.3%: fast (3.8x the seeds' recipe to 91.3%)
#                                           but never 92%
#   ... at 16 px then 28 px, 4 epochs       91.35-91.37% (batch 256 or 128) after 119-123
#                                           CPU-s, ~91.0% at 87-90: never 92% (third pass)
#
# "objects-wide" is the most accurate Fashion-MNIST recipe that fits 15 minutes on 2 CPU
# cores (issue 17's >= 94%; docs/performance.md, "Fashion-MNIST, third pass"): the
# objects augmentation and optimizer on resnet-mnist (32/64/128 channels, 2 blocks a
# stage, ~1.6x ResNet-20's time per image here), 14 one-cycle epochs instead of 12:
#   seed 0  94.21% test / 94.58% val, seed 1  94.17% test / 94.68% val (the last
#   epoch is also the best by validation in both), 1334 / 1379 CPU-s on 1 thread with
#   the per-epoch validation; the final flip-TTA test pass 14.5 CPU-s more; 2 threads run
#   resnet-mnist 1.68x faster than 1 (bench/thread_speedup.py, same run): ~800-830 s wall
#   on 2 quiet cores, the 12-epoch run measured directly 657 s. Not the default: in the GUI
#   (1 training thread) it takes ~22-23 minutes, the objects recipe ~12.
# "digits" is the fastest way to 99.0% on the 5k MNIST digits that bench/speedrun_lab.py
# found (docs/performance.md, "Speed-run lab"), each choice measured there:
#   arch resnet-mnist-14  ResNet-14 (16/32/64, 2 blocks a stage): 843 img per CPU-second
#                         vs 603 for ResNet-20 and 1429 for ResNet-8 (1 thread); ResNet-8
#                         peaked at 98.81% and ResNet-20 (10 epochs) at 98.89%
#   anneal linear, warmup_fraction 0.2   airbench's triangle: the lr is low sooner
#   ema_decay 0.99        a short run needs a short average (0.998 lags ~3 epochs here)
#   epochs 16, batch 128, lr 0.2   99.02% after 44.7k images (~10 epochs, 52 CPU-seconds)
# "digits-40" (the TrainConfig defaults, 40 epochs of resnet-mnist) is what the shipped
# model was trained with: slower, more accurate at the end (99.37% test).
OBJECTS_AUGMENT = dict(hflip=True, rotate_deg=0.0, shear_deg=0.0, scale=0.1, shift=0.1, elastic=0.0)
RECIPES: dict[str, dict] = {
    "digits": dict(
        arch="resnet-mnist-14", epochs=16, batch_size=128, lr=0.2, anneal="linear",
        warmup_fraction=0.2, ema_decay=0.99,
    ),  # fmt: skip
    "digits-40": {},
    "objects": dict(**OBJECTS_AUGMENT, arch="resnet-mnist-small", epochs=12, batch_size=128, lr=0.2),
    "objects-wide": dict(**OBJECTS_AUGMENT, arch="resnet-mnist", epochs=14, batch_size=128, lr=0.2),
}
RECIPE_LABELS = {  # what each recipe's augmentation does, for the UI
    "digits": "rotation, shear, zoom, shift and elastic warp",
    "digits-40": "rotation, shear, zoom, shift and elastic warp",
    "objects": "mirror, zoom and shift",
    "objects-wide": "mirror, zoom and shift",
}
RECIPE_TITLES = {  # what each recipe is for, as the Train form lists it
    "digits": "Handwriting (digits)",
    "digits-40": "Handwriting, 40 epochs (the shipped model)",
    "objects": "Objects and photos",
    "objects-wide": "Objects, most accurate (slower)",
}
# A fine-tune (`train --init MODEL`, "Personalise"): a short run from a trained model over
# the user's examples mixed with replay of the base's training data, so nothing is
# forgotten. Only the last residual stage and the head learn (the early layers' features
# serve old and new classes alike, and a frozen layer costs no backward pass: ~2x the
# images per second); new classes start imprinted (finetune.extend_head). BatchNorm keeps
# the base's statistics (measured neutral on MNIST: 98.86% vs 98.92% updating them, in
# docs/personalise.md). No EMA: over a few hundred steps it would lag behind. A small
# validation split (of the mix) picks the best epoch; the held-out share of the examples
# (personal.held_out_mask) judges the run.
# Forgetting: replay's hard labels alone let a writer whose European 1 looks like MNIST's
# 7 move MNIST digits across that border (shipped model, bench/personalise.py, seeded:
# MNIST test -0.55 points, mean of 3 writer samples; target <= 0.2). Two changes, each
# measured there (docs/personalise.md, all configurations tried listed): Learning without
# Forgetting (app.core.distill) at the usual settings fixed in advance, weight 1 and
# temperature 2, on the replayed images (-0.25 points on its own), and the examples a
# tenth of each epoch instead of a quarter (-0.42 on its own); together -0.13, -0.20 and
# -0.08 points on 3 writer samples, the writer still read 98-99% right. A distilling
# step takes ~1.1-1.2x the time, the smaller share trains 15% fewer images: the same
# CPU time (11.7-12.5 CPU-seconds of training vs 11.8-12.2, 1 thread).
FINETUNE: dict = dict(
    epochs=3, lr=0.01, warmup_fraction=0.2, ema_decay=0.0, val_fraction=0.05,
    train_last_stages=1, replay_size=4000, personal_share=0.1, freeze_norm_stats=True,
    distill_weight=1.0, distill_temperature=2.0,
)  # fmt: skip
# A run that distils from trained models (`train --teacher MODEL ...`, app.core.teachers)
# on top of its recipe. Fixed in advance, not tuned: LwF's weight and temperature above
# (Hinton et al.'s usual T = 2), and the last epoch kept (a fixed schedule: with 500
# validation digits, 0.2% a digit, the best validation epoch is noise; validation then
# only calibrates). Measured on MNIST 5k (docs/performance.md, "A 99.5% digit model?"):
# digits-40 distilled from three digits-40 seeds (99.39/99.36/99.33% test, their mean
# logits 99.37%) reached 99.40% at 1.6x the CPU time (99.39% for 80 epochs, where the
# same 80 epochs without teachers gave 99.43%): within seed noise, not adopted for the
# shipped model; 3 seeds on the same digits make the same mistakes.
TAUGHT: dict = dict(distill_weight=1.0, distill_temperature=2.0, keep_last=True)
AUGMENT_FIELDS = ("hflip", "rotate_deg", "shear_deg", "scale", "shift", "elastic", "erase")


def recipe_for(dataset: str) -> str:
    """The recipe a dataset gets by default: digits for MNIST, objects for everything else."""
    return "digits" if dataset == "mnist" else "objects"


def recipe_config(name: str) -> TrainConfig:
    """The TrainConfig of a recipe, unchanged.

    Raises:
        TrainingError: no recipe of that name.
    """
    if name not in RECIPES:
        raise TrainingError(f"unknown recipe {name!r}; use one of {', '.join(RECIPES)}")
    return TrainConfig(**RECIPES[name])


def default_config(
    dataset: str, recipe: str | None = None, *, finetune: bool = False, taught: bool = False, **overrides
) -> TrainConfig:  # fmt: skip
    """TrainConfig for a dataset (`mnist`, `fashion-mnist` or a folder name) with its
    recipe applied, then (`finetune`) the short fine-tune's settings or (`taught`) a
    distilling run's, then the given non-None overrides."""
    config = recipe_config(recipe or recipe_for(dataset))
    if finetune:
        config = with_overrides(config, **FINETUNE)
    if taught:
        config = with_overrides(config, **TAUGHT)
    return with_overrides(config, **overrides)


def recipe_of(config: TrainConfig) -> str | None:
    """The recipe whose augmentation settings `config` carries, or None when custom; of
    two with the same augmentation (digits, digits-40), the one with config's arch."""
    same = [n for n in RECIPES if all(getattr(config, k) == getattr(recipe_config(n), k) for k in AUGMENT_FIELDS)]
    return next((n for n in same if recipe_config(n).arch == config.arch), same[0] if same else None)


def run_summary(config: TrainConfig) -> str:
    """One log line with what a run trains and how ("run: resnet-mnist, 10 epochs, ...")."""
    from app.core.formatting import percent

    return (
        f"run: {config.arch}, {config.epochs} epochs, batch {config.batch_size}, lr {config.lr:g}, "
        f"augment {(recipe_of(config) or 'custom') if config.augment else 'off'}, "
        f"val {percent(config.val_fraction, 0)}, seed {config.seed} on {config.device}"
    )


def describe_recipe(name: str) -> str:
    """One line for help texts: `objects (mirror, zoom and shift; resnet-mnist-small,
    12 epochs, batch 128, lr 0.2)`."""
    c = recipe_config(name)
    return f"{name} ({RECIPE_LABELS[name]}; {c.arch}, {c.epochs} epochs, batch {c.batch_size}, lr {c.lr:g})"
