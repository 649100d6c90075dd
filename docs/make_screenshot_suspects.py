"""Renders docs/screenshot-suspects.png: the Evaluate tab's suspect-label list for an
image folder with wrong labels in it.

600 real MNIST training digits are written as PNG files into class folders (in a
temporary folder), 30 of them (5%) into a wrong one at random (seed 0, as
tests/core/test_mistakes.py); resnet-mnist-small is trained on the folder (10 epochs,
about a minute of CPU); the app evaluates that model on its own training folder and
the screenshot shows the list. Prints how many of the 30 most suspect files are the
mislabelled ones.

Run under a display, e.g.:
    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/make_screenshot_suspects.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docs.screenshot_kit import start_app, wait_for  # noqa: E402


def make_folder_and_model(tmp: Path) -> tuple[Path, Path, set[str]]:
    import numpy as np
    from PIL import Image

    from app.core.config import TrainConfig
    from app.core.data import load_builtin, load_image_folder
    from app.core.models import MNIST_SPEC
    from app.core.training import Trainer

    mnist = load_builtin("mnist", None, "train")
    rng = np.random.default_rng(0)
    labels = mnist.labels.numpy()
    picked = np.concatenate([rng.choice(np.flatnonzero(labels == c), 60, replace=False) for c in range(10)])
    flipped = set(rng.choice(len(picked), 30, replace=False).tolist())
    wrong: set[str] = set()
    root = tmp / "my-digits"
    for j, i in enumerate(picked):
        label = int(labels[i])
        if j in flipped:
            label = (label + int(rng.integers(1, 10))) % 10
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{j:04d}.png"
        Image.fromarray(mnist.images[i, 0].numpy()).save(path)
        if j in flipped:
            wrong.add(str(path))
    data = load_image_folder(root, MNIST_SPEC)
    config = TrainConfig(arch="resnet-mnist-small", epochs=10, batch_size=32, lr=0.05, val_fraction=0.0, device="cpu")
    model = tmp / "my-digits-model.safetensors"
    for _ in Trainer(config, data, out=model).run():
        pass
    return root, model, wrong


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="suspects-"))
    app = start_app(str(tmp / "settings"))
    root, model, wrong = make_folder_and_model(tmp)

    from app.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(1180, 820)
    window.show()
    wait_for(window.classify_tab.model_loaded, ms=300_000)
    ev = window.evaluate_tab
    window.tabs.setCurrentWidget(ev)
    ev.model_edit.setText(str(model))
    ev.set_folder(str(root))
    ev.split.setCurrentIndex(ev.split.findData("train"))
    ev.evaluate_form()
    wait_for(ev.evaluation_done, ms=300_000)
    ev.right.setCurrentWidget(ev.suspects)
    ev.suspects.table.selectRow(0)
    for _ in range(5):
        app.processEvents()
    top = ev.suspects.suspects()[: len(wrong)]
    found = sum(s.path in wrong for s in top)
    out = ROOT / "docs" / "screenshot-suspects.png"
    window.grab().save(str(out))
    print(f"wrote {out}: {found}/{len(wrong)} mislabelled files among the {len(top)} most suspect; "
          f"{ev.summary.text()!r}")  # fmt: skip
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
