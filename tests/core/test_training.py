"""The trainer: events a UI can draw, files a user keeps, controls that work from
another thread, and faults (diverged loss, lost GPU, full disk) that keep progress."""

from __future__ import annotations

import errno
import os
import queue
import threading

import pytest
import torch
from safetensors.torch import load_file

from app.core import recipes, training
from app.core.augment import augment_batch
from app.core.config import TrainConfig, TrainingError, with_overrides
from app.core.evaluation import evaluate
from app.core.events import (
    EpochEvent,
    FinishedEvent,
    FinishStatus,
    PauseCause,
    StateEvent,
    StepEvent,
    TrainState,
)
from app.core.modelio import card_path, load_model
from app.core.models import build_model
from app.core.training import Trainer
from tests.helpers.data import drawn_digits

# 240 drawn digits, 10% validation: 216 training images = 6 steps of 32 per epoch.
TINY = TrainConfig(
    arch="resnet-mnist-small", epochs=2, batch_size=32, seed=0, device="cpu", threads=1
)
STEPS = 6
WAIT = 120  # s: a deadline for a background run's next event, not a speed target


@pytest.fixture(scope="module")
def data():
    return drawn_digits()


def run_all(trainer: Trainer) -> list:
    return list(trainer.run())


def weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


# --- a normal run ------------------------------------------------------------------------------


