"""Accuracy reports: the numbers match the predictions, per class and overall."""

from __future__ import annotations

import json

import pytest
import torch

from app.core import calibration as cal
from app.core.evaluation import evaluate_model, reprepare
from app.core.modelio import card_path
from app.core.predictor import Predictor
from app.core.resources import default_model_path
from tests.helpers.data import drawn_digits
from tests.helpers.digits import MNIST_DIR, MNIST_MISSING
from tests.helpers.models import write_model


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.load(write_model(tmp_path_factory.mktemp("m") / "m.safetensors"))


def test_accuracy_and_confusion_agree_with_the_predictions(predictor):
    data = drawn_digits(per_class=3)
    result = evaluate_model(predictor, data)
    preds = predictor.model(data.images.float().div(255)).argmax(1)
    correct = int((preds == data.labels).sum())
    assert result.n == 30 and result.accuracy == pytest.approx(correct / 30)
    assert sum(map(sum, result.confusion)) == 30
    assert [sum(row) for row in result.confusion] == [3] * 10
    assert sum(result.confusion[i][i] for i in range(10)) == correct
    for i, acc in enumerate(result.per_class):
        assert acc == pytest.approx(result.confusion[i][i] / 3)
    j = result.to_json()
    assert j["n"] == 30 and set(j["per_class"]) == set(predictor.classes)
    report = result.report()
    assert f"({correct}/30)" in report and "per class" in report


def test_ece_and_nll_are_of_the_probabilities_the_app_shows(tmp_path, predictor):
    data = drawn_digits(per_class=3)
    path = write_model(tmp_path / "c.safetensors")
    card = json.loads(card_path(path).read_text())
    card["temperature"] = 0.5
    card_path(path).write_text(json.dumps(card))
    calibrated = Predictor.load(path)
    raw, shown = evaluate_model(predictor, data), evaluate_model(calibrated, data)
    z = predictor.model(data.images.float().div(255)).detach()
    assert shown.accuracy == raw.accuracy  # a temperature never changes an answer
    assert shown.nll == pytest.approx(cal.nll(z, data.labels, 0.5), rel=1e-4)
    assert shown.ece == pytest.approx(cal.ece(cal.softmax(z, 0.5), data.labels.numpy()), abs=1e-4)
    assert shown.ece_uncalibrated == pytest.approx(raw.ece) and raw.nll == pytest.approx(raw.loss, rel=1e-4)
    j = shown.to_json()
    assert j["calibrated"] is True and j["temperature"] == 0.5 and {"ece", "nll"} <= j.keys()
    assert "as shown (T = 0.5)" in shown.report() and "never calibrated" in raw.report()


def test_through_preprocess_runs_every_image_through_prepare(predictor):
    data = drawn_digits(per_class=2)
    # drawn_digits are already prepared: preparing again must change (almost) nothing.
    again = reprepare(data, predictor)
    assert again.shape == data.images.shape
    assert (again.float() - data.images.float()).abs().mean() < 3
    assert evaluate_model(predictor, data, through_preprocess=True).through_preprocess


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=MNIST_MISSING)
def test_real_mnist_images_give_a_report_for_every_class(predictor):
    from app.core.data import load_builtin

    data = load_builtin("mnist", MNIST_DIR, "test").subset(torch.arange(500))
    result = evaluate_model(predictor, data)
    assert result.n == 500 and len(result.per_class) == 10
    assert "mnist" in result.dataset and result.model.endswith("m.safetensors")


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=MNIST_MISSING)
@pytest.mark.skipif(
    not default_model_path().is_file(), reason="shipped model not built yet (make model)"
)
@pytest.mark.slow
def test_shipped_model_keeps_its_accuracy_through_the_app_preprocessing():
    """The "same preprocessing" guarantee end to end: MNIST test digits handled like
    dropped files are read as well as the digits themselves."""
    from app.core.data import load_builtin

    data = load_builtin("mnist", MNIST_DIR, "test").subset(torch.arange(2000))
    shipped = Predictor.load()
    plain = evaluate_model(shipped, data)
    prepared = evaluate_model(shipped, data, through_preprocess=True)
    assert prepared.through_preprocess and prepared.n == 2000
    assert prepared.accuracy >= 0.985
    assert prepared.accuracy >= plain.accuracy - 0.005
