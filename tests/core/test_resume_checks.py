"""A resume continues the same run or is refused, naming what differs: the data, any
setting of the recipe, or a model file given where a checkpoint is meant."""

from __future__ import annotations

import pytest
import torch

from app.core.checkpoint import RESUME_KEYS
from app.core.config import TrainConfig, TrainingError, with_overrides
from app.core.data import FASHION_CLASSES, MNIST_CLASSES, Dataset
from app.core.models import FASHION_SPEC, MNIST_SPEC
from app.core.training import Trainer

TINY = TrainConfig(arch="resnet-mnist-small", epochs=2, batch_size=16, seed=0, device="cpu", threads=1)


def random_data(name: str, seed: int = 0, classes=MNIST_CLASSES, spec=MNIST_SPEC) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (40, 1, 28, 28), generator=g, dtype=torch.uint8)
    return Dataset(images, torch.arange(40) % 10, list(classes), spec, name, "tests")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "m.safetensors"
    run = Trainer(TINY, random_data("mnist"), out=out).run()
    for ev in run:  # stop after the first epoch: an interrupted run with a checkpoint
        if type(ev).__name__ == "EpochEvent":
            break
    run.close()
    return out.with_suffix(".ckpt")


def test_the_same_run_resumes(checkpoint):
    list(Trainer(TINY, random_data("mnist"), resume=checkpoint).run())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"augment": False}, "augment=True, this run has False"),  # --no-augment
        ({"hflip": True}, "hflip=False, this run has True"),
        ({"label_smoothing": 0.0}, "label_smoothing=0.1, this run has 0.0"),
        ({"ema_decay": 0.0}, "ema_decay=0.998, this run has 0.0"),
        ({"rotate_deg": 5.0}, "rotate_deg=12.0, this run has 5.0"),
    ],
)
def test_a_resume_with_another_recipe_setting_names_it(checkpoint, change, message):
    with pytest.raises(TrainingError, match=message):
        Trainer(with_overrides(TINY, **change), random_data("mnist"), resume=checkpoint)


def test_every_setting_but_where_and_how_fast_is_checked():
    assert set(RESUME_KEYS) == {f for f in TrainConfig().to_dict()} - {"device", "precision", "threads", "channels_last"}


def test_a_resume_on_other_data_is_refused_before_training(checkpoint):
    fashion = random_data("fashion-mnist", seed=1, classes=FASHION_CLASSES, spec=FASHION_SPEC)
    with pytest.raises(TrainingError, match=r"made on mnist \(40 images, 10 classes\); this run trains on fashion-mnist"):
        Trainer(TINY, fashion, resume=checkpoint)
    with pytest.raises(TrainingError, match="same name and size, but other images or labels"):
        Trainer(TINY, random_data("mnist", seed=2), resume=checkpoint)


def test_a_model_file_given_to_resume_says_what_resume_takes(checkpoint):
    model = checkpoint.with_suffix(".safetensors")
    assert not model.exists()  # the run was interrupted: only its checkpoint is there
    list(Trainer(TINY, random_data("mnist"), out=checkpoint.parent / "done.safetensors").run())
    done = checkpoint.parent / "done.safetensors"
    with pytest.raises(TrainingError, match=r"this is a model file, not a training checkpoint.*Did you mean --resume .*done\.ckpt\? To train"):
        Trainer(TINY, random_data("mnist"), resume=done)
    done.with_suffix(".ckpt").unlink()
    with pytest.raises(TrainingError, match=r"A finished model cannot be resumed\. To train .*fine-tune it: --init .*done\.json"):
        Trainer(TINY, random_data("mnist"), resume=done.with_suffix(".json"))
