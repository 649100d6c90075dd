"""Renders docs/screenshot-teach.png (a misread European 1 corrected on the Classify tab)
and docs/screenshot-my-examples.png (My examples with Personalise running): the real
window, with a synthetic writer's drawings as the user's examples.

Run under a display, e.g.:
    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/make_screenshot_personalise.py
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["RESNET_STUDIO_HOME"] = tempfile.mkdtemp()  # never the user's own examples

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from docs.screenshot_kit import start_app, wait_for  # noqa: E402


def main() -> int:
    app = start_app()
    from app.core.personal import PersonalStore
    from app.gui.main_window import MainWindow
    from tests.helpers.qt_drawing import draw_strokes
    from tests.helpers.writers import PLUS, WRITERS, Writer

    writer = WRITERS["continental"]
    rng = random.Random(7)
    store = PersonalStore()
    for d in "01234567":
        for _ in range(6):
            store.add(d, writer.drawing(d, rng))
    plus = Writer("plus", glyphs={"+": PLUS})
    for _ in range(8):
        store.add("+", plus.drawing("+", rng))

    window = MainWindow()
    window.resize(1180, 820)
    window.show()
    wait_for(window.classify_tab.model_loaded)
    window.load_train_tab()
    tab = window.classify_tab
    one = writer.drawing("1", random.Random(3))
    draw_strokes(tab.canvas, [list(s) for s in one.strokes], fill=1.0)
    wait_for(tab.prediction_shown)
    QTest.keyClick(tab, Qt.Key.Key_1)  # "it is a 1"
    tab.add_example("1")
    for _ in range(5):
        app.processEvents()
    out = ROOT / "docs" / "screenshot-teach.png"
    window.grab().save(str(out))
    print(f"wrote {out}: read as {tab.result.prediction_label.text()!r}, corrected to {tab.teach.label()!r}")

    view = window.examples_tab
    window.tabs.setCurrentWidget(view)
    view.refresh()
    view.classes.setCurrentRow(view.classes.count() - 1)  # the new class, "+"
    view.personalise()
    thread = view.thread
    wait_for(thread.steps, 600_000)
    wait_for(thread.steps, 60_000)
    for _ in range(5):
        app.processEvents()
    out = ROOT / "docs" / "screenshot-my-examples.png"
    window.grab().save(str(out))
    print(f"wrote {out}: {view.status.text()!r}")
    view.stop()
    thread.wait()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
