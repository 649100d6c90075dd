"""Speed-run lab: images, steps and seconds a candidate recipe needs to reach a test accuracy.

A candidate (`_speedrun_parts.Candidate`: the airbench toolbox as options on the app's
ResNets) trains on MNIST's 5k training digits or Fashion-MNIST's 60k, with a validation
split carved out of the training data (`--val`); the test split is only evaluated, every
`--eval-every` images, off the clock. For each run the lab prints when the target was
first reached in images, steps, epochs and seconds of its own steps (wall and CPU).

`--versus-seeds` runs the seeds' recipe (ResNet-20, Adam 1e-3, StepLR, batch 64, PIL
DataLoader) in the same process, alternating `--chunk` steps of each, so both see the same
machine load; the ratios (seeds / candidate) of CPU seconds and of images to the target
and the throughput ratio are what to quote. Use one thread (the default here) and `nice`
on a shared machine: CPU seconds are then what a dedicated core needs.

    python bench/speedrun_lab.py --which fashion --cand r8-tri --set epochs=4 --versus-seeds \
        --seeds-steps 300 --eval-start 81000 --stop-at-target
    python bench/speedrun_lab.py --which mnist5k --cand digits --set tta=shift --eval-start 40000 --eval-every 4500
"""

from __future__ import annotations

import argparse
import json

import _common as C
import torch
from _speedrun_parts import Candidate, LabRun, SeedsRun

from app.core.data import load_builtin, split_train_val

TARGETS = {"fashion": 0.92, "mnist5k": 0.99}
RESULT_FILE = C.RESULTS / "speedrun_lab.json"
CANDIDATES: dict[str, dict] = {  # named starting points; `--set` varies any field
    "base": {},  # the objects recipe's optimizer on ResNet-20 (what the trainer does now)
    "r8": dict(arch="resnet-mnist-8", batch_size=256, lr=0.4),
    "r8-tri": dict(arch="resnet-mnist-8", batch_size=256, lr=0.4, anneal="linear", warmup=0.2),
    "r14-tri": dict(arch="resnet-mnist-14", batch_size=256, lr=0.4, anneal="linear", warmup=0.2),
    "r8w-tri": dict(arch="resnet-mnist-8-wide", batch_size=256, lr=0.4, anneal="linear", warmup=0.2),
    # Fashion's fastest (B2 in docs/performance.md: 91.32% after 203k images, never 92%)
    "r14-px20": dict(arch="resnet-mnist-14", epochs=4, batch_size=256, lr=0.4, anneal="linear", warmup=0.2,
                     small_px=20, small_until=0.5, ema=0.99),
    # the MNIST winner, ported as recipes.RECIPES["digits"] (run with --set tta=shift for the lab's row)
    "digits": dict(arch="resnet-mnist-14", epochs=16, lr=0.2, anneal="linear", warmup=0.2, ema=0.99),
}


def load(which: str, val: float, seed: int):
    if which == "fashion":
        d = C.ensure_fashion()
        train, test = load_builtin("fashion-mnist", d, "train"), load_builtin("fashion-mnist", d, "test")
    else:
        train, test = load_builtin("mnist", C.MNIST_DIR, "train"), load_builtin("mnist", C.MNIST_DIR, "test")
    tr, va = split_train_val(len(train), val, seed)
    return train, train.subset(tr), train.subset(va), test


def record(run, name: str, test, val, target: float) -> dict:
    point = {
        "images": run.images, "steps": run.steps, "cpu_s": round(run.cpu, 2), "wall_s": round(run.wall, 2),
        "test_acc": run.accuracy(test),
        # validation (what would choose) at the end only: it costs as much as the test
        "val_acc": run.accuracy(val) if val is not None and len(val) and run.finished else None,
    }  # fmt: skip
    run.curve.append(point)
    v = f"  val {point['val_acc'] * 100:.2f}%" if point["val_acc"] is not None else ""
    mark = "  <- target" if point["test_acc"] >= target and not any(p["test_acc"] >= target for p in run.curve[:-1]) else ""
    print(
        f"  {name:14s} {run.images:8d} img {run.steps:6d} steps {run.cpu:7.1f} cpu-s {run.wall:7.1f} wall-s"
        f"  test {point['test_acc'] * 100:.2f}%{v}{mark}",
        flush=True,
    )
    return point


