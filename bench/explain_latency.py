"""Explanation latency: one canvas drawing explained on the CPU, as the Classify tab's
inference thread would do it (target: <= 50 ms for resnet-mnist).

For a 280x280 drawn digit already prepared (28x28), interleaved rounds of:
  predict     the Predictor's forward pass (the reference: what a live prediction costs)
  Grad-CAM    `explain_prepared(..., "gradcam")`: one forward + backward to the stage
  IG auto     `explain_prepared(..., "ig")`: 16 path points, bf16 where the CPU has it
  IG fp32     the same in fp32 (CPUs without native bf16 get this)
on the Predictor's fused channels_last copy, with 1 thread and torch's default count.
Wall p50/p90 and CPU-time p50 per call (on a shared machine the CPU time is the
undisturbed cost), and each method's time as a multiple of a prediction in the same run.

    python bench/explain_latency.py [--runs 60] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import time

import _common as C
import torch
from inference_latency import draw_digit

from app.core.explain import explain_prepared
from app.core.modelio import ModelCard
from app.core.models import MNIST_SPEC, build_model
from app.core.predictor import Predictor, _fused_for_inference
from app.core.preprocess import prepare
from app.core.resources import default_model_path


def make_model() -> tuple[torch.nn.Module, torch.nn.Module, str]:
    """(plain, fused) resnet-mnist: the shipped weights when present (the time does not
    depend on them)."""
    path = default_model_path()
    if path.exists():
        p = Predictor.load(path)
        return p.model, _fused_for_inference(p.model), str(path.relative_to(C.ROOT))
    torch.manual_seed(0)
    model = build_model("resnet-mnist", 10, MNIST_SPEC).eval()
    card = ModelCard(name="bench", arch="resnet-mnist", classes=[str(i) for i in range(10)], input=MNIST_SPEC)
    p = Predictor(model, card)
    return p.model, _fused_for_inference(p.model), "untrained resnet-mnist"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=60, help="calls per method and thread count")
    ap.add_argument("--threads", type=int, nargs="+", default=[])
    args = ap.parse_args()
    C.report_load("before explain_latency")
    info = C.machine()
    thread_counts = sorted(set(args.threads or [1, torch.get_num_threads()]))
    _, fused, source = make_model()
    prepared = prepare(draw_digit("3"))
    x = torch.from_numpy(prepared.pixels)[None, None].float().div(255).contiguous(memory_format=torch.channels_last)

    def predict() -> None:
        with torch.inference_mode():
            torch.softmax(fused(x), 1)

    methods = {
        "predict (reference)": predict,
        "Grad-CAM": lambda: explain_prepared(fused, prepared, None, "gradcam"),
        "IG, 16 steps, auto (bf16 here)": lambda: explain_prepared(fused, prepared, None, "ig"),
        "IG, 16 steps, fp32": lambda: explain_prepared(fused, prepared, None, "ig", precision="fp32"),
    }
    print(f"model: {source}; canvas 280x280 -> class {explain_prepared(fused, prepared).predicted}")
    results: dict = {"machine": info, "model": source, "runs": args.runs}
    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        wall: dict[str, list[float]] = {k: [] for k in methods}
        cpu: dict[str, list[float]] = {k: [] for k in methods}
        for fn in methods.values():
            for _ in range(3):
                fn()
        names = list(methods)
        rounds = 10
        for r in range(rounds):  # interleaved: load changes hit every method alike
            for name in names[r % len(names) :] + names[: r % len(names)]:
                for _ in range(max(1, args.runs // rounds)):
                    t, c = time.perf_counter(), time.process_time()
                    methods[name]()
                    wall[name].append((time.perf_counter() - t) * 1000)
                    cpu[name].append((time.process_time() - c) * 1000)
        ref = C.percentile(cpu[names[0]], 50)
        results[f"threads_{threads}"] = {}
        for name in names:
            r = {
                "p50_ms": C.percentile(wall[name], 50),
                "p90_ms": C.percentile(wall[name], 90),
                "cpu_p50_ms": C.percentile(cpu[name], 50),
            }
            results[f"threads_{threads}"][name] = r
            rows.append([name, threads, r["p50_ms"], r["p90_ms"], r["cpu_p50_ms"], r["cpu_p50_ms"] / ref])
    print()
    C.print_table(["one explanation, resnet-mnist", "threads", "p50 ms", "p90 ms", "CPU p50 ms", "x predict (CPU)"], rows)
    C.report_load("after")
    C.write_results("explain_latency", results)


if __name__ == "__main__":
    main()
