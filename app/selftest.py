"""`resnet-studio --self-test`: checks that this installation works, end to end.

Run after every bundle build (`make bundle-test`) and usable from source
(`python -m app --self-test`). Everything it needs ships with the app: the digit model,
the sample digit images in `resources/samples/`, and random data for a training step;
it never reads outside the bundle, so it proves the bundle is complete.

Prints one summary line and returns 0, or prints each failed check with its reason and
returns 1.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Callable

EXIT_OK, EXIT_FAILED = 0, 1


class SelfTestError(Exception):
    """A check failed; str() says what a user or packager should look at."""


def _check_torch() -> str:
    import torch
    import torchvision
    from torchvision.ops import nms

    # A conv runs the oneDNN/BLAS path; nms needs torchvision's compiled operators, which
    # a bundle misses when torchvision's `_C_stable` library was not collected.
    y = torch.nn.functional.conv2d(torch.ones(1, 1, 5, 5), torch.ones(1, 1, 3, 3))
    if float(y.sum()) != 81.0:
        raise SelfTestError(f"torch computed a wrong convolution ({float(y.sum())} != 81)")
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    if keep.tolist() != [0, 2]:
        raise SelfTestError(f"torchvision.ops.nms returned {keep.tolist()}, expected [0, 2]")
    return f"torch {torch.__version__}, torchvision {torchvision.__version__}"


class _State:
    predictor = None  # the shipped model, loaded by the model check


def _check_model() -> str:
    from app.core.modelio import ModelFileError
    from app.core.predictor import Predictor
    from app.core.resources import default_model_path

    try:
        _State.predictor = Predictor.load(None)
    except ModelFileError as e:
        raise SelfTestError(f"cannot load the shipped model {default_model_path()}: {e}") from None
    return f"model {_State.predictor.card.summary()}"


def _check_samples() -> str:
    from app.core.images import ImageLoadError
    from app.core.resources import resource_path

    if _State.predictor is None:
        raise SelfTestError("skipped: no model")
    folder = resource_path("samples")
    files = sorted(folder.glob("digit_*.png"))
    if len(files) < 10:
        raise SelfTestError(f"expected 10 sample images digit_0..9.png in {folder}, found {len(files)}")
    wrong = []
    for path, result in _State.predictor.predict_paths(files):
        expected = re.fullmatch(r"digit_(\d)\.png", path.name)
        if isinstance(result, ImageLoadError):
            wrong.append(f"{path.name}: unreadable ({result.problem})")
        elif expected is None or result.label != expected.group(1):
            wrong.append(f"{path.name}: predicted {result.label} ({result.confidence:.0%})")
    if wrong:
        raise SelfTestError(f"{len(wrong)}/{len(files)} samples misclassified: " + "; ".join(wrong))
    return f"{len(files)}/{len(files)} sample digits correct"


def _check_gui() -> str:
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError as e:
        raise SelfTestError(f"PySide6 is not available ({e})") from None
    try:
        from app.gui.main_window import MainWindow
    except ImportError as e:
        raise SelfTestError(f"the main window (app.gui.main_window.MainWindow) is missing: {e}") from None
    from PySide6.QtCore import QSettings

    from app.gui.settings import AppSettings

    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        # Throw-away preferences: closing the window saves its geometry, which must not
        # overwrite the user's.
        settings = AppSettings(QSettings(os.path.join(tmp, "self-test.ini"), QSettings.Format.IniFormat))
        return _show_main_window(app, MainWindow(settings=settings))


def _show_main_window(app, window) -> str:
    try:
        window.show()
        for _ in range(5):
            app.processEvents()
        if not window.isVisible():
            raise SelfTestError("the main window did not become visible")
        size = window.size()
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
    return f"main window {size.width()}x{size.height()} ({app.platformName()})"


def _tiny_dataset():
    """64 digits for one training step: the samples through the app's preprocessing,
    repeated, so the check needs nothing outside the bundle."""
    import torch

    from app.core.data import Dataset
    from app.core.images import load_image
    from app.core.models import MNIST_SPEC
    from app.core.preprocess import prepare
    from app.core.resources import resource_path

    images, labels = [], []
    for d in range(10):
        path = resource_path("samples", f"digit_{d}.png")
        pixels = prepare(load_image(path), MNIST_SPEC).pixels if path.exists() else None
        if pixels is None:  # no sample: a random image still exercises the training path
            pixels = torch.randint(0, 256, (28, 28), generator=torch.Generator().manual_seed(d)).numpy()
        images.append(torch.as_tensor(pixels, dtype=torch.uint8).reshape(1, 28, 28))
        labels.append(d)
    x = torch.stack(images).repeat(7, 1, 1, 1)[:64]
    y = torch.tensor(labels, dtype=torch.int64).repeat(7)[:64]
    return Dataset(x, y, [str(d) for d in range(10)], MNIST_SPEC, "self-test samples")


def _check_training() -> str:
    import math

    from app.core.config import TrainConfig
    from app.core.events import EpochEvent, FinishedEvent, FinishStatus, StepEvent
    from app.core.training import Trainer

    config = TrainConfig(limit=64, epochs=1, batch_size=32, arch="resnet-mnist-small", device="cpu")
    trainer = Trainer(config, _tiny_dataset(), out=None)
    steps, epochs, finished = [], [], None
    for ev in trainer.run():
        if isinstance(ev, StepEvent):
            steps.append(ev.loss)
        elif isinstance(ev, EpochEvent):
            epochs.append(ev)
        elif isinstance(ev, FinishedEvent):
            finished = ev
    if not steps or not all(math.isfinite(v) for v in steps):
        raise SelfTestError(f"training produced no finite loss (losses: {steps})")
    if finished is None or finished.status is not FinishStatus.COMPLETED or len(epochs) != 1:
        raise SelfTestError(f"training did not complete its epoch ({finished})")
    return f"{len(steps)} training step(s) on cpu, loss {steps[-1]:.2f}"


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("torch", _check_torch),
    ("model", _check_model),
    ("samples", _check_samples),
    ("gui", _check_gui),
    ("training", _check_training),
]


def run_self_test() -> int:
    """Runs every check; prints a one-line summary (stdout) or the failures (stderr).

    Returns:
        0 when every check passed, 1 otherwise.
    """
    from app import __version__
    from app.core.resources import is_frozen

    t0 = time.perf_counter()
    passed, failed = [], []
    for name, check in CHECKS:
        try:
            passed.append(check())
        except SelfTestError as e:
            failed.append(f"{name}: {e}")
        except Exception as e:  # an unexpected crash is a failed check, with its type
            failed.append(f"{name}: {type(e).__name__}: {e}")
    where = "frozen" if is_frozen() else "source"
    elapsed = time.perf_counter() - t0
    if failed:
        for line in failed:
            print(f"self-test FAILED {line}", file=sys.stderr)
        print(
            f"self-test: {len(failed)} of {len(CHECKS)} checks failed "
            f"(ResNet Studio {__version__}, {where}, {elapsed:.1f} s)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"self-test passed (ResNet Studio {__version__}, {where}, {elapsed:.1f} s): " + "; ".join(passed))
    return EXIT_OK
