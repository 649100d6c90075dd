"""The pieces of distributed training that need no second process: a process's share of
the augmentation draws, batch-norm conversion, and what happens outside torchrun.
(Runs with 2 processes: tests/test_distributed.py.)"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from app.cli.launch import worker_argv
from app.core.augment import augment_batch, step_generator
from app.core.config import TrainConfig, TrainingError
from app.core.distributed import init_from_env, launched_by_torchrun
from app.core.models import MNIST_SPEC, build_model
from app.core.syncbn import AllReduceBatchNorm2d, sync_batchnorm


@pytest.mark.parametrize("cfg", [TrainConfig(), TrainConfig(hflip=True, elastic=0.0)])
def test_each_process_augments_its_rows_as_one_process_would(cfg):
    x = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    whole = augment_batch(x, cfg, step_generator(0, 1, 2))
    for rank in range(3):  # 10 rows over 3 processes: shares of 4, 3 and 3
        rows = slice(rank, 10, 3)
        share = augment_batch(x[rows], cfg, step_generator(0, 1, 2), share=(10, rows))
        torch.testing.assert_close(share, whole[rows], atol=1e-6, rtol=0)


def test_sync_batchnorm_keeps_the_parameters_and_the_state_dict():
    model = build_model("resnet-mnist-small", 10, MNIST_SPEC)
    params = list(model.parameters())
    keys = list(model.state_dict())
    synced = sync_batchnorm(model, torch.device("cpu"))
    assert synced is model and list(model.parameters()) == params  # an optimizer made before still fits
    assert list(model.state_dict()) == keys
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(type(m) is AllReduceBatchNorm2d for m in bns)
    x = torch.rand(4, 1, 28, 28)
    reference = build_model("resnet-mnist-small", 10, MNIST_SPEC)
    reference.load_state_dict(model.state_dict())
    for mode in ("train", "eval"):  # one process: plain batch norm
        getattr(model, mode)()
        getattr(reference, mode)()
        torch.testing.assert_close(model(x), reference(x))


def test_outside_torchrun_there_is_no_distributed_run(monkeypatch):
    for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(v, raising=False)
    assert not launched_by_torchrun()
    with pytest.raises(TrainingError, match="not started by torchrun"):
        init_from_env("cpu")


def test_the_processes_run_the_command_without_nproc():
    assert worker_argv(["train", "--nproc", "2", "--epochs", "3", "--nproc=4"]) == ["train", "--epochs", "3"]
