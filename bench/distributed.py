"""Training images/s of N processes x 1 thread (torchrun, DDP, gloo) vs 1 process x N
threads, A/B in alternating rounds in one run; target: the pair >= 0.9x the single
process (no loss from the split).

Both run the real Trainer (`DistributedTrainer` under torchrun) on the same data with the
recipe's global batch; the rate is the global batch over the time between rank 0's step
events, after a warm-up, so process start, data loading and evaluation are left out.

    python bench/distributed.py [--nproc 2] [--rounds 3] [--steps 24] [--arch resnet-mnist]
        [--precision auto] [--device cpu]

`--worker` is the inside of one measurement (started by this script).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

WARMUP = 3


def worker(args: argparse.Namespace) -> None:
    import torch

    from app.core import distributed
    from app.core.config import TrainConfig
    from app.core.data import load_builtin
    from app.core.events import StepEvent
    from app.core.training import Trainer

    torch.set_num_threads(args.threads)
    data = load_builtin("mnist", str(C.MNIST_DIR), "train")
    cfg = TrainConfig(
        arch=args.arch, epochs=1, batch_size=args.batch_size, val_fraction=0.0, device=args.device,
        precision=args.precision, limit=args.batch_size * (args.steps + WARMUP), seed=1,
    )  # fmt: skip
    if distributed.launched_by_torchrun():
        ctx = distributed.init_from_env(args.device)
        trainer: Trainer = distributed.DistributedTrainer(ctx, cfg, data, sync_bn=args.sync_bn)
        main = ctx.is_main
    else:
        trainer, main = Trainer(cfg, data), True
    times = []
    for ev in trainer.run():
        if isinstance(ev, StepEvent):
            times.append(time.perf_counter())
    distributed.shutdown()
    if main:
        timed = times[WARMUP - 1 :]
        rate = cfg.batch_size * (len(timed) - 1) / (timed[-1] - timed[0])
        Path(args.out).write_text(json.dumps({"images_per_s": rate, "steps": len(timed) - 1}))


def measure(args: argparse.Namespace, split: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        common = [
            "--worker", "--arch", args.arch, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
            "--precision", args.precision, "--device", args.device, "--out", str(out),
        ] + (["--sync-bn"] if args.sync_bn else [])  # fmt: skip
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        if split:
            env["OMP_NUM_THREADS"] = "1"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", str(args.nproc), __file__, *common, "--threads", "1"]  # fmt: skip
        else:
            env["OMP_NUM_THREADS"] = str(args.nproc)
            cmd = [sys.executable, __file__, *common, "--threads", str(args.nproc)]
        subprocess.run(cmd, check=True, env=env, cwd=C.ROOT, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())["images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=24, help="timed steps per measurement")
    p.add_argument("--arch", default="resnet-mnist")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default="auto")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sync-bn", action="store_true", help="batch norm over the global batch (exact, slower)")
    p.add_argument("--worker", action="store_true")
    p.add_argument("--out", default="")
    args = p.parse_args()
    if args.worker:
        return worker(args)

    C.report_load("before")
    machine = C.machine()  # with the load at the start
    rows, split_rates, single_rates, ratios = [], [], [], []
    for r in range(args.rounds):
        # Alternate the order, so a load change within a round hits both sides alike.
        first_split = r % 2 == 0
        a = measure(args, first_split)
        b = measure(args, not first_split)
        split, single = (a, b) if first_split else (b, a)
        split_rates.append(split)
        single_rates.append(single)
        ratios.append(split / single)
        rows.append([r + 1, f"{split:,.0f}", f"{single:,.0f}", f"{split / single:.2f}x"])
        print(f"round {r + 1}: {args.nproc} processes x 1 thread {split:,.0f} img/s, "
              f"1 process x {args.nproc} threads {single:,.0f} img/s, ratio {split / single:.2f}", flush=True)  # fmt: skip
    C.report_load("after")
    C.print_table(
        ["round", f"{args.nproc} proc x 1 thread (img/s)", f"1 proc x {args.nproc} threads (img/s)", "ratio"], rows
    )
    med = statistics.median(ratios)
    print(f"median ratio {med:.2f}x (target >= 0.9x)")
    C.write_results("distributed", {
        "machine": machine,
        "settings": {k: getattr(args, k) for k in ("nproc", "rounds", "steps", "arch", "batch_size", "precision", "device")},
        "split_images_per_s": split_rates, "single_images_per_s": single_rates,
        "ratios": ratios, "median_ratio": med,
    })  # fmt: skip


if __name__ == "__main__":
    main()
