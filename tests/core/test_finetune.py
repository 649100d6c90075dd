"""Fine-tuning on my examples: the head extended and imprinted, early layers frozen,
replay mixed in, the before/after comparison and the card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from app.cli import main
from app.core.config import TrainingError
from app.core.events import FinishedEvent
from app.core.finetune import (
    FineTuner,
    build_finetuner,
    extend_head,
    freeze_except,
    head_of,
    penultimate,
    stages,
    trainable_modules,
)
from app.core.modelio import card_path, load_model
from app.core.models import build_model
from app.core.personal import PersonalStore
from app.core.recipes import FINETUNE, default_config
from app.core.replay import mixed, relabel
from tests.helpers.data import drawn_digits
from tests.helpers.models import random_model, write_model

torch.set_num_threads(1)


@pytest.fixture
def examples(tmp_path):
    """5 drawn 3s, 5 drawn 7s and 6 "plus" examples (a new class) in a store."""
    store = PersonalStore(tmp_path / "mine")
    data = drawn_digits(6, seed=3)
    for img, y in zip(data.images, data.labels.tolist()):
        if y in (3, 7) and len(store.examples(str(y))) < 5:
            store.add(str(y), pixels=img[0].numpy())
    for i in range(6):
        plus = np.zeros((28, 28), np.uint8)
        plus[5 + i % 2 : 23, 13:15] = 255
        plus[13:15, 5 : 23 - i % 3] = 255
        store.add("plus", pixels=plus)
    return store.root


def test_stages_of_both_architectures():
    small = build_model("resnet-mnist-small", 10, drawn_digits(1).spec)
    assert [len(s) for s in stages(small)] == [3, 3, 3]
    r18 = build_model("resnet18", 10, drawn_digits(1).spec)
    assert len(stages(r18)) == 4 and stages(r18)[-1] is r18.net.layer4


def test_freezing_keeps_only_the_last_stage_and_head_trainable():
    model = random_model()
    frozen_norms = freeze_except(model, trainable_modules(model, 1))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("net.layers.6", "net.layers.7", "net.layers.8", "net.fc")) for n in trainable)
    assert model.net.stem[1] in frozen_norms and model.net.layers[8].bn1 not in frozen_norms
    freeze_except(model, trainable_modules(model, 0))
    assert all(p.requires_grad for p in model.parameters())


def test_new_classes_are_imprinted_and_old_rows_kept():
    base = random_model()
    images = drawn_digits(2).images[:6]
    labels = torch.tensor([10, 10, 10, 11, 11, 11])
    model = extend_head(base, 12, images, labels)
    old, new = head_of(base), head_of(model)
    assert new.out_features == 12 and model.num_classes == 12 and head_of(base).out_features == 10
    assert torch.equal(new.weight[:10], old.weight) and torch.equal(new.bias[:10], old.bias)
    feats = nn.functional.normalize(penultimate(base, images), dim=1)
    cos = nn.functional.cosine_similarity(new.weight[10], feats[:3].mean(0), dim=0)
    assert cos > 0.999
    assert float(new.weight[10].detach().norm()) == pytest.approx(float(old.weight.detach().norm(dim=1).mean()), rel=1e-4)
    assert float(new.bias[11].detach()) == pytest.approx(float(old.bias.detach().mean()))


def test_replay_is_sampled_and_examples_repeated_to_their_share():
    personal = relabel(drawn_digits(1), [str(i) for i in range(10)])
    replay = drawn_digits(8)
    config = default_config("mnist", finetune=True, replay_size=60, personal_share=0.25)
    data, replayed = mixed(personal.subset(torch.arange(4)), replay, config)
    assert len(data) == 60 + 4 * 5  # 20 = a quarter of 80
    assert replayed.tolist() == [True] * 60 + [False] * 20
    renamed = relabel(drawn_digits(1), ["9", "8", "x"])
    assert renamed.labels.tolist() == [1, 0] and len(renamed) == 2


def test_the_recipe_table_holds_the_short_fine_tune():
    config = default_config("mnist", finetune=True)
    assert config.epochs == FINETUNE["epochs"] < default_config("mnist").epochs
    assert config.rotate_deg == default_config("mnist").rotate_deg  # the digit augmentation stays


def test_a_fine_tune_learns_a_new_class_and_records_base_examples_and_comparison(tmp_path, examples):
    base_path = write_model(tmp_path / "base.safetensors")
    out = tmp_path / "mine.safetensors"
    tuner = build_finetuner(base_path, examples, None, out=out, epochs=2, batch_size=16, channels_last=False)
    tuner.personal_train.source  # noqa: B018 - the examples' folder is kept
    events = list(tuner.run())
    done = events[-1]
    assert isinstance(done, FinishedEvent) and done.model_path == str(out)
    model, card = load_model(out)
    assert card.classes == [str(i) for i in range(10)] + ["plus"]
    ft = card.finetune
    assert ft["base_model"] == "base" and ft["new_classes"] == ["plus"]
    assert sum(ft["examples_per_class"].values()) + sum(ft["held_out_per_class"].values()) == 16
    assert ft["held_out_per_class"] == {"3": 1, "7": 1, "plus": 1}
    comparison = done.comparison
    assert comparison == ft["comparison"] and comparison["held_out_n"] == 3
    assert comparison["per_class"]["plus"]["before"] == 0.0  # the base has no such class
    base, _ = load_model(base_path)
    # early layers frozen: the stem and its BN statistics are the base's
    assert torch.equal(model.net.stem[0].weight, base.net.stem[0].weight)
    assert torch.equal(model.net.stem[1].running_mean, base.net.stem[1].running_mean)
    assert not torch.equal(model.net.layers[8].conv1.weight, base.net.layers[8].conv1.weight)
    # the trained stage learns, but BatchNorm keeps the base's statistics
    assert torch.equal(model.net.layers[8].bn1.running_var, base.net.layers[8].bn1.running_var)


def test_the_base_test_accuracy_is_read_off_its_card_only_for_the_same_split(tmp_path, examples):
    base_path = write_model(tmp_path / "base.safetensors")
    test = drawn_digits(3, seed=11)
    split = f"{test.name} test ({len(test)} images)"
    card = json.loads(card_path(base_path).read_text())
    card["metrics"] = {"test_accuracy": 0.4321, "test_split": split}
    card_path(base_path).write_text(json.dumps(card))
    tuner = build_finetuner(base_path, examples, None, epochs=1, batch_size=16, channels_last=False)
    tuner.comparison_test = relabel(test, tuner.base_card.classes)
    done = list(tuner.run())[-1]
    c = done.comparison
    assert c["test_split"] == split and c["test_before"] == 0.4321 and c["test_before_from_card"]
    assert 0.0 <= c["test_after"] <= 1.0
    assert tuner._recorded_test_accuracy("mnist test (10000 images)") is None  # another split: measured
    tuner.base_card.recipe = {"hflip": True}  # judged with a mirror: its number is not comparable
    assert tuner._recorded_test_accuracy(split) is None


def test_bad_fine_tunes_are_refused_with_a_reason(tmp_path, examples):
    base_path = write_model(tmp_path / "base.safetensors")
    with pytest.raises(TrainingError, match="keeps the base's architecture"):
        build_finetuner(base_path, examples, None, arch="resnet-mnist")
    fashion = write_model(tmp_path / "f.safetensors", spec=drawn_digits(1).spec.__class__(1, 32, (0.5,), (0.25,), "fit"))
    with pytest.raises(TrainingError, match="another input"):
        FineTuner(default_config("mnist", finetune=True, arch="resnet-mnist-small"), fashion,
                  relabel(drawn_digits(1), [str(i) for i in range(10)]))  # fmt: skip


def test_cli_fine_tune_prints_the_comparison(tmp_path, examples, capsys):
    base_path = write_model(tmp_path / "base.safetensors")
    out = tmp_path / "cli.safetensors"
    rc = main(["train", "--dataset", str(examples), "--init", str(base_path), "--epochs", "1",
               "--batch-size", "16", "--threads", "1", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "fine-tuning base on 13 examples (3 held out" in err and "new classes: plus" in err
    assert "before -> after: held-out examples (3)" in err
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["finetune"]["base_model"] == "base" and "--init" in card["command"]
    assert card["recipe"]["epochs"] == 1 and card["recipe"]["train_last_stages"] == FINETUNE["train_last_stages"]


@pytest.mark.parametrize(
    "argv, message",
    [(["--init", "x.safetensors"], "needs --dataset DIR"), (["--replay", "mnist"], "go with --init")],
)
def test_cli_fine_tune_mistakes(argv, message, capsys):
    assert main(["train", *argv]) != 0
    assert message in capsys.readouterr().err
