"""Renders docs/screenshot-train.png: the real window after a short Fashion-MNIST run
with the objects recipe (6,000 images, 4 epochs: about a minute on 2 cores).

Run under a display, e.g.:
    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/make_screenshot_train.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402

from docs.screenshot_kit import start_app  # noqa: E402


def main() -> int:
    os.environ.setdefault("RESNET_STUDIO_HOME", tempfile.mkdtemp())  # the run's files
    app = start_app()
    from app.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(1280, 880)
    window.show()
    window.tabs.setCurrentWidget(window.train_tab)
    tab = window.train_tab
    f = tab.form
    f.dataset_combo.setCurrentIndex(f.dataset_combo.findData("fashion-mnist"))  # objects recipe
    f.epochs_spin.setValue(4)
    f.limit_spin.setValue(6000)
    tab.device_selector.set_device("cpu")
    loop = QEventLoop()
    tab.running_changed.connect(lambda running: running or loop.quit())
    QTimer.singleShot(600_000, loop.quit)
    if not tab.start_training():
        print(f"could not start: {f.error()}")
        return 1
    loop.exec()
    for _ in range(10):
        app.processEvents()
    out = ROOT / "docs" / "screenshot-train.png"
    window.grab().save(str(out))
    print(f"wrote {out}: {tab.last_model()}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
