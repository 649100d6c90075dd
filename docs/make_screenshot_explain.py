"""Renders docs/screenshot-explain.png ("Show why" on a drawn digit, and "why not" for
another class) and docs/screenshot-gallery.png (the Evaluate tab on the MNIST test
set: confusion matrix, per-class metrics, a cell's images with Grad-CAM).

Run under a display, e.g.:
    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/make_screenshot_explain.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from docs.screenshot_kit import settle, start_app, wait_for  # noqa: E402


def main() -> int:
    app = start_app()
    from app.gui.main_window import MainWindow
    from app.gui.topk_view import ROW_H
    from tests.helpers.digits import digit_strokes
    from tests.helpers.qt_drawing import draw_strokes

    window = MainWindow()
    window.resize(1180, 820)
    window.show()
    wait_for(window.classify_tab.model_loaded)
    tab = window.classify_tab
    tab.explain.toggle.setChecked(True)
    draw_strokes(tab.canvas, digit_strokes()["4"], fill=0.72)
    wait_for(tab.explain.explanation_shown)
    settle(app)
    out = ROOT / "docs" / "screenshot-explain.png"
    window.grab().save(str(out))
    print(f"wrote {out}: {tab.explain.caption.text()!r}")
    # "why not 9?": a click on the 9's bar
    QTest.mouseClick(tab.result.top_k, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(40, 2 + 9 * ROW_H + ROW_H // 2))  # fmt: skip
    wait_for(tab.explain.explanation_shown)
    settle(app)
    out = ROOT / "docs" / "screenshot-explain-why-not.png"
    window.grab().save(str(out))
    print(f"wrote {out}: {tab.explain.caption.text()!r}")

    from app.core.datarequest import DataRequest
    from app.core.evaluation_run import EvalSource

    ev = window.evaluate_tab
    window.tabs.setCurrentWidget(ev)
    ev.evaluate(EvalSource(tab.model_path(), DataRequest("mnist"), "test"))
    wait_for(ev.evaluation_done, 300_000)
    ev.gallery.saliency_toggle.setChecked(True)
    for _ in range(40):  # the first thumbnails' saliency
        settle(app, 250)
        if ev.gallery.model.saliency(min(11, ev.gallery.count() - 1)) is not None:
            break
    settle(app)
    out = ROOT / "docs" / "screenshot-gallery.png"
    window.grab().save(str(out))
    print(f"wrote {out}: {ev.summary.text()!r}; {ev.gallery.title.text()!r}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