def test_tiny_run_reports_progress_and_writes_model_card_and_checkpoint(tmp_path, data):
    out = tmp_path / "m.safetensors"
    events = run_all(Trainer(TINY, data, out=out, command="python -m app train ..."))
    assert isinstance(events[0], StateEvent) and events[0].state is TrainState.RUNNING
    steps = [e for e in events if isinstance(e, StepEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [s.global_step for s in steps] == list(range(2 * STEPS))
    assert all(s.total_steps == 2 * STEPS and s.steps_per_epoch == STEPS for s in steps)
    assert all(torch.isfinite(torch.tensor(s.loss)) and s.lr > 0 for s in steps)
    assert steps[-1].eta_s == 0
    assert [e.epoch for e in epochs] == [0, 1]
    for e in epochs:
        assert len(e.confusion) == 10 and sum(map(sum, e.confusion)) == 24  # validation images
        assert len(e.per_class_acc) == 10 and 0 <= e.val_acc <= 1
    finished = events[-1]
    assert isinstance(finished, FinishedEvent) and finished.status is FinishStatus.COMPLETED
    assert finished.epochs_done == 2 and finished.model_path == str(out)
    model, card = load_model(out)
    assert card.arch == "resnet-mnist-small" and card.classes == [str(i) for i in range(10)]
    assert card.train_samples == 216 and card.command == "python -m app train ..."
    assert card.metrics["epochs_trained"] == 2 and card.recipe["seed"] == 0
    ckpt = torch.load(out.with_suffix(".ckpt"), weights_only=True)
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    # Calibrated on its own 24 validation images at the end: the card and the event say so.
    assert card.temperature == pytest.approx(finished.temperature) and 0.05 <= card.temperature <= 20
    assert card.abstain["score"] == "energy" and card.abstain["n_val"] == 24 * 6
    assert card.metrics["val_ece"] == pytest.approx(finished.val_ece)
    assert finished.val_ece_uncalibrated == pytest.approx(card.metrics["val_ece_uncalibrated"])


def test_saved_model_is_the_best_validation_epoch(tmp_path, data):
    out = tmp_path / "m.safetensors"
    events = run_all(Trainer(with_overrides(TINY, epochs=3), data, out=out))
    best = [e for e in events if isinstance(e, EpochEvent) and e.best][-1]
    assert events[-1].best_epoch == best.epoch
    assert events[-1].best_val_acc == best.val_acc


@pytest.mark.slow
def test_same_seed_gives_identical_weights_and_another_seed_does_not(tmp_path, data):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_all(
            Trainer(with_overrides(TINY, seed=seed), data, out=tmp_path / f"{name}.safetensors")
        )
    a, b, c = (weights(tmp_path / f"{n}.safetensors") for n in "abc")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_resuming_a_stopped_run_gives_the_same_model_as_an_uninterrupted_one(tmp_path, data):
    cfg = with_overrides(TINY, epochs=3)
    run_all(Trainer(cfg, data, out=tmp_path / "straight.safetensors"))
    stopped = Trainer(cfg, data, out=tmp_path / "resumed.safetensors")
    for ev in stopped.run():
        if isinstance(ev, EpochEvent):
            stopped.cancel()  # stop after the first epoch's checkpoint
    assert ev.status is FinishStatus.STOPPED and ev.epochs_done == 1
    ckpt = tmp_path / "resumed.ckpt"
    events = run_all(Trainer(cfg, data, out=tmp_path / "resumed.safetensors", resume=ckpt))
    assert [e.epoch for e in events if isinstance(e, EpochEvent)] == [1, 2]
    assert events[-1].status is FinishStatus.COMPLETED and events[-1].epochs_done == 3
    a, b = weights(tmp_path / "straight.safetensors"), weights(tmp_path / "resumed.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_without_validation_judges_on_training_data(tmp_path, data):
    events = run_all(
        Trainer(with_overrides(TINY, val_fraction=0.0, epochs=1), data, out=tmp_path / "m")
    )
    epoch = next(e for e in events if isinstance(e, EpochEvent))
    assert epoch.val_acc is None and sum(map(sum, epoch.confusion)) == 240
    assert events[-1].model_path is not None
    # Nothing held out to calibrate on: the card says so rather than guessing.
    assert events[-1].temperature is None and load_model(tmp_path / "m")[1].temperature is None


def test_limit_trains_on_a_subset(tmp_path, data):
    events = run_all(Trainer(with_overrides(TINY, limit=100, epochs=1), data))
    assert next(e for e in events if isinstance(e, StepEvent)).steps_per_epoch == 90 // 32
    assert events[-1].model_path is None  # no output file asked for


# --- controls from another thread --------------------------------------------------------------


class Background:
    """Runs a trainer in a thread (as the GUI does) and hands its events over a queue."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.events: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for ev in self.trainer.run():
                self.events.put(ev)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e
        finally:
            self.events.put(None)

    def next_matching(self, pred) -> object:
        while True:
            ev = self.events.get(timeout=WAIT)
            assert ev is not None, f"run ended early ({self.error!r})"
            if pred(ev):
                return ev

    def rest(self) -> list:
        out = []
        while (ev := self.events.get(timeout=WAIT)) is not None:
            out.append(ev)
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        return out


def is_state(state: TrainState):
    return lambda e: isinstance(e, StateEvent) and e.state is state


def test_pause_resume_and_cancel_from_another_thread(tmp_path, data):
    run = Background(Trainer(with_overrides(TINY, epochs=200), data, out=tmp_path / "m"))
    run.next_matching(lambda e: isinstance(e, StepEvent))
    run.trainer.pause()
    run.next_matching(is_state(TrainState.PAUSED))
    assert run.trainer.paused
    # While paused the run waits: the next thing it reports is that it resumed.
    run.trainer.resume()
    assert is_state(TrainState.RESUMED)(run.events.get(timeout=WAIT))
    step = run.next_matching(lambda e: isinstance(e, StepEvent))
    run.trainer.cancel()
    rest = run.rest()
    finished = rest[-1]
    assert isinstance(finished, FinishedEvent) and finished.status is FinishStatus.STOPPED
    assert finished.epochs_done < 200 and step.epoch < 199


def test_cancel_while_paused_stops_the_run(data):
    run = Background(Trainer(with_overrides(TINY, epochs=200), data))
    run.next_matching(lambda e: isinstance(e, StepEvent))
    run.trainer.pause()
    run.next_matching(is_state(TrainState.PAUSED))
    run.trainer.cancel()
    rest = run.rest()
    assert rest[-1].status is FinishStatus.STOPPED
    assert not any(is_state(TrainState.RESUMED)(e) for e in rest)


def test_device_switch_between_steps_keeps_training(tmp_path, data, monkeypatch):
    trainer = Trainer(with_overrides(TINY, epochs=2), data, out=tmp_path / "m")
    events = []
    for ev in trainer.run():
        events.append(ev)
        if isinstance(ev, StepEvent) and ev.global_step == 2:
            trainer.set_device("cpu")  # the same device: nothing to move
            trainer.set_device("cpu:0")  # another name for it: moved, and said so
    moved = [e for e in events if is_state(TrainState.DEVICE)(e)]
    assert len(moved) == 1 and "cpu" in moved[0].message
    assert events[-1].status is FinishStatus.COMPLETED
    assert len([e for e in events if isinstance(e, StepEvent)]) == 2 * STEPS
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        trainer.set_device("cuda")


# --- faults ------------------------------------------------------------------------------------


def fail_augment_at(monkeypatch, call: int, make):
    """Makes the `call`-th training step's batch bad (`make(batch)` returns or raises)."""
    real = training.augment_batch
    calls = {"n": 0}

    def augment(x, *args, **kwargs):
        calls["n"] += 1
        out = real(x, *args, **kwargs)
        return make(out) if calls["n"] == call else out

    monkeypatch.setattr(training, "augment_batch", augment)
    return calls


def test_diverged_loss_stops_with_the_step_and_advice_and_keeps_the_checkpoint(
    tmp_path, data, monkeypatch
):
    fail_augment_at(monkeypatch, STEPS + 2, lambda x: x * float("nan"))  # epoch 2, step 2
    out = tmp_path / "m.safetensors"
    trainer = Trainer(with_overrides(TINY, epochs=3), data, out=out)
    seen = []
    with pytest.raises(TrainingError) as info:
        for ev in trainer.run():
            seen.append(ev)
    msg = str(info.value)
    assert "nan" in msg and "epoch 2, step 2" in msg and "lower learning rate" in msg
    assert [e.epoch for e in seen if isinstance(e, EpochEvent)] == [0]
    ckpt = torch.load(out.with_suffix(".ckpt"), weights_only=True)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert not out.exists()
    # ... and the run can go on from that checkpoint.
    monkeypatch.undo()
    events = run_all(
        Trainer(with_overrides(TINY, epochs=3), data, out=out, resume=out.with_suffix(".ckpt"))
    )
    assert events[-1].status is FinishStatus.COMPLETED


def test_device_failure_pauses_with_progress_kept_and_resumes(tmp_path, data, monkeypatch):
    def oom(_):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    fail_augment_at(monkeypatch, STEPS + 3, oom)  # epoch 2, step 3
    trainer = Trainer(TINY, data, out=tmp_path / "m")
    events = []
    for ev in trainer.run():
        events.append(ev)
        if is_state(TrainState.PROBLEM)(ev):
            assert trainer.paused
            assert "epoch 2, step 3" in ev.message and "out of memory" in ev.message
            assert "resume" in ev.message
        if is_state(TrainState.PAUSED)(ev):
            assert ev.cause is PauseCause.DEVICE_PROBLEM and "device problem" in ev.message
            trainer.resume()  # e.g. after switching to the CPU
    states = [e.state for e in events if isinstance(e, StateEvent)]
    assert states == [TrainState.RUNNING, TrainState.PROBLEM, TrainState.PAUSED, TrainState.RESUMED]
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [s.global_step for s in steps] == list(range(2 * STEPS))  # the failed step ran again
    assert events[-1].status is FinishStatus.COMPLETED and events[-1].epochs_done == 2


@pytest.mark.slow
def test_a_step_retried_after_a_device_failure_trains_as_if_nothing_happened(tmp_path, data, monkeypatch):
    # The failing call has already drawn its augmentation; the retry must draw it again.
    run_all(Trainer(TINY, data, out=tmp_path / "straight.safetensors"))
    fail_augment_at(monkeypatch, STEPS + 3, lambda x: (_ for _ in ()).throw(
        torch.cuda.OutOfMemoryError("CUDA out of memory")))  # fmt: skip
    trainer = Trainer(TINY, data, out=tmp_path / "retried.safetensors")
    for ev in trainer.run():
        if is_state(TrainState.PAUSED)(ev):
            trainer.resume()
    a, b = weights(tmp_path / "straight.safetensors"), weights(tmp_path / "retried.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_initial_weights_depend_on_the_seed_alone_not_on_the_global_rng(data):
    def initial_weights(seed: int) -> dict[str, torch.Tensor]:
        trainer = Trainer(with_overrides(TINY, seed=seed), data)
        run = trainer.run()
        assert is_state(TrainState.RUNNING)(next(run))  # set up, not trained yet
        state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        run.close()
        return state

    torch.manual_seed(1)
    a = initial_weights(0)
    torch.manual_seed(12345)  # another thread (the GUI's warm-up) used the global RNG
    torch.rand(1000)
    b, c = initial_weights(0), initial_weights(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["net.fc.weight"], c["net.fc.weight"])


def test_a_run_neither_seeds_torch_nor_changes_its_thread_count(data):
    threads = torch.get_num_threads()
    torch.manual_seed(4321)
    run_all(Trainer(with_overrides(TINY, epochs=1, seed=7, threads=threads + 1), data))
    assert torch.get_num_threads() == threads  # `threads` is for the process owner to apply
    assert torch.initial_seed() == 4321  # the global RNG was not re-seeded


def test_a_bug_is_not_mistaken_for_a_device_failure(data, monkeypatch):
    def bug(_):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    fail_augment_at(monkeypatch, 2, bug)
    with pytest.raises(RuntimeError, match="shapes"):
        run_all(Trainer(TINY, data))


def test_disk_full_while_checkpointing_is_a_training_error(tmp_path, data, monkeypatch):
    real = os.fsync

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(TrainingError, match="cannot write checkpoint .*No space left"):
        run_all(Trainer(TINY, data, out=tmp_path / "m"))
    monkeypatch.setattr(os, "fsync", real)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"arch": "vgg"}, "unknown architecture"),
        ({"epochs": 0}, "epochs must be 1..1000, not 0"),
        ({"batch_size": 0}, "batch size"),
        ({"lr": 0.0}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"lr": 1e6}, "learning rate must be in \\(0, 10\\]"),
        ({"weight_decay": -1.0}, "weight decay"),
        ({"label_smoothing": 1.0}, "label smoothing"),
        ({"val_fraction": 0.95}, "validation fraction"),
        ({"precision": "fp8"}, "precision"),
        ({"limit": -5}, "limit"),
        ({"anneal": "step"}, "anneal must be one of cos, linear"),
        ({"warmup_fraction": 1.0}, "warmup fraction"),
        ({"erase": 1.5}, "erase must be in \\[0, 1\\]"),
    ],
)
def test_invalid_settings_are_refused_with_the_reason(data, change, message):
    with pytest.raises(TrainingError, match=message):
        Trainer(with_overrides(TINY, **change), data)


