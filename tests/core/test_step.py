"""Mixed precision without a GPU: fp16 steps are loss-scaled (GradScaler), emulated bf16
does not count as supported, and a run in fp16 trains, checkpoints and resumes its loss
scale. The CUDA calls are mocked; the fp16 maths runs under the CPU's fp16 autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from app.core import devices, precision, training
from app.core.config import with_overrides
from app.core.devices import autocast_dtype
from app.core.events import FinishedEvent, FinishStatus, StepEvent
from app.core.precision import Choice
from app.core.step import NonFiniteLoss, StepPrecision
from app.core.training import Trainer
from tests.core.test_training import TINY
from tests.helpers.data import drawn_digits

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data():
    return drawn_digits()


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 4))


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(8, 1, 4, 4, generator=g), torch.randint(0, 4, (8,), generator=g)


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_gpus_without_native_bf16_use_fp16_and_emulation_does_not_count(monkeypatch, native, expected):
    asked = []

    def is_bf16_supported(including_emulation=True):
        asked.append(including_emulation)
        return native or including_emulation  # an older GPU: bf16 "supported" by emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    cuda = torch.device("cuda")
    assert autocast_dtype(cuda, "auto") == expected
    assert autocast_dtype(cuda, "bf16") == expected  # a forced bf16 is fp16 where bf16 is emulated
    assert precision.candidates(cuda) == [None, expected]
    assert asked and not any(asked)


def test_only_fp16_steps_get_a_grad_scaler():
    assert StepPrecision(CPU, torch.float16).scaler is not None
    assert StepPrecision(CPU, torch.bfloat16).scaler is None  # bf16 has fp32's range
    assert StepPrecision(CPU, None).scaler is None
    assert StepPrecision(torch.device("cuda"), torch.float16).scaler is not None


def test_an_fp16_step_is_scaled_and_an_overflowing_one_is_skipped():
    model, (x, y) = tiny_net(), batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    amp = StepPrecision(CPU, torch.float16)
    before = [p.detach().clone() for p in model.parameters()]
    amp.train_step(model, x, y, nn.CrossEntropyLoss(), opt)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))  # it stepped
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model[1].weight.grad.abs().max() < 10  # unscaled before the optimizer used them

    # A gradient that overflows fp16 once scaled: the step is skipped, the scale halves.
    scale = amp.scaler.get_scale()
    hook = model[1].weight.register_hook(lambda g: g * float("inf"))
    kept = [p.detach().clone() for p in model.parameters()]
    amp.train_step(model, x, y, nn.CrossEntropyLoss(), opt)
    hook.remove()
    assert all(torch.equal(k, p) for k, p in zip(kept, model.parameters()))
    assert amp.scaler.get_scale() == scale / 2


def test_a_nan_loss_is_reported_and_the_weights_are_left_alone():
    model, (x, y) = tiny_net(), batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    kept = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteLoss):
        StepPrecision(CPU, None).train_step(model, x * float("nan"), y, nn.CrossEntropyLoss(), opt)
    assert all(torch.equal(k, p) for k, p in zip(kept, model.parameters()))


def test_a_run_in_fp16_trains_and_resumes_with_its_loss_scale(tmp_path, data, monkeypatch):
    # What a GPU without native bf16 gets for precision auto, run on the CPU.
    monkeypatch.setattr(
        training, "choose_for_training", lambda *a, **k: Choice(torch.float16, "fp16: mocked")
    )
    out = tmp_path / "m.safetensors"
    cfg = with_overrides(TINY, epochs=2, limit=100)  # 2 steps an epoch: CPU fp16 is slow
    trainer = Trainer(cfg, data, out=out)
    events = trainer.run()
    for ev in events:
        if isinstance(ev, StepEvent) and ev.epoch == 1:
            break  # stopped in epoch 2: the checkpoint holds epoch 1
    events.close()
    scale = trainer._precision.scaler.get_scale()
    saved = torch.load(out.with_suffix(".ckpt"), weights_only=True)
    assert saved["scaler"]["scale"] <= 2.0**16

    resumed = Trainer(cfg, data, out=out, resume=out.with_suffix(".ckpt"))
    evs = list(resumed.run())
    assert resumed._precision.scaler is not None
    assert isinstance(evs[-1], FinishedEvent) and evs[-1].status is FinishStatus.COMPLETED
    assert all(torch.isfinite(torch.tensor(e.loss)) for e in evs if isinstance(e, StepEvent))
    assert scale > 0


def test_the_cuda_precision_is_measured_between_fp32_and_the_native_16_bit_type(monkeypatch):
    monkeypatch.setattr(devices, "cuda_bf16_native", lambda: False)
    monkeypatch.setattr(precision, "cuda_bf16_native", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Tesla T4")
    key = precision.cache_key("train", "resnet18", 128, torch.device("cuda"))
    assert "Tesla T4" in key and "resnet18" in key and "batch 128" in key
    assert precision.candidates(torch.device("cuda")) == [None, torch.float16]
