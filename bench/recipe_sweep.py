"""Recipe sweep: accuracy per epoch of candidate training recipes on one dataset.

How the Fashion-MNIST ("objects") recipe in `app.core.recipes.RECIPES` was chosen. The
candidates differ in augmentation, label smoothing, schedule length, batch/lr and
architecture; each runs `Trainer.run()` and after every epoch records the validation
accuracy (10% held out of the training data: this is what chooses) and the test accuracy
(reported only), both of the weights the app would save (EMA). A GPU runs the sweep in
minutes; the accuracy per epoch carries over to the CPU, whose time per epoch comes from
`train_throughput.py`, and the chosen recipe is then timed on the CPU with
`time_to_accuracy.py`.

    python bench/recipe_sweep.py --device cuda --only objects-8 digits-8
"""

from __future__ import annotations

import argparse
import json
import time

import _common as C

from app.core.config import TrainConfig
from app.core.data import load_builtin
from app.core.events import EpochEvent, FinishedEvent
from app.core.predictor import flip_tta
from app.core.training import Trainer

OBJECTS = dict(hflip=True, rotate_deg=0.0, shear_deg=0.0, scale=0.1, shift=0.1, elastic=0.0)
CANDIDATES: dict[str, dict] = {  # in the order they run (most informative first)
    "objects-8": dict(OBJECTS, epochs=8, batch_size=128, lr=0.2),
    # the digit recipe (TrainConfig defaults) on a short schedule: the previous "ours"
    "digits-8": dict(epochs=8),
    "objects-8-ls0": dict(OBJECTS, epochs=8, batch_size=128, lr=0.2, label_smoothing=0.0),
    "objects-small-16": dict(OBJECTS, arch="resnet-mnist-small", epochs=16, batch_size=128, lr=0.2),
    "objects-5": dict(OBJECTS, epochs=5, batch_size=128, lr=0.2),
    "objects-8-bs256": dict(OBJECTS, epochs=8, batch_size=256, lr=0.4),
    "objects-8-noscale": dict(OBJECTS, epochs=8, batch_size=128, lr=0.2, scale=0.0),
    "objects-small-10": dict(OBJECTS, arch="resnet-mnist-small", epochs=10, batch_size=128, lr=0.2),
    "objects-small-12": dict(OBJECTS, arch="resnet-mnist-small", epochs=12, batch_size=128, lr=0.2),
    "objects-8-bs64": dict(OBJECTS, epochs=8, batch_size=64, lr=0.1),
}
RESULT_FILE = C.RESULTS / "recipe_sweep.json"


def run(name: str, overrides: dict, train, test, device: str, seed: int = 0) -> dict:
    cfg = TrainConfig(device=device, seed=seed, **overrides)
    trainer = Trainer(cfg, train)
    curve = []
    t0 = time.perf_counter()
    train_s = 0.0
    for ev in trainer.run():
        if isinstance(ev, EpochEvent):
            train_s += time.perf_counter() - t0
            acc = trainer.evaluate_now(test)[1]  # as the app uses the model
            no_tta = trainer.evaluate_now(test, tta_flip=False)[1] if flip_tta(cfg.to_dict()) else acc
            curve.append({
                "epoch": ev.epoch + 1, "val_acc": ev.val_acc, "test_acc": acc,
                "test_acc_no_tta": no_tta, "train_s": train_s,
            })  # fmt: skip
            print(
                f"  {name:20s} epoch {ev.epoch + 1:2d}/{cfg.epochs}  val {ev.val_acc * 100:.2f}%  "
                f"test {acc * 100:.2f}% (no TTA {no_tta * 100:.2f}%)  {train_s:6.1f} s",
                flush=True,
            )
            t0 = time.perf_counter()
        elif isinstance(ev, FinishedEvent):
            break
    return {"config": cfg.to_dict(), "curve": curve}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--which", choices=["fashion", "mnist5k"], default="fashion")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--only", nargs="*", choices=sorted(CANDIDATES), help="candidates to run (default: all)"
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds for each candidate")
    args = ap.parse_args()
    if args.which == "fashion":
        d = C.ensure_fashion()
        train, test = (
            load_builtin("fashion-mnist", d, "train"),
            load_builtin("fashion-mnist", d, "test"),
        )
    else:
        train, test = (
            load_builtin("mnist", C.MNIST_DIR, "train"),
            load_builtin("mnist", C.MNIST_DIR, "test"),
        )
    results = json.loads(RESULT_FILE.read_text()) if RESULT_FILE.exists() else {}
    info = C.machine()
    for seed in args.seeds:
        for name in args.only or list(CANDIDATES):
            entry = run(name, CANDIDATES[name], train, test, args.device, seed)
            entry["machine"] = info
            results[f"{args.which}/{name}" + (f"/seed{seed}" if seed else "")] = entry
            C.RESULTS.mkdir(parents=True, exist_ok=True)
            RESULT_FILE.write_text(json.dumps(results, indent=2) + "\n")
    rows = []
    for key, e in sorted(results.items()):
        c = e["curve"]
        if not c:
            continue
        best_val = max(c, key=lambda p: p["val_acc"] or 0)
        rows.append([
            key, e["config"]["arch"], e["config"]["epochs"], f"{c[-1]['val_acc'] * 100:.2f}%",
            f"{c[-1]['test_acc'] * 100:.2f}%", f"{best_val['test_acc'] * 100:.2f}% (ep {best_val['epoch']})",
            " ".join(f"{p['test_acc'] * 100:.1f}" for p in c), f"{c[-1]['train_s']:.0f}",
        ])  # fmt: skip
    C.print_table(
        [
            "run",
            "arch",
            "epochs",
            "final val",
            "final test",
            "test at best val",
            "test per epoch",
            "train s",
        ],
        rows,
    )
    print(f"results in {RESULT_FILE.relative_to(C.ROOT)}")


if __name__ == "__main__":
    main()
