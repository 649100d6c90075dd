"""GUI responsiveness: event-loop stalls of the real MainWindow (offscreen) while it
trains and while it classifies 500 dropped images.

A QTimer heartbeat ticks every 10 ms on the GUI thread; a stall is how much later than
due a tick arrives. Phases: idle, training (Train tab, Fashion-MNIST, started with the
startButton like a user), classifying --files images (the Classify tab's drop path).
Driven only through the objectName automation contract (tabs, startButton, epochsSpin,
limitSpin, datasetCombo, trainProgress, resultsTable).

Target (moved here from tests/gui/test_train_tab.py, where a timed assertion failed on a
loaded machine): while training, no tick is more than --target-ms (100 ms) late; the
verdict is printed against the idle phase's stalls, which show how loaded the machine is.

Settings and user data go to a temporary folder, so the benchmark leaves the real
configuration alone.

    python bench/gui_responsiveness.py [--train-s 30] [--files 500]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

TMP = tempfile.mkdtemp(prefix="bench-gui-")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["XDG_CONFIG_HOME"] = str(Path(TMP) / "config")  # QSettings
os.environ["RESNET_STUDIO_HOME"] = str(Path(TMP) / "home")  # models, checkpoints

import _common as C  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractItemView,
    QApplication,
    QComboBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

TICK_MS = 10


class Heartbeat:
    """Records how late each 10 ms tick of a GUI-thread timer fires."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.stalls: list[float] = []
        self._last = 0.0

    def start(self) -> None:
        self.stalls = []
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return self.stalls

    def _tick(self) -> None:
        now = time.perf_counter()
        self.stalls.append(max(0.0, (now - self._last) * 1000 - TICK_MS))
        self._last = now


def pump(app: QApplication, seconds: float, until=None) -> bool:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        if until is not None and until():
            return True
        time.sleep(0.002)
    return False


def summary(name: str, stalls: list[float], seconds: float, extra: str = "") -> dict:
    return {
        "phase": name,
        "seconds": seconds,
        "ticks": len(stalls),
        "expected_ticks": int(seconds * 1000 / TICK_MS),
        "p50_ms": C.percentile(stalls, 50),
        "p99_ms": C.percentile(stalls, 99),
        "max_ms": max(stalls, default=0.0),
        "over_100ms": sum(s > 100 for s in stalls),
        "note": extra,
    }