def test_unusable_device_and_too_little_data_are_refused(data):
    with pytest.raises(ValueError, match="unknown device"):
        Trainer(with_overrides(TINY, device="tpu"), data)
    with pytest.raises(TrainingError, match="at least 2 training images"):
        Trainer(TINY, data.subset(torch.tensor([0])))


def test_resuming_with_other_settings_names_the_setting(tmp_path, data):
    run_all(Trainer(with_overrides(TINY, epochs=1), data, out=tmp_path / "m"))
    with pytest.raises(TrainingError, match="batch_size=32, this run has 16"):
        run_all(
            Trainer(with_overrides(TINY, epochs=1, batch_size=16), data, resume=tmp_path / "m.ckpt")
        )


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"PK\x03\x04" + b"\x00" * 30])
def test_resuming_from_a_broken_checkpoint_is_refused(tmp_path, data, content):
    (tmp_path / "bad.ckpt").write_bytes(content)
    with pytest.raises(TrainingError, match="not a valid checkpoint"):
        run_all(Trainer(TINY, data, resume=tmp_path / "bad.ckpt"))
    with pytest.raises(TrainingError, match="checkpoint not found"):
        run_all(Trainer(TINY, data, resume=tmp_path / "missing.ckpt"))


def test_a_checkpoint_holding_arbitrary_objects_is_not_unpickled(tmp_path, data):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"config": {}, "epoch": Evil()}, tmp_path / "evil.ckpt")
    with pytest.raises(TrainingError, match="not a valid checkpoint"):
        run_all(Trainer(TINY, data, resume=tmp_path / "evil.ckpt"))
    assert not (tmp_path / "pwned").exists()


