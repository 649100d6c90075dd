"""Inference latency: one canvas drawing -> prediction, and a batch of dropped files.

1. A 280x280 uint8 canvas with a drawn digit (the app's pen strokes) through
   `Predictor.predict` (preprocessing + model): p50/p99 over --runs calls, with 1 thread
   and with torch's default thread count. Wall time and CPU time per call are both
   recorded; on a shared machine the CPU time is the undisturbed cost.
2. The model alone, per variant, interleaved: NCHW, channels_last, conv-BN fused
   (Predictor's own folding), fused + channels_last (what Predictor runs). Fused
   predictions are checked against the plain model (max abs probability difference).
3. 64 dropped PNG files through `Predictor.predict_paths` (decode + preprocess + model):
   images/s, and the time split between decoding, preprocessing and the model.

Uses model_weights/mnist-resnet.safetensors when present, else an untrained resnet-mnist
(the weights do not change the time).

    python bench/inference_latency.py [--runs 1000] [--arch resnet-mnist]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import _common as C
import numpy as np
import torch
from PIL import Image, ImageDraw

from app.core.images import load_image
from app.core.modelio import ModelCard
from app.core.models import MNIST_SPEC, build_model
from app.core.predictor import Predictor
from app.core.resources import default_model_path, resource_path

STROKES = json.loads(resource_path("samples", "digit_strokes.json").read_text())["digits"]


def draw_digit(
    digit: str, size: int = 280, width: int = 18, jitter: float = 0.0, seed: int = 0
) -> np.ndarray:
    """A canvas like the app's: black ink on white, round pen."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    for stroke in STROKES[digit]:
        pts = [
            ((x + rng.uniform(-jitter, jitter)) * size, (y + rng.uniform(-jitter, jitter)) * size)
            for x, y in stroke
        ]
        d.line(pts, fill=0, width=width, joint="curve")
        for x, y in pts:
            d.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=0)
    return np.asarray(img)


def make_predictor(arch: str) -> tuple[Predictor, str]:
    path = default_model_path()
    if arch == "resnet-mnist" and path.exists():
        return Predictor.load(path), str(path.relative_to(C.ROOT))
    torch.manual_seed(0)
    model = build_model(arch, 10, MNIST_SPEC).eval()
    card = ModelCard(name="bench", arch=arch, classes=[str(i) for i in range(10)], input=MNIST_SPEC)
    return Predictor(model, card), f"untrained {arch}"


def latencies(fn, runs: int, warmup: int = 20) -> dict:
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {
        "p50_ms": C.percentile(wall, 50),
        "p99_ms": C.percentile(wall, 99),
        "max_ms": max(wall),
        "cpu_p50_ms": C.percentile(cpu, 50),
        "cpu_p99_ms": C.percentile(cpu, 99),
    }


def fuse(model: torch.nn.Module) -> torch.nn.Module:
    """Conv+BN folded into one conv (eval only), exactly as Predictor does it, NCHW."""
    from app.core.predictor import _fused_for_inference

    return _fused_for_inference(model).to(memory_format=torch.contiguous_format)


