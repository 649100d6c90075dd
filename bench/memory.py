"""Peak memory (RSS): training on Fashion-MNIST for a few hundred steps, and the GUI idle.

Each measurement runs in a fresh subprocess and reads VmHWM (peak RSS) and VmRSS from
/proc/self/status, so nothing else this script loaded is counted.

    python bench/memory.py [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _common as C

# Peak and current RSS (MiB) read by both child scripts.
STATUS = r"""
def status():
    d = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            d[k] = int(v.split()[0]) / 1024
    return d
"""

TRAIN = r"""
import json, sys
sys.path.insert(0, {root!r})
from bench._common import *  # noqa
{status}out = {{"start": status()}}
from app.core.data import load_builtin
from app.core.config import TrainConfig
from app.core.events import StepEvent
from app.core.training import Trainer
data = load_builtin("fashion-mnist", {data!r}, "train")
out["data_loaded"] = status()
cfg = TrainConfig(arch={arch!r}, epochs=1, device="cpu")
steps = 0
for ev in Trainer(cfg, data).run():
    if isinstance(ev, StepEvent):
        steps += 1
        if steps >= {steps}:
            break
out["after_steps"] = status()
out["steps"] = steps
out["batch_size"] = cfg.batch_size
print("RESULT " + json.dumps(out))
"""

GUI = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
{status}from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.gui.main_window import MainWindow
path = {model!r}
w = MainWindow(model_path=path) if path else MainWindow()
w.show()
end = time.perf_counter() + {idle}
while time.perf_counter() < end:
    app.processEvents()
    time.sleep(0.01)
out = {{"idle": status()}}
w.close()
app.processEvents()
print("RESULT " + json.dumps(out))
"""


def run(code: str, env: dict) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=C.ROOT, capture_output=True, text=True
    )
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"subprocess failed (rc {p.returncode}):\n{p.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--arch", nargs="+", default=["resnet-mnist"])
    ap.add_argument("--idle-s", type=float, default=5.0)
    args = ap.parse_args()
    C.report_load("before memory")
    info = C.machine()
    tmp = tempfile.mkdtemp(prefix="bench-mem-")
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM=env.get("QT_QPA_PLATFORM", "offscreen"),
        XDG_CONFIG_HOME=str(Path(tmp) / "config"),
        RESNET_STUDIO_HOME=str(Path(tmp) / "home"),
    )
    results: dict = {"machine": info, "training": {}}
    rows = []
    for arch in args.arch:
        r = run(
            TRAIN.format(
                status=STATUS, root=str(C.ROOT), data=str(C.ensure_fashion()), arch=arch, steps=args.steps
            ),
            env,
        )
        results["training"][arch] = r
        rows.append([
            f"training {arch}, Fashion-MNIST 60k, {r['steps']} steps x {r['batch_size']}",
            r["data_loaded"]["VmRSS"], r["after_steps"]["VmRSS"], r["after_steps"]["VmHWM"],
        ])  # fmt: skip
    from gui_responsiveness import model_file  # noqa: E402 (sets no env: imports only)

    r = run(GUI.format(status=STATUS, root=str(C.ROOT), model=model_file(), idle=args.idle_s), env)
    results["gui_idle"] = r
    rows.append(
        [
            f"GUI idle ({args.idle_s:g} s after the window is shown)",
            "-",
            r["idle"]["VmRSS"],
            r["idle"]["VmHWM"],
        ]
    )
    print()
    C.print_table(["process", "RSS after data load MiB", "RSS MiB", "peak RSS MiB"], rows)
    C.report_load("after")
    C.write_results("memory", results)


if __name__ == "__main__":
    main()
