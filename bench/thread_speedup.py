"""How much faster the app's trainer runs on 2 threads than on 1, measured in one run.

`Trainer.run()` with a recipe (default: the dataset's), the torch thread count switched
between 1 and N every `--chunk` steps (the trainer never touches threads; the process
owner sets them, as the GUI and CLI do). Each step is timed from one StepEvent to the
next (wall and CPU); the first chunk of each setting is a warm-up. Alternating chunks
see the same load, so the ratio of medians is what to quote next to a 1-thread
CPU-second figure: quiet 2-core wall time ~= 1-thread CPU seconds / speedup.

    python bench/thread_speedup.py --which fashion --recipe objects --steps 240
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common as C
import torch
from time_to_accuracy import load, parse_overrides

from app.core.events import StepEvent
from app.core.recipes import default_config
from app.core.training import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--which", choices=["fashion", "mnist5k"], default="fashion")
    ap.add_argument("--recipe", default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="K=V", help="TrainConfig fields to override")
    ap.add_argument("--threads", type=int, default=2, help="the thread count compared with 1")
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument("--chunk", type=int, default=20)
    args = ap.parse_args()
    train, _ = load(args.which)
    cfg = default_config(train.name, args.recipe, device="cpu", **parse_overrides(args.set))
    C.report_load("start")
    info = C.machine()
    times: dict[int, list[tuple[float, float]]] = {1: [], args.threads: []}
    trainer = Trainer(cfg, train)
    t = c = None
    n = 0
    for ev in trainer.run():
        if not isinstance(ev, StepEvent):
            continue
        now, cpu = time.perf_counter(), time.process_time()
        if t is not None and n % args.chunk != 0:  # skip each chunk's first step: the switch
            times[torch.get_num_threads()].append((now - t, cpu - c))
        if n % args.chunk == 0:
            torch.set_num_threads(1 if (n // args.chunk) % 2 else args.threads)
        n += 1
        if n > args.steps:
            trainer.cancel()
        t, c = time.perf_counter(), time.process_time()
    C.report_load("end")
    rows, med = [], {}
    for k, v in times.items():
        v = v[args.chunk - 1 :]  # the first chunk of each setting warms up
        wall, cpu = statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)
        med[k] = wall
        rows.append([k, len(v), f"{cfg.batch_size / wall:.0f}", f"{cfg.batch_size / cpu:.0f}", f"{wall * 1000:.1f}"])
    C.print_table(["threads", "steps timed", "img/s wall", "img/CPU-s", "ms per step"], rows)
    speedup = med[1] / med[args.threads]
    print(f"{args.threads} threads / 1 thread: {speedup:.2f}x (wall per step, medians, same run)")
    C.write_results("thread_speedup", {"machine": info, "config": cfg.to_dict(), "speedup": speedup,
                                       "loadavg_end": list(C.load_avg()), "steps": {str(k): v for k, v in times.items()}})  # fmt: skip


if __name__ == "__main__":
    main()
