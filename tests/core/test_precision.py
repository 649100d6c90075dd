"""Precision `auto` is chosen by measuring on this machine: the faster candidate wins, the
choice is cached per machine and said in the log, and a forced precision is never timed."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from app.core import precision
from app.core.config import TrainConfig
from app.core.events import StateEvent, TrainState
from app.core.models import MNIST_SPEC, build_model
from app.core.training import Trainer
from tests.helpers.data import drawn_digits


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """An empty cache for this test (the session's shared one may hold real choices)."""
    monkeypatch.setenv("RESNET_STUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / precision.CACHE_NAME


@pytest.fixture
def with_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)


def fake_timings(monkeypatch, seconds: dict[str, float]) -> list[dict]:
    """Replaces the stopwatch: each candidate 'takes' the given seconds per step; returns
    the list of measurements made (each the candidates' names)."""
    calls: list[dict] = []

    def fake(fns, rounds=precision.ROUNDS):
        for fn in fns.values():
            fn()  # the real step still runs once: it must work in each precision
        calls.append(list(fns))
        return {n: seconds[n] for n in fns}

    monkeypatch.setattr(precision, "time_alternating", fake)
    return calls


def batch(arch="resnet-mnist-small", n=8):
    model = build_model(arch, 10, MNIST_SPEC).to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 28, 28, generator=g).contiguous(memory_format=torch.channels_last)
    return model, x, torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize(("fp32_s", "bf16_s", "winner"), [(0.10, 0.125, "fp32"), (0.10, 0.05, "bf16")])
def test_the_faster_precision_is_chosen_said_and_cached(monkeypatch, own_cache, with_bf16, fp32_s, bf16_s, winner):
    calls = fake_timings(monkeypatch, {"fp32": fp32_s, "bf16": bf16_s})
    model, x, y = batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cpu = torch.device("cpu")
    choice = precision.choose_for_training("auto", model, x, y, nn.CrossEntropyLoss(), "resnet-mnist-small", cpu)
    assert choice.name == winner and choice.dtype == (None if winner == "fp32" else torch.bfloat16)
    loser = "bf16" if winner == "fp32" else "fp32"
    ratio = {"fp32": fp32_s, "bf16": bf16_s}
    assert choice.note == f"{winner}: {loser} is {ratio[winner] / ratio[loser]:.2f}x here (measured)"
    assert calls == [["fp32", "bf16"]]
    # measured on copies: the run's own weights did not move
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    saved = json.loads(own_cache.read_text())["choices"]
    (key,) = saved
    assert "resnet-mnist-small" in key and "batch 8" in key and torch.__version__ in key
    assert saved[key]["choice"] == winner
    # the next run of the same combination reads the cache: no second measurement
    again = precision.choose_for_training("auto", model, x, y, nn.CrossEntropyLoss(), "resnet-mnist-small", cpu)
    assert again.dtype == choice.dtype and "measured before" in again.note and len(calls) == 1
    # another batch size is another combination
    precision.choose_for_training("auto", model, x[:4], y[:4], nn.CrossEntropyLoss(), "resnet-mnist-small", cpu)
    assert len(calls) == 2


def test_a_forced_precision_is_never_measured(monkeypatch, own_cache, with_bf16):
    calls = fake_timings(monkeypatch, {"fp32": 1.0, "bf16": 0.1})
    model, x, y = batch()
    cpu = torch.device("cpu")
    fp32 = precision.choose_for_training("fp32", model, x, y, nn.CrossEntropyLoss(), "a", cpu)
    bf16 = precision.choose_for_training("bf16", model, x, y, nn.CrossEntropyLoss(), "a", cpu)
    assert fp32.dtype is None and bf16.dtype is torch.bfloat16 and "precision setting" in bf16.note
    assert calls == [] and not own_cache.exists()


def test_a_cpu_without_bf16_instructions_trains_in_fp32_without_measuring(monkeypatch, own_cache):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    calls = fake_timings(monkeypatch, {"fp32": 1.0, "bf16": 0.1})
    model, x, y = batch()
    choice = precision.choose_for_training("auto", model, x, y, nn.CrossEntropyLoss(), "a", torch.device("cpu"))
    assert choice.dtype is None and calls == []


@pytest.mark.parametrize("content", ["{not json", '{"format": 99, "choices": {}}', '["a list"]'])
def test_a_damaged_cache_is_measured_again_and_replaced(monkeypatch, own_cache, with_bf16, content):
    own_cache.parent.mkdir(parents=True)
    own_cache.write_text(content)
    calls = fake_timings(monkeypatch, {"fp32": 0.2, "bf16": 0.1})
    model, x, y = batch()
    choice = precision.choose_for_training("auto", model, x, y, nn.CrossEntropyLoss(), "a", torch.device("cpu"))
    assert choice.name == "bf16" and len(calls) == 1
    assert json.loads(own_cache.read_text())["format"] == precision.CACHE_FORMAT


def test_an_unwritable_cache_only_means_measuring_again(monkeypatch, tmp_path, with_bf16):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("RESNET_STUDIO_CACHE", str(blocker / "cache"))  # a folder under a file
    calls = fake_timings(monkeypatch, {"fp32": 0.2, "bf16": 0.1})
    model, x, y = batch()
    for _ in range(2):
        choice = precision.choose_for_training("auto", model, x, y, nn.CrossEntropyLoss(), "a", torch.device("cpu"))
        assert choice.name == "bf16"
    assert len(calls) == 2


def test_the_trainer_uses_the_measured_choice_and_logs_it(monkeypatch, own_cache, with_bf16):
    calls = fake_timings(monkeypatch, {"fp32": 0.1, "bf16": 0.125})
    cfg = TrainConfig(arch="resnet-mnist-small", epochs=1, batch_size=32, device="cpu", limit=80)
    trainer = Trainer(cfg, drawn_digits())
    events = trainer.run()
    first = next(events)
    events.close()
    assert isinstance(first, StateEvent) and first.state is TrainState.RUNNING
    assert first.message.endswith("fp32: bf16 is 0.80x here (measured)")
    assert trainer._precision.dtype is None and len(calls) == 1


def test_inference_precision_is_measured_and_cached_per_batch_size(monkeypatch, own_cache, with_bf16):
    calls = fake_timings(monkeypatch, {"fp32": 0.1, "bf16": 0.05})
    model, x, _ = batch()
    model.eval()
    assert precision.choose_for_inference("auto", model, x, "a").name == "bf16"
    assert precision.choose_for_inference("auto", model, x, "a").name == "bf16"
    assert precision.choose_for_inference("auto", model, x[:1], "a").name == "bf16"
    assert len(calls) == 2  # batch 8 once, batch 1 once
    assert precision.choose_for_inference("fp32", model, x, "a").dtype is None and len(calls) == 2