def summary(run, target: float, n_train: int) -> dict:
    hit = next((p for p in run.curve if p["test_acc"] >= target), None)
    return {
        "target": target,
        "reached": hit is not None,
        "images": hit["images"] if hit else None,
        "epochs": round(hit["images"] / n_train, 2) if hit else None,
        "steps": hit["steps"] if hit else None,
        "cpu_s": hit["cpu_s"] if hit else None,
        "wall_s": hit["wall_s"] if hit else None,
        "best_test": max((p["test_acc"] for p in run.curve), default=None),
        "final_test": run.curve[-1]["test_acc"] if run.curve else None,
        "final_val": run.curve[-1]["val_acc"] if run.curve else None,
        "img_per_cpu_s": run.images / max(run.cpu, 1e-9),
        "img_per_wall_s": run.images / max(run.wall, 1e-9),
        "total_cpu_s": run.cpu,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--which", choices=sorted(TARGETS), default="mnist5k")
    ap.add_argument("--cand", default="base", choices=sorted(CANDIDATES))
    ap.add_argument("--set", nargs="*", default=[], metavar="K=V", help="candidate options (see Candidate)")
    ap.add_argument("--label", default="", help="name of this run in the results (default: cand + set)")
    ap.add_argument("--target", type=float, default=0.0, help="test accuracy (default: 92%% fashion, 99%% mnist5k)")
    ap.add_argument("--val", type=float, default=0.1, help="validation fraction carved out of the training data")
    ap.add_argument("--eval-every", type=int, default=0, help="images between test evaluations (default: epoch/4)")
    ap.add_argument("--eval-start", type=int, default=0, help="no test evaluation before this many images")
    ap.add_argument("--versus-seeds", action="store_true", help="run the seeds' recipe alternately")
    ap.add_argument("--seeds-epochs", type=int, default=6)
    ap.add_argument(
        "--seeds-steps", type=int, default=0,
        help="stop the seeds' run after this many steps (throughput only; 0 = to the target or --seeds-epochs)",
    )  # fmt: skip
    ap.add_argument("--chunk", type=int, default=10, help="steps of each run per alternation")
    ap.add_argument("--stop-at-target", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    target = args.target or TARGETS[args.which]
    full, train, val, test = load(args.which, args.val, args.seed)
    cand = Candidate.parse(Candidate(**CANDIDATES[args.cand]), args.set)
    label = args.label or " ".join([args.cand, *args.set])
    objects = args.which == "fashion"
    every = args.eval_every or len(train) // 4
    runs = {label: LabRun(cand, train, objects, args.seed)}
    if args.versus_seeds:
        runs["seeds"] = SeedsRun(full, args.seeds_epochs, args.seed, args.seeds_steps)  # the seeds used all the data
    sizes = {label: len(train), "seeds": len(full)}
    C.report_load(f"start ({args.which}, {cand})")
    info = C.machine()
    next_eval = {k: max(every, args.eval_start) for k in runs}
    while not all(r.finished for r in runs.values()):
        for name, run in runs.items():
            for _ in range(args.chunk):
                if run.finished:
                    break
                run.step()
                if run.images >= next_eval[name] or run.finished:
                    next_eval[name] = run.images + every
                    p = record(run, name, test, val if name != "seeds" else None, target)
                    if args.stop_at_target and p["test_acc"] >= target:
                        run.finished = True
    C.report_load("end")
    res = {name: summary(r, target, sizes[name]) for name, r in runs.items()}
    out = {"machine": info, "which": args.which, "candidate": cand.__dict__, "threads": args.threads,
           "summary": res, "curves": {k: r.curve for k, r in runs.items()}}  # fmt: skip
    if "seeds" in res:
        s, c = res["seeds"], res[label]
        out["ratios"] = {
            "throughput_img_per_cpu_s": c["img_per_cpu_s"] / s["img_per_cpu_s"],
            "images_to_target": (s["images"] / c["images"]) if s["images"] and c["images"] else None,
            "cpu_s_to_target": (s["cpu_s"] / c["cpu_s"]) if s["cpu_s"] and c["cpu_s"] else None,
            "wall_s_to_target": (s["wall_s"] / c["wall_s"]) if s["wall_s"] and c["wall_s"] else None,
        }
    results = json.loads(RESULT_FILE.read_text()) if RESULT_FILE.exists() else {}
    results[f"{args.which}/{label}/seed{args.seed}"] = out
    C.RESULTS.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        [name, f"{s['target'] * 100:.1f}%", s["images"] or "not reached", s["epochs"] or "-", s["steps"] or "-",
         f"{s['cpu_s']:.0f}" if s["cpu_s"] else "-", f"{s['img_per_cpu_s']:.0f}",
         f"{s['best_test'] * 100:.2f}%", f"{(s['final_val'] or 0) * 100:.2f}%"]
        for name, s in res.items()
    ]  # fmt: skip
    C.print_table(["run", "target", "images to target", "epochs", "steps", "CPU s to target", "img/CPU-s",
                   "best test", "final val"], rows)  # fmt: skip
    if "ratios" in out:
        print("seeds / candidate: " + ", ".join(f"{k} {v:.2f}x" for k, v in out["ratios"].items() if v))
    print(f"results in {RESULT_FILE.relative_to(C.ROOT)}")


if __name__ == "__main__":
    main()
