"""The core and the CLI run where Qt is not installed (servers, CI, headless use)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import app.core

REPO = Path(__file__).resolve().parents[2]
CORE_MODULES = sorted(
    f"app.core.{p.stem}"
    for p in Path(app.core.__file__).parent.glob("*.py")
    if p.stem != "__init__"
)

SCRIPT = """
import importlib, importlib.abc, sys

class NoQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph"):
            raise ImportError(f"{name} is blocked for this test")
        return None

sys.meta_path.insert(0, NoQt())
for name in sys.argv[1:]:
    importlib.import_module(name)
from app.cli import build_parser
build_parser().parse_args(["classify", "x.png"])
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph"))
assert not leaked, leaked
print("ok", len(sys.argv) - 1)
"""


def test_every_core_module_and_the_cli_import_without_qt():
    expected = {
        "app.core.training", "app.core.preprocess", "app.core.config", "app.core.recipes",
        "app.core.events", "app.core.augment", "app.core.evaluation", "app.core.warmup",
        "app.core.fileio", "app.core.modelio", "app.core.predictor", "app.core.datarequest",
        "app.core.checkpoint", "app.core.ema", "app.core.control",
    }  # fmt: skip
    assert expected <= set(CORE_MODULES)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *CORE_MODULES, "app.cli"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"ok {len(CORE_MODULES) + 1}"


def test_the_cli_parser_and_the_recipes_do_not_import_torch():
    # The parser runs before the GUI starts and for --help; torch takes seconds to import.
    script = (
        "import sys\n"
        "from app.cli import build_parser\n"
        "build_parser().parse_args(['train', '--recipe', 'objects'])\n"
        "import app.core.recipes, app.core.config, app.core.fileio, app.core.formatting\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_the_blocker_really_blocks_qt():
    # Guards the test above: the same finder makes a Qt import fail.
    script = SCRIPT.split("for name")[0] + "import PySide6.QtCore\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "blocked for this test" in proc.stderr
