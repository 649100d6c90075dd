"""Time to a test accuracy: our default recipe vs the seeds' recipe.

ours   `Trainer.run()` with the app's default for the dataset, `default_config(name)`:
       the digit recipe for MNIST (resnet-mnist, 40 epochs, batch 64, affine + elastic
       warp), the objects recipe for Fashion-MNIST (resnet-mnist-small, 12 epochs, batch
       128, mirror/zoom/shift, judged with flip TTA as the app uses it); both SGD Nesterov
       + OneCycle, label smoothing, EMA, channels_last, bf16 autocast on CPUs with native
       bf16, 10% of the training data held out for validation. `--epochs` changes the
       schedule length.
seeds  the recipe the seed project shipped: ResNet-20-style `resnet-mnist-small`, Adam
       1e-3, StepLR(step 3 epochs, gamma 0.1), batch 64, per-sample PIL -> ToTensor +
       Normalize transforms through a DataLoader, all of the training data.

Runs: `fashion` (full Fashion-MNIST 60k -> 10k test, target 92%) and `mnist5k` (the 5k
MNIST training digits only -> the 10k MNIST test set, target 99.0%).

Test accuracy is measured after every epoch for the curve; that time is excluded from
the clock (wall and CPU) and the test set is never used to choose anything. CPU seconds
are reported too: with `--threads 1` they are what a dedicated core would need, which
stays meaningful when other processes share the machine.

    python bench/time_to_accuracy.py --which mnist5k --budget-s 900 --threads 1
    python bench/time_to_accuracy.py --plot-only      # redraw docs/time-to-accuracy.png

Results of earlier runs stay in bench/results/time_to_accuracy.json (one entry per
dataset and recipe, replaced when that pair is run again), so runs can be made piecewise.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace

import _common as C
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from app.core.data import Dataset, load_builtin
from app.core.events import EpochEvent, FinishedEvent
from app.core.models import build_model
from app.core.recipes import default_config
from app.core.training import Trainer

TARGETS = {"fashion": 0.92, "mnist5k": 0.99}
RESULT_FILE = C.RESULTS / "time_to_accuracy.json"
PLOT = C.ROOT / "docs" / "time-to-accuracy.png"


class Clock:
    """Wall and CPU time with pauses (for the test evaluations)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self._t = self._c = None
        self.resume()

    def pause(self) -> None:
        self.wall += time.perf_counter() - self._t
        self.cpu += time.process_time() - self._c

    def resume(self) -> None:
        self._t, self._c = time.perf_counter(), time.process_time()

    def now(self) -> tuple[float, float]:
        return self.wall + time.perf_counter() - self._t, self.cpu + time.process_time() - self._c

    def over(self, budget: float, clock: str) -> bool:
        wall, cpu = self.now()
        return (cpu if clock == "cpu" else wall) > budget


def load(which: str) -> tuple[Dataset, Dataset]:
    if which == "fashion":
        d = C.ensure_fashion()
        return load_builtin("fashion-mnist", d, "train"), load_builtin("fashion-mnist", d, "test")
    return load_builtin("mnist", C.MNIST_DIR, "train"), load_builtin("mnist", C.MNIST_DIR, "test")


def run_ours(
    train: Dataset, test: Dataset, budget: float, epochs: int | None, log: Callable,
    stop: Callable, device: str = "cpu", batch_size: int = 0, recipe: str | None = None,
    overrides: dict | None = None,
) -> dict:  # fmt: skip
    cfg = default_config(train.name, recipe, device=device, **({"epochs": epochs} if epochs else {}), **(overrides or {}))
    if batch_size:  # a larger batch (fewer, larger steps: less per-step overhead on a GPU)
        cfg = replace(cfg, batch_size=batch_size, lr=scaled_lr(cfg.lr, cfg.batch_size, batch_size))
    trainer = Trainer(cfg, train)
    curve = []
    clock = Clock()
    for ev in trainer.run():
        if isinstance(ev, EpochEvent):
            clock.pause()
            _, acc, _ = trainer.evaluate_now(test)  # the weights the app saves, used as it does
            curve.append(
                {"epoch": ev.epoch + 1, "wall_s": clock.wall, "cpu_s": clock.cpu, "test_acc": acc, "val_acc": ev.val_acc}
            )
            log(curve[-1])
            clock.resume()
            if stop(clock, acc):
                trainer.cancel()
        elif isinstance(ev, FinishedEvent):
            break
        elif stop(clock, 0.0):
            trainer.cancel()
    return {"config": cfg.to_dict(), "curve": curve}


