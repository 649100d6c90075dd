"""The command line that runs a set of training settings outside the app: the `python -m
app train` arguments, and the torchrun command that runs them in several processes (one
per GPU, or a few CPU processes) on this or a bigger machine. The Train tab shows it
("Copy command"). Imports no torch."""

from __future__ import annotations

import shlex
from dataclasses import fields

from app.core.config import TrainConfig
from app.core.datarequest import DataRequest
from app.core.recipes import default_config

# TrainConfig fields and the `train` flags that set them; every other field must equal
# the recipe's default (the GUI does not change them), see `train_args`.
FLAGS = {
    "arch": "--arch", "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr",
    "seed": "--seed", "val_fraction": "--val-split", "limit": "--limit", "precision": "--precision",
    "outlier_exposure": "--outlier-exposure",
}  # fmt: skip


def train_args(request: DataRequest, config: TrainConfig, recipe: str) -> list[str]:
    """`python -m app train` arguments that reproduce `config` on `request`'s data.

    Raises:
        ValueError: a setting the command line cannot express (the message names it).
    """
    args = ["train", "--dataset", request.dataset]
    if request.data_dir:
        args += ["--data-dir", request.data_dir]
    if not request.builtin:
        args += ["--size", str(request.image_size), "--channels", str(request.channels)]
    args += ["--recipe", recipe]
    base = default_config(request.dataset if request.builtin else "", recipe=recipe)
    for name, flag in FLAGS.items():
        value = getattr(config, name)
        if value != getattr(base, name):
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if not config.augment:
        args.append("--no-augment")
    skip = set(FLAGS) | {"augment", "device", "threads"}
    for f in fields(TrainConfig):
        if f.name not in skip and getattr(config, f.name) != getattr(base, f.name):
            raise ValueError(f"{f.name}={getattr(config, f.name)} has no command-line flag")
    device = config.device.split(":")[0]  # each process takes its own GPU (LOCAL_RANK)
    if device != "auto":
        args += ["--device", device]
    return args


def torchrun_command(
    request: DataRequest, config: TrainConfig, recipe: str, nproc: int = 2, endpoint: str | None = None,
    nnodes: int = 1,
) -> str:  # fmt: skip
    """The torchrun command for `nproc` processes a machine: `--standalone` on one
    machine, or `nnodes` machines meeting at `endpoint` (HOST:PORT, the same command
    on every machine)."""
    where = (
        ["--standalone"] if endpoint is None
        else ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint]
    )  # fmt: skip
    cmd = ["torchrun", *where, "--nproc-per-node", str(nproc), "-m", "app", *train_args(request, config, recipe)]
    return shlex.join(cmd)
