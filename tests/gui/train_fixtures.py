"""Fixtures shared by the Train tab and trainer thread tests (imported by those modules)."""

from __future__ import annotations

from pathlib import Path

import pytest
import shiboken6

from app.gui import trainer_thread

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.fixture
def mnist_dir() -> Path:
    """The 5k-image MNIST subset next to the checkout (../shared/data/mnist)."""
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"MNIST test data not found at {SHARED_MNIST} (needs the ../shared folder)")
    return SHARED_MNIST


@pytest.fixture
def studio_home(tmp_path, monkeypatch) -> Path:
    """Models, checkpoints and downloads go to a temp folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("RESNET_STUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def warm_torch() -> None:
    """The warm-up the main window runs on the first visit of the Train tab: a first
    run's one-off imports (torch._dynamo, ~1000 modules) would otherwise land in the
    first test's timings."""
    from app.core.warmup import warm_up

    warm_up()


@pytest.fixture(autouse=True)
def no_dangling_trainer_threads(monkeypatch):
    """Fails a test that leaves a TrainerThread running (and stops it, so the next
    tests are not disturbed)."""
    started: list[trainer_thread.TrainerThread] = []
    original = trainer_thread.TrainerThread.start

    def start(self, *args):
        started.append(self)
        original(self, *args)

    monkeypatch.setattr(trainer_thread.TrainerThread, "start", start)
    yield started
    # A deleted thread was deleted after it finished (TrainTab uses deleteLater).
    dangling = [t for t in started if shiboken6.isValid(t) and t.isRunning()]
    for t in dangling:
        t.cancel()
        t.wait(30_000)
    assert not dangling, f"{len(dangling)} TrainerThread(s) still running after the test"
