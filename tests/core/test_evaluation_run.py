"""Evaluating a model file on a folder, a validation split or a builtin set: progress,
cancel, the same scores as the plain model, saliency thumbnails."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.core import evaluation_run
from app.core.config import TrainConfig
from app.core.datarequest import DataRequest
from app.core.evaluation_run import (
    EvalSource,
    load_source,
    run_source,
    saliency_thumbnails,
    score_with_progress,
)
from app.core.folders import folder_spec
from app.core.mistakes import score_samples
from tests.helpers.digits import draw_digit
from tests.helpers.models import write_model


@pytest.fixture
def folder_source(tmp_path) -> EvalSource:
    root = tmp_path / "digits"
    for c, d in zip("abc", (1, 4, 7)):
        (root / c).mkdir(parents=True)
        for i in range(4):
            draw_digit(d, 40 + 4 * i).save(root / c / f"{c}{i}.png")
    model = write_model(tmp_path / "m.safetensors", classes=list("abc"), spec=folder_spec(28, 1))
    return EvalSource(str(model), DataRequest(str(root), image_size=28, channels=1))


def test_scores_come_in_chunks_with_progress_and_match_the_plain_model(folder_source, monkeypatch):
    monkeypatch.setattr(evaluation_run, "CHUNK", 5)
    predictor, data = load_source(folder_source)
    assert len(data) == 12 and data.classes == list("abc") and len(data.paths) == 12
    seen = []
    scores = score_with_progress(predictor, data, lambda done, total, eta: seen.append((done, total, eta)))
    assert [s[0] for s in seen] == [5, 10, 12] and seen[-1][1:] == (12, 0.0)
    plain = score_samples(predictor.model, data.images, data.labels)
    np.testing.assert_allclose(scores.probabilities, plain.probabilities, atol=1e-4)
    assert scores.confusion().sum() == 12


def test_cancel_returns_nothing(folder_source):
    predictor, data = load_source(folder_source)
    cancel = threading.Event()
    cancel.set()
    assert score_with_progress(predictor, data, cancel=cancel) is None


@pytest.mark.parametrize("limit", [0, 10])
def test_the_validation_split_is_the_one_training_held_out(folder_source, limit):
    from app.core.recalibration import training_split

    config = TrainConfig(val_fraction=0.25, seed=3, limit=limit)
    _, everything = load_source(folder_source)
    source = run_source(folder_source.model, folder_source.data, config)
    _, val = load_source(source)
    limited, _, expected = training_split(everything, config)
    assert val.paths == [limited.paths[int(i)] for i in expected]
    assert len(val) == round(0.25 * (limit or 12)) and len(set(val.paths)) == len(val)
    assert "validation (25% of train, seed 3)" in source.describe()


def test_a_run_without_validation_is_judged_on_its_training_images(folder_source):
    source = run_source(folder_source.model, folder_source.data, TrainConfig(val_fraction=0.0))
    assert len(load_source(source)[1]) == 12


def test_classes_that_do_not_match_the_model_are_a_readable_error(folder_source, tmp_path):
    from dataclasses import replace

    from app.core.data import DataError

    other = write_model(tmp_path / "o.safetensors", classes=["a", "b", "z"], spec=folder_spec(28, 1))
    with pytest.raises(DataError, match="z"):
        load_source(replace(folder_source, model=str(other)))


def test_saliency_thumbnails_are_coloured_pictures_per_image(folder_source):
    predictor, data = load_source(folder_source)
    pics = saliency_thumbnails(predictor, data.images[:3], [0, 1, 2], zoom=3)
    assert [p.shape for p in pics] == [(84, 84, 3)] * 3 and all(p.dtype == np.uint8 for p in pics)


def test_a_model_on_data_with_other_classes_is_refused_readably(tmp_path):
    from app.core.data import DataError, default_data_dir

    if default_data_dir("fashion-mnist") is None:
        pytest.skip("Fashion-MNIST not installed (Debian dataset-fashion-mnist)")
    model = write_model(tmp_path / "digits.safetensors")  # classes 0..9
    with pytest.raises(DataError, match=r"model knows 10 classes \(0, 1, 2, 3, ...\).*T-shirt"):
        load_source(EvalSource(str(model), DataRequest("fashion-mnist")))


def test_the_views_probabilities_are_the_calibrated_ones(folder_source):
    import json

    from app.core.modelio import card_path

    card = json.loads(card_path(folder_source.model).read_text())
    card["temperature"] = 0.5
    card_path(folder_source.model).write_text(json.dumps(card))
    predictor, data = load_source(folder_source)
    scores = score_with_progress(predictor, data)
    sharp = score_samples(predictor.model, data.images, data.labels, temperature=0.5)
    raw = score_samples(predictor.model, data.images, data.labels)
    np.testing.assert_allclose(scores.probabilities, sharp.probabilities, atol=1e-4)
    assert (scores.predicted == raw.predicted).all() and scores.confidence.mean() > raw.confidence.mean()


def test_saliency_thumbnails_of_colour_images(tmp_path):
    from app.core.predictor import Predictor

    model = write_model(tmp_path / "rgb.safetensors", classes=list("xy"), spec=folder_spec(32, 3))
    predictor = Predictor.load(model)
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    pics = saliency_thumbnails(predictor, images, [0, 1], zoom=2)
    assert [p.shape for p in pics] == [(64, 64, 3)] * 2
