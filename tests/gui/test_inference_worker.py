"""The inference thread: the model runs off the GUI thread; the latest drawing wins."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QObject, Qt, Slot

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


def test_a_broken_model_chosen_during_a_batch_is_refused_at_once(inference, qtbot, tmp_path, monkeypatch, shipped_model):
    shipped = shipped_model
    from app.core import predictor as predictor_module

    for i in range(3):
        draw_digit(i, 64).save(tmp_path / f"{i}.png")
    gate = threading.Event()
    real = predictor_module.load_image

    def slow_load(path):  # the batch waits here until the test lets it go
        gate.wait(30)
        return real(path)

    monkeypatch.setattr(predictor_module, "load_image", slow_load)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x80\x04 not weights")
    broken.with_suffix(".json").write_text('{"arch": "resnet-mnist", "classes": "abc"}')
    gui = Listener()  # a widget's slots, in the GUI thread, as the Classify tab's are
    inference.worker.batch_finished.connect(gui.finished)
    inference.worker.model_failed.connect(gui.failed)
    inference.worker.model_loaded.connect(gui.loaded)
    with qtbot.waitSignal(inference.worker.batch_started, timeout=30_000):
        inference.worker.classify_paths([str(tmp_path)])
    try:
        inference.worker.load_model(str(broken))
        qtbot.waitUntil(lambda: bool(gui.events), timeout=30_000)
        assert gui.events[0][0] == "failed", "refused while the batch still runs"
        assert "broken" in gui.events[0][1] and "classes" in gui.events[0][2]
        # A good model chosen during the batch is read now and takes over after it.
        inference.worker.load_model(str(shipped))
    finally:
        gate.set()
    qtbot.waitUntil(lambda: len(gui.events) == 3, timeout=30_000)
    assert [e[0] for e in gui.events] == ["failed", "finished", "loaded"]
    assert gui.events[2][1] == str(shipped)


class Listener(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []

    @Slot(int, bool)
    def finished(self, job: int, _cancelled: bool) -> None:
        self.events.append(("finished", job))

    @Slot(str, str)
    def failed(self, path: str, message: str) -> None:
        self.events.append(("failed", path, message))

    @Slot(object, str, str)
    def loaded(self, _card: object, path: str, _device: str) -> None:
        self.events.append(("loaded", path))
