"""TrainerThread: drives the core trainer off the GUI thread and reports with signals."""

from __future__ import annotations

import pytest
import torch

from app.core.config import TrainConfig
from app.core.datarequest import DataRequest
from app.core.events import (
    EpochEvent,
    FinishedEvent,
    FinishStatus,
    StateEvent,
    StepEvent,
    TrainState,
)
from app.gui.trainer_thread import TrainerThread
from tests.gui.train_fixtures import *  # noqa: F403 - pytest fixtures (mnist_dir, ...)

TIMEOUT_MS = 120_000  # generous: the CI machine is a shared 2-core box


def small_config(**kw) -> TrainConfig:
    base = dict(arch="resnet-mnist-small", epochs=2, batch_size=64, limit=300, device="cpu", threads=1)
    base.update(kw)
    return TrainConfig(**base)


class Recorder:
    """Collects every signal of a thread, in order."""

    def __init__(self, t: TrainerThread) -> None:
        self.events: list = []
        self.failures: list[str] = []
        self.classes: list[str] = []
        t.steps.connect(self.events.extend)
        t.epoch.connect(self.events.append)
        t.state_changed.connect(self.events.append)
        t.training_finished.connect(self.events.append)
        t.failed.connect(self.failures.append)
        t.data_ready.connect(lambda c: self.classes.extend(c))

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def test_run_emits_steps_epochs_and_saves_model(qtbot, mnist_dir, tmp_path, warm_torch):
    out = tmp_path / "m.safetensors"
    t = TrainerThread(small_config(), DataRequest("mnist", str(mnist_dir)), out)
    rec = Recorder(t)
    with qtbot.waitSignal(t.finished, timeout=TIMEOUT_MS):
        t.start()
    assert rec.failures == []
    steps = rec.of(StepEvent)
    assert len(steps) == steps[-1].total_steps  # none lost by coalescing
    assert [s.global_step for s in steps] == list(range(len(steps)))
    epochs = rec.of(EpochEvent)
    assert [e.epoch for e in epochs] == [0, 1]
    assert len(epochs[-1].confusion) == 10 and len(epochs[-1].per_class_acc) == 10
    assert rec.classes == [str(i) for i in range(10)]
    (fin,) = rec.of(FinishedEvent)
    assert fin.status is FinishStatus.COMPLETED and fin.model_path == str(out)
    assert out.exists() and out.with_suffix(".json").exists()
    assert out.with_suffix(".ckpt").exists()
    assert isinstance(rec.events[-1], FinishedEvent)  # steps were flushed before the end


def test_pause_then_cancel_stops_without_a_model(qtbot, mnist_dir, tmp_path):
    t = TrainerThread(small_config(), DataRequest("mnist", str(mnist_dir)), tmp_path / "m.safetensors")
    rec = Recorder(t)
    t.pause()  # before the trainer exists: applied when it is built
    with qtbot.waitSignal(t.state_changed, timeout=TIMEOUT_MS, check_params_cb=lambda e: e.state is TrainState.PAUSED):
        t.start()
    assert t.isRunning()
    with qtbot.waitSignal(t.finished, timeout=TIMEOUT_MS):
        t.cancel()
    (fin,) = rec.of(FinishedEvent)
    assert fin.status is FinishStatus.STOPPED and fin.model_path is None
    assert rec.of(StepEvent) == []


def test_set_device_during_run_keeps_progress(qtbot, mnist_dir, tmp_path):
    t = TrainerThread(small_config(epochs=1), DataRequest("mnist", str(mnist_dir)), tmp_path / "m.safetensors")
    rec = Recorder(t)
    with qtbot.waitSignal(t.steps, timeout=TIMEOUT_MS):
        t.start()
    with qtbot.waitSignal(t.finished, timeout=TIMEOUT_MS):
        t.set_device("cpu")  # CPU -> CPU: accepted, nothing to move
    steps = rec.of(StepEvent)
    assert [s.global_step for s in steps] == list(range(steps[-1].total_steps))
    assert rec.of(FinishedEvent)[0].status is FinishStatus.COMPLETED


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_switch_cpu_to_gpu_mid_run(qtbot, mnist_dir, tmp_path):
    t = TrainerThread(small_config(epochs=1), DataRequest("mnist", str(mnist_dir)), tmp_path / "m.safetensors")
    rec = Recorder(t)
    with qtbot.waitSignal(t.steps, timeout=TIMEOUT_MS):
        t.start()
    with qtbot.waitSignal(t.state_changed, timeout=TIMEOUT_MS, check_params_cb=lambda e: e.state is TrainState.DEVICE):
        t.set_device("cuda:0")
    with qtbot.waitSignal(t.finished, timeout=TIMEOUT_MS):
        pass
    assert any(isinstance(e, StateEvent) and e.device.startswith("cuda") for e in rec.events)
    assert rec.of(FinishedEvent)[0].status is FinishStatus.COMPLETED


def test_unusable_device_is_refused(tmp_path):
    t = TrainerThread(small_config(), DataRequest("mnist"), tmp_path / "m.safetensors")
    with pytest.raises(ValueError):
        t.set_device("no-such-device")


def test_data_error_is_reported_not_raised(qtbot, tmp_path):
    folder = tmp_path / "one-class"
    (folder / "cats").mkdir(parents=True)
    t = TrainerThread(small_config(), DataRequest(str(folder)), tmp_path / "m.safetensors")
    with qtbot.waitSignal(t.failed, timeout=TIMEOUT_MS) as blocker:
        t.start()
    qtbot.waitUntil(t.isFinished, timeout=TIMEOUT_MS)
    assert "at least two classes" in blocker.args[0]