def test_card_is_written_beside_the_weights(tmp_path, data):
    run_all(Trainer(with_overrides(TINY, epochs=1), data, out=tmp_path / "sub" / "m.safetensors"))
    assert card_path(tmp_path / "sub" / "m.safetensors").is_file()


# --- recipes ------------------------------------------------------------------------------------


def test_hflip_mirrors_about_half_of_a_batch_and_nothing_else():
    x = torch.rand(64, 1, 28, 28)
    cfg = TrainConfig(hflip=True, rotate_deg=0, scale=0, shear_deg=0, shift=0, elastic=0)
    out = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    same = (out - x).abs().flatten(1).amax(1) < 1e-5
    mirrored = (out - x.flip(-1)).abs().flatten(1).amax(1) < 1e-5
    assert bool((same | mirrored).all())  # each image is itself or its mirror, exactly
    assert 16 <= int(mirrored.sum()) <= 48


def test_random_erasing_covers_one_rectangle_in_about_its_share_of_the_images():
    x = torch.full((400, 1, 28, 28), -1.0)  # outside [0, 1]: every erased pixel shows
    cfg = TrainConfig(rotate_deg=0, scale=0, shear_deg=0, shift=0, elastic=0, erase=0.5, augment=True)
    out = augment_batch(x, cfg, torch.Generator().manual_seed(0), border=True)
    erased = out >= 0
    hit = erased.flatten(1).any(1)
    assert 160 <= int(hit.sum()) <= 240  # p = 0.5
    area = erased[hit].flatten(1).float().mean(1)
    assert float(area.min()) >= 0.01 and float(area.max()) <= 0.45  # 2-40% of the image, rounded to pixels
    rows, cols = erased[hit, 0].any(2), erased[hit, 0].any(1)  # (n, h), (n, w)
    assert torch.equal(erased[hit, 0], rows.unsqueeze(2) & cols.unsqueeze(1))  # one axis-aligned rectangle
    again = augment_batch(x, cfg, torch.Generator().manual_seed(0), border=True)
    assert torch.equal(out, again)  # the step's generator alone decides