def model_variants(model: torch.nn.Module, x: torch.Tensor, runs: int) -> tuple[list[dict], float]:
    plain = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    fused = fuse(plain)
    variants = {
        "NCHW": (plain, x),
        "channels_last": (
            copy.deepcopy(plain).to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        ),
        "fused conv-BN": (fused, x),
        "fused conv-BN + channels_last (Predictor)": (
            copy.deepcopy(fused).to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        ),
    }
    # Interleaved rounds (A, B, C, D, B, C, D, A, ...): load changes hit all variants alike.
    samples: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in variants}
    rounds = 10
    with torch.inference_mode():
        ref = torch.softmax(plain(x), 1)
        diff = float((torch.softmax(fused(x), 1) - ref).abs().max())
        for m, inp in variants.values():
            for _ in range(20):
                m(inp)
        names = list(variants)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                m, inp = variants[name]
                for _ in range(max(1, runs // rounds)):
                    t, c = time.perf_counter(), time.process_time()
                    m(inp)
                    samples[name]["wall"].append((time.perf_counter() - t) * 1000)
                    samples[name]["cpu"].append((time.process_time() - c) * 1000)
    out = [
        {
            "variant": name,
            "p50_ms": C.percentile(s["wall"], 50),
            "p99_ms": C.percentile(s["wall"], 99),
            "cpu_p50_ms": C.percentile(s["cpu"], 50),
        }
        for name, s in samples.items()
    ]
    return out, diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--arch", default="resnet-mnist")
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument(
        "--threads", type=int, nargs="+", default=[],
        help="torch thread counts to measure (default: 1 and torch's default)",
    )  # fmt: skip
    args = ap.parse_args()
    C.report_load("before inference_latency")
    info = C.machine()
    default_threads = torch.get_num_threads()
    thread_counts = sorted(set(args.threads or [1, default_threads]))
    predictor, source = make_predictor(args.arch)
    canvas = draw_digit("3")
    pred = predictor.predict(canvas)
    print(f"model: {source}; canvas 280x280 -> {pred.label} ({pred.confidence:.2f})")

    results: dict = {"machine": info, "model": source, "runs": args.runs}
    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        e2e = latencies(lambda: predictor.predict(canvas), args.runs)
        prep = latencies(lambda: predictor.prepare(canvas), args.runs)
        results[f"threads_{threads}"] = {"predict": e2e, "prepare": prep}
        for what, r in (("predict (canvas -> prediction)", e2e), ("  of which prepare()", prep)):
            rows.append(
                [
                    what,
                    threads,
                    r["p50_ms"],
                    r["p99_ms"],
                    r["max_ms"],
                    r["cpu_p50_ms"],
                    r["cpu_p99_ms"],
                ]
            )
    print()
    C.print_table(
        ["1 canvas drawing", "threads", "p50 ms", "p99 ms", "max ms", "CPU p50 ms", "CPU p99 ms"],
        rows,
    )

    x = predictor._to_batch([predictor.prepare(canvas)]).contiguous()
    vrows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        variants, diff = model_variants(predictor.model, x, args.runs)
        results[f"model_variants_threads_{threads}"] = variants
        results["fused_max_abs_prob_diff"] = diff
        for v in variants:
            vrows.append([v["variant"], threads, v["p50_ms"], v["p99_ms"], v["cpu_p50_ms"]])
    print()
    print(
        f"model only, 1 image; fused vs plain max |prob diff| = {results['fused_max_abs_prob_diff']:.1e}"
    )
    C.print_table(["variant", "threads", "p50 ms", "p99 ms", "CPU p50 ms"], vrows)

    # --- a batch of dropped files -----------------------------------------------------
    torch.set_num_threads(thread_counts[-1])
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.files):
            p = Path(tmp) / f"digit_{i:03d}.png"
            Image.fromarray(draw_digit(str(i % 10), jitter=0.02, seed=i)).save(p)
            paths.append(p)
        list(predictor.predict_paths(paths[:4], batch_size=64))  # warm-up
        brows = []
        runs = []
        for _ in range(5):
            t, c = time.perf_counter(), time.process_time()
            n = sum(1 for _ in predictor.predict_paths(paths, batch_size=64))
            runs.append((n / (time.perf_counter() - t), n / (time.process_time() - c)))
            t_dec = C.timed(lambda: [load_image(p) for p in paths])
            images = [load_image(p) for p in paths]
            t_prep = C.timed(lambda images=images: [predictor.prepare(im) for im in images])
            prepared = [predictor.prepare(im) for im in images]
            t_model = C.timed(lambda prepared=prepared: predictor.predict_prepared(prepared))
            runs[-1] += (t_dec, t_prep, t_model)
        best = max(runs, key=lambda r: r[0])
        med = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        results["batch_files"] = {
            "files": args.files,
            "threads": thread_counts[-1],
            "images_per_s_median": med[0],
            "images_per_s_best": best[0],
            "images_per_cpu_s_median": med[1],
            "split_ms_median_run": {
                "decode": med[2] * 1000,
                "prepare": med[3] * 1000,
                "model": med[4] * 1000,
            },
        }
        brows.append([
            f"{args.files} PNG files (280x280)", thread_counts[-1], med[0], best[0], med[1],
            med[2] * 1000, med[3] * 1000, med[4] * 1000,
        ])  # fmt: skip
    print()
    C.print_table(
        ["dropped files", "threads", "img/s (median)", "img/s (best)", "img/CPU-s", "decode ms", "prepare ms",
         "model ms"],
        brows,
    )  # fmt: skip
    C.report_load("after")
    C.write_results("inference_latency", results)


if __name__ == "__main__":
    main()
