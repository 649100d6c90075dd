"""Predictor.predict_paths as the CLI and the batch panel drive it: in order, stoppable
between files, each loaded image handed out (thumbnails), one bad batch not the end."""

from __future__ import annotations

import threading

import pytest

from app.core.images import ImageLoadError
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
