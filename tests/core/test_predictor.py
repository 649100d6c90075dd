"""Predictor.predict_paths as the CLI and the batch panel drive it: in order, stoppable
between files, each loaded image handed out (thumbnails), one bad batch not the end."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from app.core.images import ImageLoadError
from app.core.modelio import card_path
from app.core.predictor import Prediction, Predictor
from tests.helpers.digits import draw_digit
from tests.helpers.models import write_model


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.load(write_model(tmp_path_factory.mktemp("model") / "m.safetensors"))


@pytest.fixture
def files(tmp_path):
    paths = []
    for i in range(7):
        p = tmp_path / f"{i}.png"
        draw_digit(i, 64).save(p)
        paths.append(p)
    return paths


def test_cancel_stops_between_files_with_an_event_or_a_callable(predictor, files):
    cancel = threading.Event()
    seen = []
    for path, result in predictor.predict_paths(files, batch_size=2, cancel=cancel):
        seen.append(path)
        assert isinstance(result, Prediction)
        if len(seen) == 3:
            cancel.set()
    # files 0-3 were classified together (batch of 2, 2): the 4th is the end of its batch
    assert seen == files[:4]
    loaded = []
    out = list(predictor.predict_paths(files, batch_size=1, cancel=lambda: len(loaded) >= 2,
                                       on_image=lambda p, im: loaded.append(p)))  # fmt: skip
    assert [p for p, _ in out] == files[:2] and loaded == files[:2]


def test_every_loaded_image_is_handed_out_in_order(predictor, files, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    handed = []
    results = list(predictor.predict_paths([files[0], bad, files[1]], on_image=lambda p, im: handed.append((p, im.size))))
    assert [type(r).__name__ for _, r in results] == ["Prediction", "ImageLoadError", "Prediction"]
    assert handed == [(files[0], (64, 64)), (files[1], (64, 64))]


def test_a_failing_batch_fails_its_files_and_the_rest_go_on(predictor, files, monkeypatch):
    real = predictor.predict_prepared
    calls = {"n": 0}

    def flaky(prepared, top_k=5):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("out of memory")
        return real(prepared, top_k)

    monkeypatch.setattr(predictor, "predict_prepared", flaky)
    results = list(predictor.predict_paths(files, batch_size=4))
    assert [p for p, _ in results] == files
    failed = [r for _, r in results[:4]]
    assert all(isinstance(r, ImageLoadError) and "classification failed: out of memory" in r.problem for r in failed)
    assert all(isinstance(r, Prediction) for _, r in results[4:])


def _calibrated(path, temperature, rule):
    card = json.loads(card_path(path).read_text())
    card.update(temperature=temperature, abstain=rule)
    card_path(path).write_text(json.dumps(card))
    return Predictor.load(path)


def test_the_cards_temperature_scales_every_probability_and_never_changes_the_answer(tmp_path):
    path = write_model(tmp_path / "m.safetensors", classes=["cat", "dog", "bird"])
    image = draw_digit(4, 64)
    raw = Predictor.load(path)
    assert raw.temperature == 1.0 and not raw.calibrated
    logits = raw.logits(raw._to_batch([raw.prepare(image)]))[0].double()
    sharp = _calibrated(path, 0.25, None)
    p = sharp.predict(image, top_k=3)
    assert p.calibrated and p.to_json()["calibrated"] is True
    assert p.probabilities == pytest.approx(torch.softmax(logits / 0.25, 0).tolist(), abs=1e-5)
    assert p.label == raw.predict(image).label
    assert p.confidence > raw.predict(image).confidence  # T < 1 sharpens
    e = sharp.explain(sharp.prepare(image))  # the heat map's caption shows the same number
    # (explanations run in fp32; predictions in bf16 where that measured faster here)
    tol = 1e-4 if sharp.inference_precision().dtype is None else 2e-2
    assert float(e.probabilities[p.index]) == pytest.approx(p.confidence, abs=tol)


def test_verdicts_use_the_fitted_rule_and_the_classes_names(tmp_path):
    path = write_model(tmp_path / "m.safetensors", classes=["cat", "dog", "bird"])
    image = draw_digit(4, 64)
    foreign = _calibrated(path, 1.0, {"score": "energy", "threshold": -1e30}).predict(image)
    assert foreign.verdict == "foreign" and foreign.headline == "this does not look like cat, dog or bird"
    unsure = _calibrated(path, 1.0, {"score": "energy", "threshold": 1e30, "unsure_ratio": 0.0}).predict(image)
    a, b = (lbl for lbl, _ in unsure.top_k[:2])
    assert unsure.verdict == "unsure" and unsure.headline == f"not sure: {a} or {b}?"
    ok = _calibrated(path, 1.0, {"score": "energy", "threshold": 1e30, "unsure_ratio": 1.0}).predict(image)
    assert ok.verdict == "ok" and ok.headline == ok.label and "verdict_message" not in ok.to_json()
