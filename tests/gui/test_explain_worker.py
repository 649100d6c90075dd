"""Explanations run in the inference thread, latest request wins, failures are messages."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.gui.explain_worker import ExplainRequest
from app.gui.inference_worker import InferenceThread
from tests.helpers.digits import draw_digit


@pytest.fixture
def inference(qtbot, shipped_model):
    t = InferenceThread()
    with qtbot.waitSignal(t.worker.model_loaded, timeout=60_000):
        t.worker.load_model(str(shipped_model))
    yield t
    t.shutdown()


def test_explanations_run_in_the_inference_thread_and_the_latest_wins(inference, qtbot):
    where: set[int] = set()
    ex = inference.explainer
    ex.explanation_ready.connect(lambda *_: where.add(threading.get_ident()), Qt.ConnectionType.DirectConnection)
    seen: list[int] = []
    ex.explanation_ready.connect(lambda rid, _v: seen.append(rid))
    images = [np.asarray(draw_digit(d % 10, 140)) for d in range(12)]
    with qtbot.waitSignal(ex.explanation_ready, timeout=30_000, check_params_cb=lambda rid, _v: rid == 12) as b:
        for rid, image in enumerate(images, 1):
            ex.submit(ExplainRequest(rid, image, target=3 if rid == 12 else None))
    views = b.args[1]
    assert views.explanation.target == 3 and views.caption.startswith(("why 3", "why not 3"))
    assert views.input_overlay.shape == (140, 140, 3)
    assert seen == sorted(seen) and len(seen) < 12, "stale requests must be dropped"
    assert where and threading.get_ident() not in where  # never on the GUI thread


def test_a_file_is_read_again_and_a_blank_one_explained_as_a_message(inference, qtbot, tmp_path):
    draw_digit(2, 200).save(tmp_path / "two.png")
    np_white = np.full((100, 100), 255, np.uint8)
    ex = inference.explainer
    with qtbot.waitSignal(ex.explanation_ready, timeout=30_000) as b:
        ex.submit(ExplainRequest(1, path=str(tmp_path / "two.png")))
    assert b.args[1].source_overlay.shape[:2] == (200, 200)
    with qtbot.waitSignal(ex.explanation_failed, timeout=30_000) as b:
        ex.submit(ExplainRequest(2, np_white))
    assert "nothing to classify" in b.args[1]
    with qtbot.waitSignal(ex.explanation_failed, timeout=30_000) as b:
        ex.submit(ExplainRequest(3, path=str(tmp_path / "missing.png")))
    assert "missing.png" in b.args[1]