def parse_overrides(pairs: list[str]) -> dict:
    """`["erase=0.5", "epochs=15"]` -> TrainConfig overrides, typed by the field's default."""
    from app.core.config import TrainConfig

    defaults = TrainConfig().to_dict()
    out = {}
    for p in pairs:
        k, _, v = p.partition("=")
        if k not in defaults:
            raise SystemExit(f"unknown TrainConfig field {k!r}")
        t = type(defaults[k])
        out[k] = v.lower() in ("1", "true", "yes") if t is bool else t(v)
    return out


def scaled_lr(lr: float, batch: int, new_batch: int) -> float:
    """The recipe's lr for another batch size: square-root scaling (Krizhevsky 2014, "One
    weird trick"; safer than linear scaling for SGD with momentum at these batch sizes),
    at most 4x."""
    return lr * min(4.0, (new_batch / batch) ** 0.5)


def run_seeds(
    train: Dataset, test: Dataset, budget: float, max_epochs: int, log: Callable,
    stop: Callable, device: str = "cpu",
) -> dict:  # fmt: skip
    from torchvision import transforms
    from train_throughput import PilDataset

    spec = train.spec
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(spec.mean, spec.std)])
    loader = torch.utils.data.DataLoader(
        PilDataset(train.images[:, 0].numpy(), train.labels.numpy(), tf),
        batch_size=64,
        shuffle=True,
    )
    torch.manual_seed(0)
    model = build_model("resnet-mnist-small", len(train.classes), spec).net.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.1)
    mean, std = spec.mean[0], spec.std[0]
    curve = []
    clock = Clock()
    for epoch in range(max_epochs):
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            loss.item()
            if stop(clock, 0.0):
                break
        else:
            sched.step()
            clock.pause()
            model.eval()
            correct = 0
            with torch.inference_mode():
                for s in range(0, len(test), 500):
                    xb = (test.images[s : s + 500].to(device).float() / 255 - mean) / std
                    yb = test.labels[s : s + 500].to(device)
                    correct += int((model(xb).argmax(1) == yb).sum())
            curve.append(
                {
                    "epoch": epoch + 1,
                    "wall_s": clock.wall,
                    "cpu_s": clock.cpu,
                    "test_acc": correct / len(test),
                }
            )
            log(curve[-1])
            clock.resume()
            if stop(clock, curve[-1]["test_acc"]):
                break
            continue
        break  # over budget mid-epoch: the partial epoch is not counted
    return {
        "recipe": "resnet-mnist-small, Adam 1e-3, StepLR(3, 0.1), batch 64, PIL transforms",
        "curve": curve,
    }


def summarize(entry: dict, target: float, budget_min: float = 15.0) -> dict:
    curve = entry["curve"]
    hit = next((p for p in curve if p["test_acc"] >= target), None)
    key = "cpu_s" if entry.get("budget_clock") == "cpu" else "wall_s"
    within = [p["test_acc"] for p in curve if p[key] <= budget_min * 60]
    return {
        "target": target,
        "reached_wall_s": hit["wall_s"] if hit else None,
        "reached_cpu_s": hit["cpu_s"] if hit else None,
        "reached_epoch": hit["epoch"] if hit else None,
        "best_acc": max((p["test_acc"] for p in curve), default=None),
        f"best_acc_within_{budget_min:g}_min": max(within, default=None),
        "measured_wall_s": curve[-1]["wall_s"] if curve else 0.0,
    }


# --- plot (PIL, so the benchmarks need nothing beyond the app's own dependencies) -------


