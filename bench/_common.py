"""Shared helpers for the benchmarks: machine description, load, tables, JSON results,
matmul peak and FLOP counting. Benchmarks are not tests; CI does not run them.

Every script can be run as `python bench/NAME.py` from the repository root.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first, not the repo
    sys.path.insert(0, str(ROOT))

# Overridable for machines where the data lies elsewhere (the lent GPU machine).
FASHION_DIR = Path(os.environ.get("BENCH_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))
MNIST_DIR = Path(os.environ.get("BENCH_MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def load_avg() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> dict:
    """What the numbers were measured on, and how busy the machine was."""
    import torch

    return {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "loadavg_start": [round(v, 2) for v in load_avg()],
    }


def report_load(what: str = "") -> None:
    one, five, fifteen = load_avg()
    n = os.cpu_count() or 1
    note = " (busy: other processes share the CPU, numbers may be low)" if one > 0.5 * n else ""
    print(f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {n} CPUs{note} {what}".rstrip())


def write_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = dict(data)
    data.setdefault("machine", {})["loadavg_end"] = [round(v, 2) for v in load_avg()]
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table (pastes straight into docs/performance.md)."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    cells = [[fmt(v) for v in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for r in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def matmul_gflops(
    dtype_name: str = "float32", n: int = 2048, reps: int = 8, device: str = "cpu"
) -> dict:
    """GFLOP/s of an n^3 matmul: best (the machine's peak when we got the cores), median,
    and per CPU-second (load-independent; equals the per-core peak with 1 thread).
    On a GPU the product is synchronized; fp32 there means TF32 off (torch's default)."""
    import torch

    dtype = getattr(torch, dtype_name)
    if device != "cpu":
        n = max(n, 8192)  # a 2048^3 product is too small to load a GPU
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(2):
        a @ b
    sync()
    times, cpu = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        a @ b
        sync()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    flop = 2 * n**3
    return {
        "dtype": dtype_name,
        "n": n,
        "threads": torch.get_num_threads(),
        "best_gflops": flop / min(times) / 1e9,
        "median_gflops": flop / statistics.median(times) / 1e9,
        # per CPU-second: what one core delivers while it runs us, whatever the load
        "gflops_per_cpu_s": flop / statistics.median(cpu) / 1e9,
    }


def forward_flops(model, example) -> int:
    """Forward FLOPs of `model(example)` as torch's FlopCounterMode counts them
    (matmuls and convolutions, 2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    return int(counter.get_total_flops())


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def ensure_fashion() -> Path:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        sys.exit(
            f"Fashion-MNIST not found in {FASHION_DIR}; install it with "
            "`apt-get install -y dataset-fashion-mnist`"
        )
    return FASHION_DIR