def test_digit_recipe_never_mirrors():
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, 10:18, 4:8] = 1.0  # a bar on the left
    cfg = TrainConfig(rotate_deg=0, scale=0, shear_deg=0, shift=0, elastic=0)  # digits: hflip off
    out = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-5)


@pytest.mark.parametrize("anneal", ["linear", "cos"])
def test_the_lr_ramps_follow_the_anneal_setting(data, anneal):
    cfg = with_overrides(TINY, epochs=3, anneal=anneal, warmup_fraction=0.25, arch="resnet-mnist-8")
    # each event shows the next step's lr; the last one's step never runs
    lrs = torch.tensor([e.lr for e in run_all(Trainer(cfg, data)) if isinstance(e, StepEvent)][:-1])
    down = lrs[int(lrs.argmax()) :].diff()
    assert (down < 0).all() and lrs.max() == pytest.approx(cfg.lr, rel=0.05)
    straight = torch.allclose(down, down.mean().expand_as(down), rtol=1e-3)
    assert straight == (anneal == "linear")  # a triangle, or cosine ramps


def test_dataset_recipes():
    digits = recipes.default_config("mnist")  # the fast digit recipe (bench/speedrun_lab.py)
    assert digits == recipes.recipe_config("digits") and digits.anneal == "linear" and not digits.hflip
    assert recipes.recipe_config("digits-40") == TrainConfig()  # the shipped model's recipe
    fashion = recipes.default_config("fashion-mnist")
    assert fashion.hflip and fashion.elastic == 0 and fashion.rotate_deg == 0
    assert fashion.arch == "resnet-mnist-small"
    assert (fashion.epochs, fashion.batch_size, fashion.lr) == (12, 128, 0.2)
    assert recipes.recipe_of(fashion) == "objects" and recipes.recipe_of(TrainConfig()) == "digits-40"
    assert recipes.recipe_of(recipes.recipe_config("digits")) == "digits"
    assert recipes.recipe_of(with_overrides(TrainConfig(), arch="resnet18")) == "digits"  # augmentation decides
    assert recipes.default_config("my-photos").hflip  # folders get the objects recipe
    digits_folder = recipes.default_config("my-digits", recipe="digits", epochs=3, lr=None)
    assert not digits_folder.hflip and digits_folder.epochs == 3 and digits_folder.lr == 0.2
    with pytest.raises(TrainingError, match="unknown recipe"):
        recipes.default_config("mnist", recipe="cats")


def test_the_wide_objects_recipe_shares_the_augmentation_and_is_told_apart_by_its_network():
    wide, objects = recipes.recipe_config("objects-wide"), recipes.recipe_config("objects")
    assert all(getattr(wide, k) == getattr(objects, k) for k in recipes.AUGMENT_FIELDS)
    assert wide.arch == "resnet-mnist" and wide.epochs > objects.epochs
    assert recipes.recipe_of(wide) == "objects-wide" and recipes.recipe_of(objects) == "objects"
    assert recipes.recipe_for("fashion-mnist") == "objects"  # the default stays the faster one
    assert "resnet-mnist, 14 epochs" in recipes.describe_recipe("objects-wide")