def model_file() -> str | None:
    """The shipped model, else an untrained one in the temp folder (timing is the same)."""
    from app.core.resources import default_model_path

    if default_model_path().exists():
        return None
    import torch

    from app.core.modelio import ModelCard, save_model
    from app.core.models import MNIST_SPEC, build_model

    torch.manual_seed(0)
    model = build_model("resnet-mnist", 10, MNIST_SPEC).eval()
    card = ModelCard(
        name="bench", arch="resnet-mnist", classes=[str(i) for i in range(10)], input=MNIST_SPEC
    )
    return str(save_model(Path(TMP) / "bench.safetensors", model, card))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--idle-s", type=float, default=3.0)
    ap.add_argument("--train-s", type=float, default=30.0, help="seconds of training to watch")
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--timeout-s", type=float, default=600.0)
    ap.add_argument("--target-ms", type=float, default=100.0, help="largest stall allowed while training")
    args = ap.parse_args()
    C.report_load("before gui_responsiveness")
    info = C.machine()
    app = QApplication.instance() or QApplication([])

    from app.gui.main_window import MainWindow

    path = model_file()
    t = time.perf_counter()
    window = MainWindow(model_path=path) if path else MainWindow()
    window.show()
    tabs = window.findChild(QWidget, "tabs")
    table = window.findChild(QAbstractItemView, "resultsTable")
    start = window.findChild(QPushButton, "startButton")
    progress = window.findChild(QProgressBar, "trainProgress")
    missing = [
        n for n, w in (("tabs", tabs), ("resultsTable", table), ("startButton", start)) if w is None
    ]
    if missing:
        raise SystemExit(f"MainWindow lacks objectName(s) {missing}")
    pump(app, 1.0)
    print(f"window up in {time.perf_counter() - t:.2f} s")
    hb = Heartbeat()
    phases = []

    # --- idle ----------------------------------------------------------------------------
    hb.start()
    pump(app, args.idle_s)
    phases.append(summary("idle", hb.stop(), args.idle_s))

    # --- training ------------------------------------------------------------------------
    tabs.setCurrentIndex(1)
    combo = window.findChild(QComboBox, "datasetCombo")
    if combo is not None and combo.findData("fashion-mnist") >= 0:
        combo.setCurrentIndex(combo.findData("fashion-mnist"))
    for name, value in (("epochsSpin", 1), ("limitSpin", 20000)):
        spin = window.findChild(QSpinBox, name)
        if spin is not None:
            spin.setValue(value)
    pump(app, 0.3)
    train_tab = window.train_tab
    hb.start()
    t = time.perf_counter()
    start.click()
    started = pump(app, 60, lambda: train_tab.is_running())
    # Loading the data and building the model come first: up to the first progress.
    pump(app, 120, lambda: progress is not None and progress.value() > progress.minimum())
    secs = time.perf_counter() - t
    phases.append(
        summary("training start (click -> first progress)", hb.stop(), secs, f"started={started}")
    )
    hb.start()
    t = time.perf_counter()
    pump(app, args.train_s)
    secs = time.perf_counter() - t
    stalls = hb.stop()
    note = f"progress {progress.value() if progress else '?'}/{progress.maximum() if progress else '?'}"
    phases.append(summary("training (Fashion-MNIST, GUI's thread count)", stalls, secs, note))
    train_tab.stop_training()
    pump(app, 120, lambda: not train_tab.is_running())

    # --- classifying dropped files -------------------------------------------------------
    tabs.setCurrentIndex(0)
    from inference_latency import draw_digit
    from PIL import Image

    folder = Path(TMP) / "drop"
    folder.mkdir()
    paths = []
    for i in range(args.files):
        p = folder / f"img_{i:04d}.png"
        Image.fromarray(draw_digit(str(i % 10), jitter=0.02, seed=i)).save(p)
        paths.append(str(p))
    done = []
    window.classify_tab.batch_done.connect(lambda job, cancelled: done.append((job, cancelled)))
    pump(app, 0.5)
    hb.start()
    t = time.perf_counter()
    window.classify_tab.classify_paths(paths)
    finished = pump(app, args.timeout_s, lambda: bool(done))
    secs = time.perf_counter() - t
    rows_shown = table.model().rowCount() if table.model() is not None else -1
    phases.append(
        summary(
            f"classifying {args.files} dropped files", hb.stop(), secs,
            f"finished={finished}, {rows_shown} rows, {args.files / secs:.0f} img/s",
        )
    )  # fmt: skip

    window.close()
    pump(app, 2.0)
    rows = [
        [
            p["phase"],
            f"{p['seconds']:.1f}",
            p["ticks"],
            p["p50_ms"],
            p["p99_ms"],
            p["max_ms"],
            p["over_100ms"],
            p["note"],
        ]
        for p in phases
    ]
    print()
    C.print_table(
        ["phase", "s", "ticks", "p50 stall ms", "p99 stall ms", "max stall ms", "> 100 ms", "note"],
        rows,
    )
    idle, training = phases[0], phases[2]
    met = training["max_ms"] < args.target_ms
    print(
        f"\ntarget: max stall while training < {args.target_ms:.0f} ms: "
        f"{'met' if met else 'MISSED'} ({training['max_ms']:.0f} ms; idle max {idle['max_ms']:.0f} ms"
        + (", the idle loop already stalls: machine loaded" if idle["max_ms"] > args.target_ms / 2 else "")
        + ")"
    )
    C.report_load("after")
    C.write_results(
        "gui_responsiveness",
        {"machine": info, "tick_ms": TICK_MS, "phases": phases,
         "target_ms": args.target_ms, "target_met": met},
    )  # fmt: skip


if __name__ == "__main__":
    main()
