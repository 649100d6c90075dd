"""Calibrating a saved model on its own validation split (`python -m app calibrate`, and
the trainer at the end of a run): the card gains a temperature and a 'not sure' rule,
the weights stay as they are, and no test image is used to choose anything."""

from __future__ import annotations

import json

import pytest
import torch

from app.core.config import TrainConfig
from app.core.data import Dataset
from app.core.modelio import ModelFileError, card_path, load_model, read_card
from app.core.recalibration import calibrate, recalibrate_file, training_split
from tests.helpers.data import drawn_digits
from tests.helpers.models import random_model, write_model


def _with_recipe(path, **recipe) -> None:
    card = json.loads(card_path(path).read_text())
    card["recipe"] = {"val_fraction": 0.25, "seed": 0, **recipe}
    card_path(path).write_text(json.dumps(card))


def test_training_split_is_seeded_disjoint_and_respects_the_limit():
    data = drawn_digits(12)
    cfg = TrainConfig(limit=100, val_fraction=0.2, seed=3)
    sub, train_idx, val_idx = training_split(data, cfg)
    again = training_split(data, cfg)
    assert len(sub) == 100 and len(val_idx) == 20 and len(train_idx) == 80
    assert set(train_idx.tolist()).isdisjoint(val_idx.tolist())
    assert torch.equal(val_idx, again[2]) and torch.equal(sub.images, again[0].images)
    other = training_split(data, TrainConfig(limit=100, val_fraction=0.2, seed=4))
    assert not torch.equal(sub.images[val_idx], other[0].images[other[2]])


def test_recalibrating_a_saved_model_rewrites_its_card_and_not_its_weights(tmp_path):
    path = write_model(tmp_path / "digits.safetensors")
    _with_recipe(path)
    weights = path.read_bytes()
    data = drawn_digits(12)
    card, result = recalibrate_file(path, data)
    assert path.read_bytes() == weights
    saved = read_card(path)
    assert saved.temperature == pytest.approx(result.temperature) == card.temperature
    assert 0.05 <= saved.temperature <= 20
    assert saved.abstain["score"] == "energy" and saved.abstain["n_val"] == 30 * 6  # + 5 augmented copies
    assert saved.metrics["val_nll"] <= saved.metrics["val_nll_uncalibrated"] + 1e-9
    assert "30 validation images" in saved.metrics["calibration_split"]
    # Test data is only measured: the fit is the same with it, and it lands in the metrics.
    test = drawn_digits(5, seed=9)
    card2, result2 = recalibrate_file(path, data, test)
    assert result2.temperature == result.temperature and card2.abstain == card.abstain
    assert {"test_ece", "test_ece_uncalibrated", "test_nll"} <= read_card(path).metrics.keys()


def test_the_fitted_rule_keeps_to_its_budget_on_the_images_it_was_read_off():
    data = drawn_digits(20)
    model = random_model()
    res = calibrate(model, data.images, data.labels, TrainConfig(augment=False))
    assert res is not None and res.n_reference == len(data)
    assert res.rule.flagged_val <= 0.01
    assert res.after.nll <= res.before.nll + 1e-9
    assert res.after.accuracy == res.before.accuracy  # a temperature never changes an answer


def test_data_of_other_classes_or_no_validation_split_is_a_clear_error(tmp_path):
    path = write_model(tmp_path / "digits.safetensors")
    _with_recipe(path)
    data = drawn_digits(6)
    letters = Dataset(data.images, data.labels, list("abcdefghij"), data.spec, "letters")
    with pytest.raises(ModelFileError, match="differ from the model's"):
        recalibrate_file(path, letters)
    _with_recipe(path, val_fraction=0.0)
    with pytest.raises(ModelFileError, match="no validation images"):
        recalibrate_file(path, data)
    assert load_model(path)[1].temperature is None  # nothing written