def plot(results: dict, path=PLOT, axis: str = "wall_s") -> None:
    panels = [
        w for w in ("fashion", "mnist5k") if any(k.startswith(w + "/") for k in results["runs"])
    ]
    if not panels:
        return
    pw, ph, m = 560, 380, (70, 30, 20, 55)  # panel size; margins left, top, right, bottom
    img = Image.new("RGB", (pw * len(panels), ph), "white")
    d = ImageDraw.Draw(img)
    colors = {"ours": (31, 119, 180), "seeds": (214, 39, 40)}
    for i, which in enumerate(panels):
        ox = i * pw
        runs = {k.split("/")[1]: v for k, v in results["runs"].items() if k.startswith(which + "/")}
        xmax = max((p[axis] for r in runs.values() for p in r["curve"]), default=1.0) * 1.05 / 60
        target = TARGETS[which]
        accs = [p["test_acc"] for r in runs.values() for p in r["curve"]]
        ylo = max(0.0, min([target - 0.05, *accs]) - 0.005) if accs else target - 0.05
        ylo = max(ylo, target - 0.15)
        yhi = 1.0 if which == "mnist5k" else min(1.0, max([target + 0.02, *accs]) + 0.005)
        x0, y0, x1, y1 = ox + m[0], m[1], ox + pw - m[2], ph - m[3]

        def px(x: float, y: float, box=(x0, y0, x1, y1, xmax, ylo, yhi)) -> tuple[float, float]:
            bx0, by0, bx1, by1, bxmax, bylo, byhi = box
            return (
                bx0 + (bx1 - bx0) * x / max(bxmax, 1e-9),
                by1 - (by1 - by0) * (min(max(y, bylo), byhi) - bylo) / (byhi - bylo),
            )

        d.rectangle([x0, y0, x1, y1], outline="black")
        for k in range(6):
            yv = ylo + (yhi - ylo) * k / 5
            _, yy = px(0, yv)
            d.line([x0 - 4, yy, x0, yy], fill="black")
            d.text((x0 - 48, yy - 6), f"{yv * 100:.1f}%", fill="black")
            xv = xmax * k / 5
            xx, _ = px(xv, ylo)
            d.line([xx, y1, xx, y1 + 4], fill="black")
            d.text((xx - 10, y1 + 8), f"{xv:.1f}", fill="black")
        _, ty = px(0, target)
        for xs in range(int(x0), int(x1), 12):
            d.line([xs, ty, min(xs + 6, x1), ty], fill=(120, 120, 120))
        d.text((x1 - 120, ty - 14), f"target {target * 100:.1f}%", fill=(90, 90, 90))
        label = "wall" if axis == "wall_s" else "CPU"
        unit = "minutes" if axis == "wall_s" else "minutes on one core"
        d.text((x0 + (x1 - x0) / 2 - 70, ph - 22), f"{label} time ({unit})", fill="black")
        title = {"fashion": "Fashion-MNIST 60k -> 10k test", "mnist5k": "MNIST 5k -> 10k test"}[
            which
        ]
        d.text((x0, 8), f"{title}: test accuracy vs {label} time", fill="black")
        for j, (name, run) in enumerate(sorted(runs.items())):
            col = colors.get(name, (0, 0, 0))
            pts = [px(p[axis] / 60, p["test_acc"]) for p in run["curve"]]
            if len(pts) > 1:
                d.line(pts, fill=col, width=2)
            for x, y in pts:
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=col)
            ly = y1 - 40 + 16 * j  # legend: lower right, clear of the curves' plateau
            d.line([x1 - 190, ly, x1 - 170, ly], fill=col, width=3)
            d.text(
                (x1 - 164, ly - 6),
                {"ours": "ours (default recipe)", "seeds": "seeds' recipe"}.get(name, name),
                fill=col,
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    print(f"wrote {path.relative_to(C.ROOT)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--which", nargs="+", choices=["fashion", "mnist5k"], default=["fashion", "mnist5k"]
    )
    ap.add_argument("--recipes", nargs="+", choices=["ours", "seeds"], default=["ours", "seeds"])
    ap.add_argument(
        "--budget-s", type=float, default=900.0, help="wall seconds per run (default 15 min)"
    )
    ap.add_argument(
        "--budget-clock", choices=["wall", "cpu"], default="wall",
        help="what the budget counts: wall seconds, or CPU seconds (use with --threads 1 on a busy machine)",
    )  # fmt: skip
    ap.add_argument(
        "--stop-at-target", action="store_true", help="end a run once it reaches the target"
    )
    ap.add_argument(
        "--epochs", type=int, default=0, help="ours: schedule length (0: TrainConfig default)"
    )
    ap.add_argument("--recipe", default=None, help="ours: this recipe (default: the dataset's, recipes.recipe_for)")
    ap.add_argument("--set", nargs="*", default=[], metavar="K=V", help="ours: TrainConfig fields to override")
    ap.add_argument("--label", default="", help="ours: result key suffix (default: none; the entry is replaced)")
    ap.add_argument("--seeds-epochs", type=int, default=12, help="seeds: most epochs to run")
    ap.add_argument(
        "--batch-size", type=int, default=0,
        help="ours: this batch size with the lr scaled by sqrt(batch ratio), see scaled_lr (0: the recipe's)",
    )  # fmt: skip
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument(
        "--plot-axis", choices=["auto", "wall_s", "cpu_s"], default="auto",
        help="x axis of the plot; auto: CPU time if any run had a CPU budget, else wall",
    )  # fmt: skip
    ap.add_argument("--plot-only", action="store_true")
    ap.add_argument(
        "--device", default="cpu", help="cpu or cuda (cuda: time_to_accuracy-cuda.json, no plot)"
    )
    args = ap.parse_args()
    global RESULT_FILE
    if args.device != "cpu":
        RESULT_FILE = C.RESULTS / f"time_to_accuracy-{args.device.split(':')[0]}.json"
    results = json.loads(RESULT_FILE.read_text()) if RESULT_FILE.exists() else {"runs": {}}
    results.setdefault("runs", {})
    if not args.plot_only:
        if args.threads:
            torch.set_num_threads(args.threads)
        for which in args.which:
            train, test = load(which)
            for recipe in args.recipes:
                C.report_load(f"before {which}/{recipe}")
                info = C.machine()
                print(
                    f"{which}/{recipe}: {len(train)} training images, budget {args.budget_s:.0f} s"
                )

                def log(p: dict) -> None:
                    val = f"  val {p['val_acc'] * 100:.2f}%" if p.get("val_acc") is not None else ""
                    print(
                        f"  epoch {p['epoch']:3d}  {p['wall_s']:7.1f} s wall  {p['cpu_s']:7.1f} s CPU  "
                        f"test {p['test_acc'] * 100:.2f}%{val}",
                        flush=True,
                    )

                def stop(clock: Clock, acc: float, target: float = TARGETS[which]) -> bool:
                    return clock.over(args.budget_s, args.budget_clock) or (
                        args.stop_at_target and acc >= target
                    )

                if recipe == "ours":
                    entry = run_ours(
                        train, test, args.budget_s, args.epochs or None, log, stop, args.device, args.batch_size,
                        args.recipe, parse_overrides(args.set),
                    )
                else:
                    entry = run_seeds(
                        train, test, args.budget_s, args.seeds_epochs, log, stop, args.device
                    )
                entry.update(
                    machine=info, budget_s=args.budget_s, budget_clock=args.budget_clock,
                    stopped_at_target=args.stop_at_target, threads=torch.get_num_threads(),
                )  # fmt: skip
                entry["machine"]["loadavg_end"] = [round(v, 2) for v in C.load_avg()]
                entry["summary"] = summarize(entry, TARGETS[which])
                # Re-read before writing: another invocation (other dataset) may run alongside.
                if RESULT_FILE.exists():
                    results = json.loads(RESULT_FILE.read_text())
                    results.setdefault("runs", {})
                batch = f"-b{args.batch_size}" if args.batch_size and recipe == "ours" else ""
                batch += f"-{args.label}" if args.label and recipe == "ours" else ""
                results["runs"][f"{which}/{recipe}{batch}"] = entry
                C.RESULTS.mkdir(parents=True, exist_ok=True)
                RESULT_FILE.write_text(json.dumps(results, indent=2) + "\n")  # after every run
    rows = []
    for key, entry in sorted(results["runs"].items()):
        s = entry["summary"]
        best15 = s.get("best_acc_within_15_min")
        clock = entry.get("budget_clock", "wall")
        rows.append([
            key, f"{s['target'] * 100:.1f}%",
            f"{s['reached_wall_s']:.0f}" if s["reached_wall_s"] is not None else "not reached",
            f"{s['reached_cpu_s']:.0f}" if s["reached_cpu_s"] is not None else "-",
            s["reached_epoch"] or "-",
            f"{best15 * 100:.2f}% ({clock})" if best15 is not None else "-",
            f"{s['measured_wall_s']:.0f}", entry.get("threads", "?"),
            " ".join(f"{v:.1f}" for v in entry["machine"].get("loadavg_start", [])[:1]),
        ])  # fmt: skip
    C.print_table(
        ["run", "target", "wall s to target", "CPU s to target", "epoch", "best acc <= 15 min",
         "measured wall s", "threads", "load at start"],
        rows,
    )  # fmt: skip
    axis = args.plot_axis
    if axis == "auto":
        cpu = any(r.get("budget_clock") == "cpu" for r in results["runs"].values())
        axis = "cpu_s" if cpu else "wall_s"
    if args.device == "cpu":
        plot(results, axis=axis)
    print(f"results in {RESULT_FILE.relative_to(C.ROOT)}")


if __name__ == "__main__":
    main()
