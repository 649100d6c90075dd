"""The command line of a run's settings: what the Train tab's "Copy command" gives must
train exactly the run the form describes, through the CLI's own parser and recipes."""

from __future__ import annotations

import shlex
from dataclasses import replace

import pytest

from app.cli.parser import build_parser
from app.cli.train import train_config
from app.core.commandline import torchrun_command, train_args
from app.core.datarequest import DataRequest
from app.core.recipes import TAUGHT, default_config


def config_from_cli(argv: list[str]):
    """The TrainConfig `python -m app train ARGV` would run (the CLI's own path)."""
    return train_config(build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "request_, recipe, changes",
    [
        (DataRequest("mnist"), "digits", dict(epochs=7, lr=0.05, seed=3, limit=500)),
        (DataRequest("fashion-mnist", "/data/fm"), "objects", dict(batch_size=256, val_fraction=0.2, augment=False)),
        (DataRequest("/photos/my cats", image_size=96), "objects", dict(arch="resnet18", device="cuda:0")),
    ],
)
def test_the_command_trains_the_settings_it_was_made_from(request_, recipe, changes):
    config = replace(default_config(request_.dataset, recipe=recipe), **changes)
    argv = train_args(request_, config, recipe)
    got = config_from_cli(argv)
    assert replace(got, device=config.device.split(":")[0]) == replace(config, device=config.device.split(":")[0])
    assert argv[argv.index("--dataset") + 1] == request_.dataset
    if request_.data_dir:
        assert argv[argv.index("--data-dir") + 1] == request_.data_dir


def test_torchrun_command_one_machine_and_several():
    config = replace(default_config("mnist"), epochs=5)
    one = shlex.split(torchrun_command(DataRequest("mnist"), config, "digits", nproc=4))
    assert one[:6] == ["torchrun", "--standalone", "--nproc-per-node", "4", "-m", "app"]
    assert one[6:] == train_args(DataRequest("mnist"), config, "digits")
    many = shlex.split(torchrun_command(DataRequest("mnist"), config, "digits", 2, "node0:29500", nnodes=3))
    assert many[:9] == ["torchrun", "--nnodes", "3", "--rdzv-backend", "c10d", "--rdzv-endpoint", "node0:29500",
                        "--nproc-per-node", "2"]  # fmt: skip
    objects = default_config("photos", recipe="objects")
    folder = torchrun_command(DataRequest("/my photos", image_size=64), objects, "objects")
    assert "'/my photos'" in folder  # quoted for the shell


def test_a_setting_without_a_flag_is_refused_not_dropped():
    config = replace(default_config("mnist"), rotate_deg=30.0)
    with pytest.raises(ValueError, match="rotate_deg"):
        train_args(DataRequest("mnist"), config, "digits")


def test_distillation_flags_reach_the_config():
    got = config_from_cli(
        ["train", "--dataset", "mnist", "--recipe", "digits-40", "--seed", "1", "--split-seed", "0",
         "--keep-last", "--teacher", "a.safetensors", "--teacher", "b.safetensors"]
    )  # fmt: skip
    assert (got.seed, got.split_seed, got.keep_last) == (1, 0, True)
    assert got.teachers == ("a.safetensors", "b.safetensors")
    assert (got.distill_weight, got.distill_temperature) == (TAUGHT["distill_weight"], TAUGHT["distill_temperature"])
    plain = config_from_cli(["train", "--dataset", "mnist", "--recipe", "digits-40"])
    assert (plain.split_seed, plain.keep_last, plain.teachers, plain.distill_weight) == (None, False, (), 0.0)
