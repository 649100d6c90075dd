"""The CUDA paths, on a real GPU (skipped without one): training on the GPU, switching
between GPU and CPU mid-run, a GPU checkpoint resumed on the CPU, and inference on the GPU
agreeing with the CPU. The fault paths (out of memory, a lost GPU) are tested by injection
in test_training.py and run everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from app.core.config import with_overrides
from app.core.events import (
    EpochEvent,
    FinishedEvent,
    FinishStatus,
    StateEvent,
    StepEvent,
)
from app.core.modelio import load_model
from app.core.predictor import Predictor
from app.core.training import Trainer
from tests.core.test_training import STEPS, TINY
from tests.helpers.data import drawn_digits

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = with_overrides(TINY, device="cuda")


@pytest.fixture(scope="module")
def data():
    return drawn_digits()


def test_training_runs_on_the_gpu_and_saves_a_cpu_loadable_model(tmp_path, data):
    out = tmp_path / "m.safetensors"
    trainer = Trainer(CUDA, data, out=out)
    events = list(trainer.run())
    assert events[0].device.startswith("cuda")
    assert next(trainer.model.parameters()).is_cuda
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert len(steps) == 2 * STEPS and all(math.isfinite(s.loss) for s in steps)
    fin = events[-1]
    assert isinstance(fin, FinishedEvent) and fin.status is FinishStatus.COMPLETED
    model, card = load_model(out, "cpu")
    assert not next(model.parameters()).is_cuda and card.arch == TINY.arch


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_gpu_precisions_train_finite(data, precision):
    trainer = Trainer(with_overrides(CUDA, precision=precision, epochs=1), data)
    losses = [e.loss for e in trainer.run() if isinstance(e, StepEvent)]
    assert len(losses) == STEPS and all(math.isfinite(v) for v in losses)


def test_device_switch_gpu_to_cpu_and_back_mid_run(data):
    trainer = Trainer(with_overrides(CUDA, epochs=3), data)
    devices_seen, requested = [], []
    for ev in trainer.run():
        if isinstance(ev, StepEvent):
            devices_seen.append(str(trainer.device))
            if ev.global_step == 2:
                trainer.set_device("cpu")
                requested.append("cpu")
            elif ev.global_step == STEPS + 2:
                trainer.set_device("cuda")
                requested.append("cuda")
            assert math.isfinite(ev.loss)
        elif isinstance(ev, FinishedEvent):
            assert ev.status is FinishStatus.COMPLETED and ev.epochs_done == 3
    assert requested == ["cpu", "cuda"]
    assert (
        devices_seen[0].startswith("cuda")
        and "cpu" in devices_seen
        and devices_seen[-1].startswith("cuda")
    )
    assert all(p.is_cuda for p in trainer.model.parameters())


def test_gpu_checkpoint_resumes_on_the_cpu(tmp_path, data):
    ckpt = tmp_path / "run.ckpt"
    first = Trainer(with_overrides(CUDA, epochs=2), data, checkpoint=ckpt)
    for ev in first.run():
        if isinstance(ev, EpochEvent):
            first.cancel()  # stop after epoch 1; its checkpoint stands
    resumed = Trainer(
        with_overrides(TINY, epochs=2, device="cpu"), data, checkpoint=ckpt, resume=ckpt
    )
    events = list(resumed.run())
    epochs = [e.epoch for e in events if isinstance(e, EpochEvent)]
    assert epochs == [1]  # only the second epoch runs
    assert any(isinstance(e, StateEvent) and e.device == "cpu" for e in events)
    assert events[-1].status is FinishStatus.COMPLETED


def test_gpu_inference_matches_the_cpu(tmp_path, data):
    out = tmp_path / "m.safetensors"
    list(Trainer(with_overrides(TINY, epochs=1), data, out=out).run())
    cpu, gpu = Predictor.load(out, "cpu"), Predictor.load(out, "cuda")
    assert gpu.device.type == "cuda"
    images = [data.images[i, 0].numpy() for i in range(0, 40, 4)]
    for im in images:
        a, b = cpu.predict(im), gpu.predict(im)
        assert a.label == b.label
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-3)
    batch = gpu.predict_many(images)
    assert [r.label for r in batch] == [cpu.predict(im).label for im in images]
