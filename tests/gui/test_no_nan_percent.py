"""No "nan%" on screen: every percentage the GUI shows goes through `percent()`, which
shows a dash for a value that is not a number (NaN confidence, ECE of NaN logits)."""

from __future__ import annotations

import re
from pathlib import Path

from app.core.evaluation import EvalResult
from app.core.formatting import percent
from app.gui.confusion_view import ConfusionView

GUI = Path(__file__).resolve().parents[2] / "app" / "gui"


def test_percent_never_says_nan_or_inf():
    assert percent(0.973) == "97.3%" and percent(1, 0) == "100%" and percent(0.5, 2) == "50.00%"
    for bad in (float("nan"), float("inf"), -float("inf"), None, "99%"):
        assert percent(bad) == "–"


def test_the_gui_formats_no_percentage_by_itself():
    raw = [
        f"{f.name}: {m.group(0)}"
        for f in sorted(GUI.glob("*.py"))
        for m in re.finditer(r"\{[^{}]*:[^{}]*%\}", f.read_text())
    ]
    assert raw == [], "use app.core.formatting.percent (NaN shows as a dash): " + ", ".join(raw)


def test_a_nan_accuracy_bar_and_a_nan_ece_report_show_a_dash(qtbot):
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.set_data(["a", "b"], [[1, 0], [0, 1]], [float("nan"), 1.0])
    view.grab()  # paints without raising; the bar's text is percent(nan) = "–"
    nan = float("nan")
    report = EvalResult(0.5, nan, [0.5, 0.5], [[1, 1], [1, 1]], ["a", "b"], 4, "d", "m", False).report()
    assert "nan%" not in report and "–" in report