def test_evaluate_now_judges_the_saved_weights_without_touching_the_run(data):
    trainer = Trainer(with_overrides(TINY, epochs=1, hflip=True, precision="fp32"), data)
    for ev in trainer.run():
        if isinstance(ev, EpochEvent):
            live = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            loss, acc, conf = trainer.evaluate_now(data)
            assert int(conf.sum()) == len(data) and 0 <= acc <= 1
            assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in live.items())
            ema = build_model(TINY.arch, 10, data.spec)  # the EMA weights, evaluated plainly
            ema.load_state_dict(trainer.eval_state())
            with_tta = evaluate(ema, data.images, data.labels, 10, tta_flip=True)
            without = evaluate(ema, data.images, data.labels, 10)
            assert loss == pytest.approx(with_tta[0], rel=1e-4)
            assert trainer.evaluate_now(data, tta_flip=False)[0] == pytest.approx(without[0], rel=1e-4)


def test_outlier_exposure_trains_on_as_many_synthetic_outliers_and_is_reproducible(tmp_path, data, monkeypatch):
    """With outlier exposure every step sees one synthetic outlier per image with a
    uniform target; the accuracy counts the real images only, and the run is seeded."""
    from app.core import exposure

    seen = []
    real = exposure.OutlierExposureLoss.forward

    def spy(self, logits, labels):
        seen.append((len(labels), int((labels == exposure.OUTLIER).sum())))
        return real(self, logits, labels)

    monkeypatch.setattr(exposure.OutlierExposureLoss, "forward", spy)
    monkeypatch.setattr(exposure, "POOL_MAX", 40)  # a small pool: drawing one costs ~15 ms
    # fp32 forced: an "auto" precision times steps of the criterion on digits alone first.
    cfg = with_overrides(TINY, epochs=1, outlier_exposure=0.5, precision="fp32")
    a = Trainer(cfg, data, out=tmp_path / "a.safetensors")
    events = run_all(a)
    assert len(a._outliers) == 40 and seen and all(n == 64 and k == 32 for n, k in seen)
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert all(torch.isfinite(torch.tensor(s.loss)) for s in steps)
    epoch = next(e for e in events if isinstance(e, EpochEvent))
    assert 0 <= epoch.train_acc <= 1
    run_all(Trainer(cfg, data, out=tmp_path / "b.safetensors"))
    wa, wb = weights(tmp_path / "a.safetensors"), weights(tmp_path / "b.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert load_model(tmp_path / "a.safetensors")[1].recipe["outlier_exposure"] == 0.5


def test_a_run_can_start_from_a_trained_models_weights(tmp_path, data):
    """`start_from`: the run's first weights are the model file's (not a seeded init), and
    a model that does not fit the run is refused before anything starts."""
    from app.core.modelcard import ModelFileError
    from tests.helpers.models import write_model

    base = write_model(tmp_path / "base.safetensors", seed=3)
    cfg = with_overrides(TINY, epochs=1, lr=1e-9, ema_decay=0.0, augment=False, precision="fp32")
    trainer = Trainer(cfg, data, start_from=base)
    started = trainer._initial_model(data)
    want = load_model(base)[0].state_dict()
    assert all(torch.equal(started.state_dict()[k], v) for k, v in want.items())
    assert started.training  # ready to train, not in eval mode
    fresh = Trainer(cfg, data)._initial_model(data).state_dict()
    assert not torch.equal(fresh["net.fc.weight"], want["net.fc.weight"])

    out = tmp_path / "m.safetensors"
    run_all(Trainer(cfg, data, out=out, start_from=base))  # lr ~0: the weights stay the base's
    got = weights(out)
    assert torch.allclose(got["net.fc.weight"], want["net.fc.weight"], atol=1e-5)

    with pytest.raises(ModelFileError, match="it is a resnet-mnist-small.*--arch resnet-mnist-small"):
        Trainer(with_overrides(cfg, arch="resnet-mnist-8"), data, start_from=base)
    other = write_model(tmp_path / "letters.safetensors", classes=list("abcdefghij"))
    with pytest.raises(ModelFileError, match="it knows the classes"):
        Trainer(cfg, data, start_from=other)
    with pytest.raises(ModelFileError):
        Trainer(cfg, data, start_from=tmp_path / "missing.safetensors")
