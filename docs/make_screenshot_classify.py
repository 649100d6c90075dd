"""Renders docs/screenshot-classify.png (the real window with a drawn 7) and
docs/screenshot-not-a-digit.png (a '#' drawn on the canvas, which the shipped model's card
rule calls "this does not look like a digit").

Run under a display, e.g.:
    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/make_screenshot_classify.py [MODEL]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docs.screenshot_kit import settle, start_app, wait_for, wait_for_drawing  # noqa: E402

HASH_SIGN = [[(0.35, 0.15), (0.3, 0.85)], [(0.65, 0.15), (0.6, 0.85)], [(0.15, 0.38), (0.85, 0.38)], [(0.15, 0.62), (0.85, 0.62)]]


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
    for strokes, name in ((digit_strokes()["7"], "screenshot-classify.png"), (HASH_SIGN, "screenshot-not-a-digit.png")):
        tab.clear()
        draw_strokes(tab.canvas, strokes, fill=0.72)
        wait_for_drawing(tab)
        settle(app, 100)
        out = ROOT / "docs" / name
        window.grab().save(str(out))
        r = tab.result
        print(f"wrote {out}: {r.prediction_label.text()!r} {r.confidence_label.text()!r} {r.hint_label.text()}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
