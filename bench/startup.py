"""Start-up time of the packaged app: launch to the main window on screen.

Launches the executable (default: the onedir bundle) with RESNET_STUDIO_EXIT_AFTER_SHOWN=1,
which makes the GUI print `window shown after X s` (X since process start) when its
main window is first exposed, then quit. The wall time from launch to that line is the
start-up time a user sees. Runs under Xvfb when it is installed (a real X11 window, as
on a desktop), else Qt's offscreen platform.

cold: the page cache is dropped before each run (`sync; echo 3 > /proc/sys/vm/drop_caches`,
      needs root), so every library is read from disk, like the first start after boot.
warm: the same binary again right away, libraries in the page cache.

    python bench/startup.py [EXECUTABLE] [--runs 5] [--source]

--source measures `python -m app` from the checkout instead of a bundle.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common as C

MARKER = "window shown after"
DEFAULT_EXE = C.ROOT / "dist" / "resnet-studio" / "resnet-studio"


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def start_display() -> tuple[dict, subprocess.Popen | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["RESNET_STUDIO_EXIT_AFTER_SHOWN"] = "1"
    xvfb = shutil.which("Xvfb")
    # QT_QPA_PLATFORM=offscreen wins (Qt's xcb plugin needs libxcb-cursor0, not everywhere).
    if xvfb is None or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        env["QT_QPA_PLATFORM"] = "offscreen"
        return env, None
    display = ":87"
    proc = subprocess.Popen([xvfb, display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.0)
    env["DISPLAY"] = display
    env["QT_QPA_PLATFORM"] = "xcb"
    return env, proc


def launch(cmd: list[str], env: dict, timeout: float = 120) -> tuple[float, float | None]:
    """(wall seconds from launch to the marker line, the app's own figure or None)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    wall, own = None, None
    for line in proc.stdout:
        if MARKER in line:
            wall = time.perf_counter() - t0
            try:
                own = float(line.split(MARKER, 1)[1].split()[0])
            except (IndexError, ValueError):
                own = None
            break
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
    if wall is None:
        err = proc.stderr.read() if proc.stderr else ""
        raise SystemExit(f"no '{MARKER}' line from {cmd[0]} (exit {proc.returncode}): {err[-2000:]}")
    return wall, own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("exe", nargs="?", default=str(DEFAULT_EXE))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--source", action="store_true", help="measure `python -m app` instead")
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "app"] if args.source else [args.exe]
    if not args.source and not Path(args.exe).is_file():
        raise SystemExit(f"{args.exe} not found; run `make bundle` first")
    env, xvfb = start_display()
    C.report_load("before")
    results: dict[str, list[float]] = {"cold": [], "warm": []}
    try:
        launch(cmd, env)  # first run: fills caches, fontconfig cache etc. (not counted)
        can_drop = drop_caches()
        for mode in ("cold", "warm"):
            if mode == "cold" and not can_drop:
                print("cold: skipped, cannot drop the page cache (needs root)")
                continue
            for _ in range(args.runs):
                if mode == "cold":
                    drop_caches()
                wall, own = launch(cmd, env)
                results[mode].append(wall)
                print(f"{mode}: {wall:.2f} s" + (f" (app: {own:.2f} s)" if own is not None else ""))
    finally:
        if xvfb is not None:
            xvfb.terminate()
    C.report_load("after")
    rows = [[m, len(v), statistics.median(v), min(v), max(v)] for m, v in results.items() if v]
    C.print_table(["start", "runs", "median s", "min s", "max s"], rows)
    C.write_results(
        "startup" + ("-source" if args.source else ""),
        {"machine": C.machine(), "command": cmd, "platform": env.get("QT_QPA_PLATFORM"),
         "runs": results},
    )  # fmt: skip


if __name__ == "__main__":
    main()
