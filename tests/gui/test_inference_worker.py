"""The inference thread: the model runs off the GUI thread; the latest drawing wins."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from app.gui.inference_worker import InferenceThread
from tests.helpers.digits import draw_digit


@pytest.fixture
def inference(qtbot, shipped_model):
    t = InferenceThread()
    with qtbot.waitSignal(t.worker.model_loaded, timeout=60_000):
        t.worker.load_model(str(shipped_model))
    yield t
    t.shutdown()


def test_live_requests_run_in_the_worker_and_the_latest_wins(inference, qtbot):
    import numpy as np

    emitted_in: set[int] = set()
    inference.worker.prediction_ready.connect(
        lambda *_: emitted_in.add(threading.get_ident()), Qt.ConnectionType.DirectConnection
    )
    seen: list[int] = []
    inference.worker.prediction_ready.connect(lambda rid, _p: seen.append(rid))
    images = [np.asarray(draw_digit(d % 10, 140)) for d in range(20)]
    with qtbot.waitSignal(inference.worker.prediction_ready, timeout=30_000, check_params_cb=lambda rid, _p: rid == 20) as blocker:
        for rid, image in enumerate(images, 1):
            inference.worker.submit(rid, image)
    assert blocker.args[1].label == "9"  # request 20 draws digit 19 % 10
    assert seen == sorted(seen) and len(seen) < 20, "stale requests must be dropped"
    assert emitted_in and threading.get_ident() not in emitted_in  # never on the GUI thread


def test_a_missing_model_is_reported_readably(inference, qtbot, tmp_path):
    with qtbot.waitSignal(inference.worker.model_failed, timeout=30_000) as blocker:
        inference.worker.load_model(str(tmp_path / "nope.safetensors"))
    assert "nope" in blocker.args[1] and "not found" in blocker.args[1]


def test_shutdown_stops_a_running_batch(inference, qtbot, tmp_path):
    for i in range(200):
        draw_digit(i % 10, 64).save(tmp_path / f"{i:03}.png")
    with qtbot.waitSignal(inference.worker.batch_started, timeout=30_000):
        inference.worker.classify_paths([str(tmp_path)])
    inference.shutdown()
    assert inference.thread.isFinished()
