"""Renders docs/screenshot-classify.png: the real window with a drawn digit.

Run under a display, e.g.:
    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/make_screenshot_classify.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docs.screenshot_kit import start_app, wait_for, wait_for_drawing  # noqa: E402


def main() -> int:
    app = start_app()
    from app.gui.main_window import MainWindow
    from tests.helpers.digits import digit_strokes
    from tests.helpers.qt_drawing import draw_strokes

    model = sys.argv[1] if len(sys.argv) > 1 else None
    window = MainWindow(model_path=model)
    window.resize(1180, 820)
    window.show()
    wait_for(window.classify_tab.model_loaded)
    tab = window.classify_tab
    draw_strokes(tab.canvas, digit_strokes()["7"], fill=0.72)
    wait_for_drawing(tab)
    for _ in range(5):
        app.processEvents()
    out = ROOT / "docs" / "screenshot-classify.png"
    window.grab().save(str(out))
    print(f"wrote {out}: {tab.result.prediction_label.text()!r} {tab.result.confidence_label.text()}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
