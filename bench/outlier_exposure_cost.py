"""What outlier exposure costs a training run: step time with and without it, measured in
alternating rounds in one process (two trainers' generators driven in turn), and the
one-off cost of drawing the outlier pool.

    python bench/outlier_exposure_cost.py [--rounds 6] [--steps 5] [--weight 0.5]

The digit recipe (resnet-mnist, batch 64) on the 5k MNIST training digits, CPU, 1 thread.
Writes bench/results/outlier_exposure_cost.json.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common as C
import torch

from app.core.config import with_overrides
from app.core.data import load_builtin
from app.core.events import StepEvent
from app.core.recipes import default_config
from app.core.training import Trainer


def _steps(run, n: int) -> list[float]:
    """Seconds between consecutive step events, for the next n steps of a run."""
    out, t = [], time.perf_counter()
    while len(out) < n:
        ev = next(run)
        if isinstance(ev, StepEvent):
            now = time.perf_counter()
            out.append(now - t)
            t = now
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=5, help="steps per round and run")
    ap.add_argument("--weight", type=float, default=0.5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    C.report_load()
    data = load_builtin("mnist", C.MNIST_DIR, "train")
    base = with_overrides(default_config("mnist"), device="cpu", epochs=1)
    runs = {}
    t0 = time.perf_counter()
    runs["plain"] = Trainer(base, data).run()
    _steps(runs["plain"], 1)  # set-up and the first (warm-up) step
    setup_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    runs["oe"] = Trainer(with_overrides(base, outlier_exposure=args.weight), data).run()
    _steps(runs["oe"], 1)
    setup_oe = time.perf_counter() - t0
    times: dict[str, list[float]] = {"plain": [], "oe": []}
    for r in range(args.rounds):
        for name in ("plain", "oe") if r % 2 == 0 else ("oe", "plain"):
            times[name] += _steps(runs[name], args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["oe"] / med["plain"]
    res = {
        "machine": C.machine(), "rounds": args.rounds, "steps_per_round": args.steps, "weight": args.weight,
        "step_s_median": med, "ratio_oe_to_plain": ratio,
        "setup_s": {"plain": setup_plain, "oe": setup_oe}, "pool_extra_s": setup_oe - setup_plain,
    }  # fmt: skip
    print(f"median step: plain {med['plain'] * 1000:.0f} ms, outlier exposure {med['oe'] * 1000:.0f} ms: "
          f"x{ratio:.2f}; pool and set-up {setup_oe - setup_plain:.0f} s extra (once per run)")  # fmt: skip
    C.write_results("outlier_exposure_cost", res)


if __name__ == "__main__":
    main()
