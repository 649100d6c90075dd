"""How sure the shipped digit model says it is, and whether it notices non-digits.

The temperature and thresholds come from the model's own 500 validation digits (the
trainer's seeded split of the 5k training digits); the MNIST test digits are only
measured. The model outputs are computed once for the module.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.core import calibration as cal
from app.core import ood
from app.core.data import load_builtin, split_train_val
from app.core.modelio import load_model
from app.core.preprocess import prepare
from app.core.resources import default_model_path
from tests.helpers.digits import MNIST_DIR, MNIST_MISSING, draw_digit
from tests.helpers.ood import ood_images

pytestmark = [
    pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=MNIST_MISSING),
    pytest.mark.skipif(not default_model_path().is_file(), reason="shipped model not built yet (make model)"),
    pytest.mark.slow,
]
CANVAS_PEN = 0.09 * 280  # the canvas's default pen on its 280 px rendering (gui/settings.py)


@pytest.fixture(scope="module")
def shipped():
    model, card = load_model(default_model_path())
    data = load_builtin("mnist", MNIST_DIR, "train")
    assert not card.recipe.get("limit"), "the shipped model was trained on all 5k digits"
    _, val_idx = split_train_val(len(data), card.recipe["val_fraction"], card.recipe["seed"])
    test = load_builtin("mnist", MNIST_DIR, "test").subset(torch.arange(2000))
    val_z, _ = ood.logits_and_features(model, data.images[val_idx])
    test_z, _ = ood.logits_and_features(model, test.images)
    return {
        "model": model, "classes": card.classes,
        "val": (val_z.numpy(), data.labels[val_idx].numpy()),
        "test": (test_z.numpy(), test.labels.numpy()),
        "T": cal.fit_temperature(val_z, data.labels[val_idx]).temperature,
    }  # fmt: skip


def _logits(model, pixels: list[np.ndarray]) -> np.ndarray:
    z, _ = ood.logits_and_features(model, torch.from_numpy(np.stack(pixels)).unsqueeze(1))
    return z.numpy()


def test_temperature_from_its_own_validation_digits_calibrates_the_shipped_model(shipped):
    """Label smoothing left it under-confident (ECE ~9%); T < 1 fixes that on digits it
    never saw, without changing a single answer."""
    z, y = shipped["test"]
    t = shipped["T"]
    before, after = cal.calibration_report(z, y), cal.calibration_report(z, y, t)
    assert 0.3 < t < 0.8
    assert before.ece > 0.05 and after.ece < 0.015
    assert after.nll < before.nll
    assert after.accuracy == before.accuracy


def test_the_shipped_card_carries_the_temperature_fitted_on_its_validation_digits(shipped):
    """`python -m app calibrate` wrote it; a retrained model must be recalibrated."""
    card = load_model(default_model_path())[1]
    assert card.temperature == pytest.approx(shipped["T"], rel=1e-4)
    assert card.abstain is not None and card.abstain["score"] == "energy"


def test_a_clear_canvas_digit_is_shown_at_least_98_percent_sure(shipped):
    pixels = [prepare(draw_digit(d, 280, pen=CANVAS_PEN)).pixels for d in range(10)]
    p = cal.softmax(_logits(shipped["model"], pixels), shipped["T"])
    assert (p.argmax(1) == np.arange(10)).all()
    assert p.max(1).min() >= 0.98, np.round(p.max(1), 4)
    assert cal.softmax(_logits(shipped["model"], pixels)).max(1).mean() < 0.95  # before: ~92%


def test_rule_fitted_on_validation_digits_keeps_to_its_budget_and_flags_non_digits(shipped):
    """Post-hoc, on a model that never saw a non-digit, the best a confidence threshold
    does within a 1% budget is about 40-60% of non-digits (bench/calibration_ood.py);
    the >= 90% target needs outlier exposure (see docs/calibration.md)."""
    val_z, _ = shipped["val"]
    rule = ood.fit_abstain_rule(val_z, "msp", shipped["T"])
    assert rule.flags(val_z).mean() <= 0.01
    test_z, _ = shipped["test"]
    assert rule.flags(test_z).mean() <= 0.015
    items = [it for it in ood_images(30, seed=3) if not it.blank and not it.lookalike]
    flagged = rule.flags(_logits(shipped["model"], [it.pixels for it in items]))
    assert flagged.mean() >= 0.3
    verdicts = rule.judge(_logits(shipped["model"], [it.pixels for it in items[:40]]), shipped["classes"])
    assert {v.message for v in verdicts if v.kind == "foreign"} <= {"this does not look like a digit"}
