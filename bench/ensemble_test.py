"""Test accuracy of each model file and of their ensemble (mean logits): what a model
distilled from them (`train --teacher`, app.core.teachers) can hope to approach. Also
each model's validation NLL and accuracy on its own run's held-out digits. Evaluation
only: nothing here chooses or trains anything.

    python bench/ensemble_test.py /tmp/acc/t1.safetensors /tmp/acc/t2.safetensors /tmp/acc/t3.safetensors
"""

from __future__ import annotations

import argparse

import _common as C
import torch
from torch.nn import functional as F

from app.core.config import TrainConfig
from app.core.data import load_builtin
from app.core.evaluation import model_logits
from app.core.modelio import load_model
from app.core.recalibration import training_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data-dir", default=str(C.MNIST_DIR))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    test = load_builtin("mnist", args.data_dir, "test")
    train = load_builtin("mnist", args.data_dir, "train")
    rows, logits = [], []
    for path in args.models:
        model, card = load_model(path)
        z = model_logits(model, test.images)
        logits.append(z)
        _, _, val_idx = training_split(train, TrainConfig.from_dict(card.recipe))
        zv = model_logits(model, train.images[val_idx])
        yv = train.labels[val_idx]
        rows.append(dict(
            model=path, test_acc=float((z.argmax(1) == test.labels).float().mean()),
            val_acc=float((zv.argmax(1) == yv).float().mean()), val_nll=float(F.cross_entropy(zv, yv)),
        ))  # fmt: skip
    mean = torch.stack(logits).mean(0)
    rows.append(dict(model="ensemble (mean logits)", test_acc=float((mean.argmax(1) == test.labels).float().mean())))
    for r in rows:
        extra = f"  val {r['val_acc']:.2%} nll {r['val_nll']:.4f}" if "val_acc" in r else ""
        print(f"{r['test_acc']:.2%}  {r['model']}{extra}")
    C.write_results("ensemble_test", {"machine": C.machine(), "rows": rows})


if __name__ == "__main__":
    main()
