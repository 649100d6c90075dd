"""Renders docs/screenshot-photo.png: the real window after dropping a phone photo with
two digits on ruled paper, and a batch of photos in the table below.

Run under a display (or QT_QPA_PLATFORM=offscreen), e.g.:
    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/make_screenshot_photo.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docs.screenshot_kit import start_app, wait_for  # noqa: E402


def two_digit_photo(path: Path) -> None:
    """A notebook photo (tests.helpers.photos) with a second, smaller digit written on it."""
    import random

    import numpy as np
    from PIL import Image

    from tests.helpers.handwriting import random_digit_ink
    from tests.helpers.photos import make_sample

    img = make_sample("ruled", 3, 5).image.convert("RGB")
    ink, _ = random_digit_ink(8, random.Random(1), img.height * 0.06, (0.05, 0.07))
    a = np.asarray(img, np.float32)
    h, w = ink.shape
    y, x = int(img.height * 0.78), int(img.width * 0.3)  # well apart from the first digit
    a[y : y + h, x : x + w] *= 1 - 0.9 * ink[..., None]
    Image.fromarray(a.astype(np.uint8)).save(path, quality=85)


def main() -> int:
    app = start_app()
    from app.gui.main_window import MainWindow
    from tests.helpers.photos import make_sample

    window = MainWindow()
    window.resize(1180, 980)
    window.show()
    tab = window.classify_tab
    wait_for(tab.model_loaded)
    tmp = Path(tempfile.mkdtemp())
    batch = []
    for k, (cond, i) in enumerate([("phone", 4), ("edge", 8), ("grid", 5), ("whiteboard", 2), ("chalk", 6)]):
        p = tmp / f"{k}_{cond}.jpg"
        make_sample(cond, i, 5).image.convert("RGB").save(p, quality=85)
        batch.append(str(p))
    from PIL import Image

    page = make_sample("ruled", 0, 5).image.convert("RGB")
    Image.new("RGB", page.size, (245, 243, 236)).save(tmp / "blank_ruled.jpg")
    batch.append(str(tmp / "blank_ruled.jpg"))
    tab.classify_paths(batch)
    wait_for(tab.batch_done)
    two = tmp / "two_digits.jpg"
    two_digit_photo(two)
    tab.classify_paths([str(two)])
    wait_for(tab.batch_done)
    for _ in range(10):
        app.processEvents()
    out = ROOT / "docs" / "screenshot-photo.png"
    window.grab().save(str(out))
    print(f"wrote {out}: {tab.result.prediction_label.text()!r} {tab.result.hint_label.text()!r}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
