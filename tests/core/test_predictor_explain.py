"""Predictor.explain: the fused, channels_last copy that the app runs explains like the
model as loaded, and the pictures for "Show why" land where the digit was drawn."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.explain_views import SOURCE_SIDE, explain_image
from app.core.modelio import ModelCard
from app.core.models import MNIST_SPEC
from app.core.predictor import Predictor
from tests.helpers.digits import draw_digit
from tests.helpers.models import random_model


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    from app.core.resources import default_model_path

    if not default_model_path().is_file():
        pytest.skip("the shipped model has not been trained yet (make model)")
    return Predictor.load(default_model_path())


def test_a_predictor_of_a_random_model_explains_too():
    card = ModelCard(name="t", arch="resnet-mnist", classes=[str(i) for i in range(10)], input=MNIST_SPEC)
    p = Predictor(random_model("resnet-mnist"), card)
    e = p.explain(p.prepare(np.asarray(draw_digit(4, 140))), method="ig")
    assert e.attribution.shape == (28, 28) and np.isfinite(e.attribution).all()


@pytest.mark.parametrize("method", ["gradcam", "ig"])
def test_fused_and_plain_models_give_the_same_explanation(predictor, method):
    prepared = predictor.prepare(np.asarray(draw_digit(4, 140)))
    for target in (None, 9):
        a = predictor.explain(prepared, target, method, fused=True, precision="fp32")
        b = predictor.explain(prepared, target, method, fused=False, precision="fp32")
        assert a.target == b.target and a.predicted == b.predicted
        assert float(np.abs(a.attribution).max()) > 0
        scale = float(np.abs(b.attribution).max())
        assert float(np.abs(a.attribution - b.attribution).max()) <= 1e-3 * scale
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
    # the app's default precision (a bf16 path on CPUs that have it) draws the same map
    auto = predictor.explain(prepared, 9, method).attribution.ravel()
    assert np.corrcoef(auto, a.attribution.ravel())[0, 1] > 0.99


def test_the_explanation_matches_what_predict_answers(predictor):
    image = np.asarray(draw_digit(7, 140))
    p = predictor.predict(image, top_k=10)
    e = predictor.explain(predictor.prepare(image))
    assert e.predicted == p.index
    # explanations run in fp32; predict in whichever precision measured faster here
    bf16 = predictor.inference_precision().dtype is not None
    np.testing.assert_allclose(e.probabilities, p.probabilities, atol=2e-2 if bf16 else 1e-5)


def test_views_put_the_heat_on_the_drawing_not_on_empty_paper(predictor):
    drawing = np.full((280, 280), 255, np.uint8)
    drawing[60:220, 170:200] = 0  # a "1" in the right half of the canvas
    v = explain_image(predictor, drawing, clean=True)
    assert v.source_heat.shape == (SOURCE_SIDE, SOURCE_SIDE, 4)
    assert v.input_overlay.shape == (140, 140, 3) and v.source_overlay.shape == (SOURCE_SIDE, SOURCE_SIDE, 3)
    alpha = v.source_heat[..., 3].astype(float)
    assert alpha[:, 140:].sum() > 3 * alpha[:, :140].sum()  # the left half is blank paper
    assert v.caption.startswith("why ") and "Grad-CAM" in v.caption


def test_a_blank_drawing_is_refused_with_a_reason(predictor):
    with pytest.raises(ValueError, match="blank|nothing"):
        explain_image(predictor, np.full((280, 280), 255, np.uint8), clean=True)
