"""prepare() cost: a 12 MP phone photo and a 1200x1600 one through the photo front end,
vs a canvas drawing through the clean fast path (and, for reference, through the front end).

    python bench/photo_preprocess.py [--rounds 8] [--per-round 5]

One thread (torch, and the front end's scipy/Pillow calls are single-threaded anyway).
The cases are measured in interleaved rounds (A B C D, B C D A, ...), so a change in the
machine's load hits them alike. CPU time per call is what one dedicated core would take.
Writes bench/results/photo_preprocess.json.
"""

from __future__ import annotations

import argparse
import itertools
import time

import _common as C
import numpy as np
import torch
from inference_latency import draw_digit

from app.core.preprocess import prepare
from tests.helpers.photos import make_sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--per-round", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    C.report_load("before photo_preprocess")
    canvas = draw_digit("3")
    phone = itertools.cycle([make_sample("phone", i, 3).image for i in range(3)])
    big = itertools.cycle([make_sample("fine12mp", i, 3).image for i in range(3)])
    cases = {
        "canvas 280x280, clean path (the canvas)": lambda: prepare(canvas, clean=True),
        "canvas 280x280, photo front end": lambda: prepare(canvas),
        "phone photo 1200x1600 (JPEG decoded)": lambda: prepare(next(phone)),
        "12 MP photo 4000x3000, fine pen (JPEG decoded)": lambda: prepare(next(big)),
    }
    samples: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in cases}
    names = list(cases)
    for fn in cases.values():  # warm-up: imports, caches
        fn()
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for _ in range(args.per_round):
                t, c = time.perf_counter(), time.process_time()
                cases[name]()
                samples[name]["wall"].append((time.perf_counter() - t) * 1000)
                samples[name]["cpu"].append((time.process_time() - c) * 1000)
    rows, results = [], {"machine": C.machine(), "rounds": args.rounds, "per_round": args.per_round}
    base = float(np.median(samples[names[0]]["cpu"]))
    for name in names:
        s = samples[name]
        cpu50 = float(np.median(s["cpu"]))
        results[name] = {
            "wall_p50_ms": C.percentile(s["wall"], 50),
            "wall_p99_ms": C.percentile(s["wall"], 99),
            "cpu_p50_ms": cpu50,
            "cpu_p99_ms": C.percentile(s["cpu"], 99),
        }
        rows.append([name, C.percentile(s["wall"], 50), C.percentile(s["wall"], 99), cpu50,
                     C.percentile(s["cpu"], 99), f"{cpu50 / base:.1f}x"])  # fmt: skip
    print()
    C.print_table(["prepare()", "p50 ms", "p99 ms", "CPU p50 ms", "CPU p99 ms", "CPU vs canvas"], rows)
    C.report_load("after")
    C.write_results("photo_preprocess", results)


if __name__ == "__main__":
    main()
