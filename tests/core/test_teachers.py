"""Runs from scratch that distil from an ensemble (app.core.teachers), and the two
settings such runs use: a validation split seed of its own, and keeping the last epoch."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from app.core.config import TrainConfig, TrainingError, with_overrides
from app.core.distill import teacher_tail
from app.core.events import FinishedEvent
from app.core.modelio import card_path, load_model
from app.core.recalibration import training_split
from app.core.teachers import Ensemble, TaughtTrainer, load_teachers
from app.core.training import Trainer
from tests.helpers.data import drawn_digits
from tests.helpers.models import random_model, write_model

TINY = TrainConfig(
    arch="resnet-mnist-8", epochs=2, batch_size=32, seed=0, device="cpu", threads=1,
    precision="fp32", channels_last=False,
)  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return drawn_digits(12)


def test_the_split_seed_alone_decides_the_held_out_images(data):
    _, _, val0 = training_split(data, TINY)
    _, _, val1 = training_split(data, with_overrides(TINY, seed=1))
    _, _, val1_0 = training_split(data, with_overrides(TINY, seed=1, split_seed=0))
    assert not torch.equal(val0, val1)
    assert torch.equal(val0, val1_0)
    with pytest.raises(TrainingError, match="split seed"):
        with_overrides(TINY, split_seed=-1).validate()


@pytest.mark.parametrize("keep_last", [False, True])
def test_keep_last_saves_the_last_epoch_whatever_validation_says(tmp_path, data, keep_last):
    out = tmp_path / "m.safetensors"
    trainer = Trainer(with_overrides(TINY, keep_last=keep_last), data, out=out)
    judged = trainer._evaluate
    accs = iter([0.9, 0.5])  # validation says the first epoch was the better one

    def worse_each_epoch(model, images, labels, n, **opts):
        loss, _, confusion = judged(model, images, labels, n, **opts)
        return loss, next(accs, 0.5), confusion

    trainer._evaluate = worse_each_epoch
    finished = list(trainer.run())[-1]
    assert isinstance(finished, FinishedEvent) and finished.best_epoch == (1 if keep_last else 0)
    if keep_last:  # the saved weights are the last epoch's average
        ema = trainer._ema.module.state_dict()
        saved = load_file(str(out))
        assert all(torch.equal(saved[k], ema[k].cpu()) for k in saved)


def test_the_ensemble_is_the_mean_of_its_members_logits():
    a, b = random_model(seed=1), random_model(seed=2)
    x = torch.rand(4, 1, 28, 28)
    ens = Ensemble([teacher_tail(a, 0), teacher_tail(b, 0)])
    with torch.no_grad():
        expected = (a(x) + b(x)) / 2
        got = ens(a.normalize(x))
    assert torch.allclose(got, expected, atol=1e-5)
    assert not any(p.requires_grad for p in ens.parameters())


def test_a_taught_run_distils_every_step_and_records_its_teachers(tmp_path, data):
    teachers = tuple(str(write_model(tmp_path / f"t{i}.safetensors", seed=i)) for i in (1, 2))
    config = with_overrides(TINY, epochs=1, teachers=teachers, distill_weight=1.0)
    out = tmp_path / "student.safetensors"
    trainer = TaughtTrainer(config, data, out=out)
    list(trainer.run())
    assert trainer._distill.last_distill > 0
    _, card = load_model(out)
    recipe = json.loads(card_path(out).read_text())["recipe"]
    assert recipe["teachers"] == list(teachers)
    assert TrainConfig.from_dict(recipe).teachers == teachers  # JSON's list read back as a tuple


def test_teachers_that_held_out_other_images_are_refused(tmp_path, data):
    path = str(write_model(tmp_path / "t.safetensors"))  # no recipe: seed 0's split
    assert len(load_teachers(with_overrides(TINY, teachers=(path,), distill_weight=1.0), data).nets) == 1
    other = with_overrides(TINY, seed=1, teachers=(path,), distill_weight=1.0)
    with pytest.raises(TrainingError, match="held out other validation images"):
        load_teachers(other, data)
    assert load_teachers(with_overrides(other, split_seed=0), data).nets
    with pytest.raises(TrainingError, match="distillation weight"):
        with_overrides(TINY, teachers=(path,)).validate()
