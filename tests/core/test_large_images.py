"""A huge image in a small file (a 49 MP PNG of ~200 KB) with the digit models (digit and
fit mode): reduced in bands before any float conversion, so `prepare()` adds little to
the decoded image and `classify` stays well under 1 GB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.core.images import reduced
from app.core.models import FASHION_SPEC
from app.core.preprocess import prepare
from tests.helpers.models import write_model

REPO = Path(__file__).resolve().parents[2]


def test_reduced_in_bands_equals_pillows_reduce_in_every_mode(monkeypatch):
    from app.core import images

    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 256, (203, 157, 4), dtype=np.uint8), "RGBA")
    for mode in ("L", "RGB", "RGBA", "P", "LA", "1", "I;16", "F", "CMYK"):
        img = base.convert(mode) if mode not in ("I;16", "F") else Image.fromarray(
            np.asarray(base.convert("L")).astype(np.uint16 if mode == "I;16" else np.float32) * 3
        )
        whole = reduced(img, 5)
        monkeypatch.setattr(images, "REDUCE_BAND_PIXELS", 2000)  # ~15 rows a band
        banded = reduced(img, 5)
        monkeypatch.undo()
        assert banded.size == whole.size == (32, 41), mode
        assert banded.mode in ("L", "RGB", "RGBA", "I", "F")
        diff = np.abs(np.asarray(banded, dtype=np.float64) - np.asarray(whole, dtype=np.float64))
        assert diff.max() <= 1, mode


def test_fit_mode_on_a_large_image_keeps_the_placement_in_source_pixels():
    img = Image.new("L", (5000, 3000), 255)
    ImageDraw.Draw(img).rectangle((1000, 500, 2000, 2500), fill=0)
    small = img.resize((500, 300), Image.Resampling.BOX)
    big, ref = prepare(img, FASHION_SPEC), prepare(small, FASHION_SPEC)
    assert np.abs(big.pixels.astype(int) - ref.pixels.astype(int)).mean() < 3
    x0, y0, x1, y1 = big.placement.source_box(FASHION_SPEC.size)
    # The object (1000..2000 x 500..2500) is fitted into the square: its long side fills it.
    assert abs(y0 - 500) < 40 and abs(y1 - 2500) < 40 and abs((x0 + x1) / 2 - 1500) < 40


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures with Linux /proc")
def test_a_49_mp_png_stays_well_under_1_gb_in_digit_and_fit_mode(tmp_path):
    files = []
    for mode in ("RGBA", "P"):
        big = Image.new("RGBA" if mode == "RGBA" else "L", (7000, 7000), (255, 255, 255, 0) if mode == "RGBA" else 255)
        ImageDraw.Draw(big).ellipse((2500, 1500, 4500, 5500), outline=(0, 0, 0, 255) if mode == "RGBA" else 0, width=250)
        (big if mode == "RGBA" else big.convert("P")).save(tmp_path / f"big-{mode}.png")
        files.append(str(tmp_path / f"big-{mode}.png"))
    assert max(os.path.getsize(f) for f in files) < 1_000_000
    fit = write_model(tmp_path / "fit.safetensors", spec=FASHION_SPEC)
    script = (
        "import json, sys\n"
        "from app.cli import main\n"
        "from app.core.images import load_image\n"
        "from app.core.models import FASHION_SPEC, MNIST_SPEC\n"
        "from app.core.preprocess import prepare\n"
        "def hwm():\n"
        "    return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) // 1024\n"
        f"files = {files!r}\n"
        # The whole process's peak first: imports, both models, both files.
        f"rc = main(['classify', '--json', *files]) + main(['classify', '--json', '--model', {str(fit)!r}, *files])\n"
        "peak = hwm()\n"
        "extra = {}\n"
        "for f in files:\n"
        "    img = load_image(f)\n"
        "    for spec in (MNIST_SPEC, FASHION_SPEC):\n"
        "        open('/proc/self/clear_refs', 'w').write('5')  # restarts VmHWM from now\n"
        "        before = hwm()\n"
        "        assert not prepare(img, spec).blank\n"
        "        extra[f'{f[-8:]} {spec.mode}'] = hwm() - before\n"
        "    del img\n"
        "print(json.dumps({'rc': rc, 'extra_mb': extra, 'peak_mb': peak}), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["rc"] == 0
    # Beyond the decoded image (196 MB as RGBA): 1.5 GB in fit mode and 200 MB in digit
    # mode before (a float copy of the whole image; Pillow's premultiplied RGBA copy).
    assert max(report["extra_mb"].values()) < 100, report
    assert report["peak_mb"] < 900, report  # ~550 MB of it is torch and the app
