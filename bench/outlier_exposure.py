"""Outlier exposure: a short fine-tune of the shipped digit model that also shows it
synthetic non-digits with a "none of these" (uniform) target, then the same table as
bench/calibration_ood.py for the fine-tuned model. The shipped model is not replaced:
the result goes to bench/results/oe/ (ignored by git).

    python bench/outlier_exposure.py [--epochs 4] [--lam 0.5] [--lr 0.01]

Recipe (Hendrycks, Mazeika & Dietterich 2019, fixed before any measurement, nothing
tuned on the test digits or the non-digit test set): the shipped weights; the trainer's
own training split (4,500 digits) with the recipe's augmentation and label smoothing;
per step 64 digits + 64 outliers from `app.core.outliers` (pen strokes, blobs, shuffled
tiles, overlaid digits; a pool made once, re-augmented every epoch); loss = cross-entropy
on the digits + lam * cross-entropy of the outliers to the uniform distribution; SGD
(Nesterov, momentum 0.9, weight decay 5e-4), cosine lr from --lr to 0; EMA of the
weights (decay 0.99) saved. The temperature and thresholds are then fitted on the
trainer's 500 validation digits.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

import _common as C
import _ood_eval as E
import numpy as np
import torch
import torch.nn.functional as F

from app.core.augment import augment_batch
from app.core.config import TrainConfig
from app.core.modelio import ModelCard, load_model, save_model
from app.core.outliers import synthetic_outliers
from app.core.resources import default_model_path

OUT = C.RESULTS / "oe" / "mnist-resnet-oe.safetensors"


def energy_margin_loss(logits_in: torch.Tensor, logits_out: torch.Tensor, m_in: float, m_out: float) -> torch.Tensor:
    """Energy-bounded learning (Liu, Wang, Owens & Li 2020, eq. 6): squared hinges that
    push the energy -logsumexp(z) of digits below `m_in` and of outliers above `m_out`
    (`--energy M_IN M_OUT`; measured against the uniform target in docs/calibration.md)."""
    e_in, e_out = -torch.logsumexp(logits_in, 1), -torch.logsumexp(logits_out, 1)
    return F.relu(e_in - m_in).pow(2).mean() + F.relu(m_out - e_out).pow(2).mean()


def fine_tune(
    model, card: ModelCard, epochs: int, lam: float, lr: float, pool_size: int, fresh: bool = False, seed: int = 0,
    margins: tuple[float, float] | None = None,
):
    """Returns the EMA of the fine-tuned weights (a new model) and a log of the run.
    `fresh`: a new pool of outliers every epoch instead of one for the whole run."""
    cfg = TrainConfig.from_dict(card.recipe)
    data, train_idx, _ = E.trainer_split(card)
    x_id, y_id = data.images[train_idx], data.labels[train_idx]

    def make_pool(epoch: int) -> torch.Tensor:
        t0 = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        pool = synthetic_outliers(pool_size, card.input, rng, x_id.numpy(), y_id.numpy(), card.classes)
        print(f"{pool_size} synthetic outliers made in {time.perf_counter() - t0:.0f} s", flush=True)
        return torch.from_numpy(pool)

    x_out = make_pool(0)
    torch.manual_seed(seed)
    model.train()
    ema = copy.deepcopy(model).eval()
    decay_p, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay_p).append(p)
    opt = torch.optim.SGD(
        [{"params": decay_p, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, momentum=0.9, nesterov=True,
    )  # fmt: skip
    bs = 64
    steps = len(x_id) // bs
    total = steps * epochs
    log = []
    for epoch in range(epochs):
        if fresh and epoch > 0:
            x_out = make_pool(epoch)
        gen = torch.Generator().manual_seed(seed * 1000 + epoch)
        perm = torch.randperm(len(x_id), generator=gen)
        perm_out = torch.randint(0, len(x_out), (steps * bs,), generator=gen)
        sums = {"id": 0.0, "oe": 0.0}
        te = time.perf_counter()
        for step in range(steps):
            g = epoch * steps + step
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * g / total))
            idx = perm[step * bs : (step + 1) * bs]
            xb = augment_batch(x_id[idx].float().div(255), cfg, gen)
            ob = augment_batch(x_out[perm_out[step * bs : (step + 1) * bs]].float().div(255), cfg, gen)
            out = model(torch.cat([xb, ob]).contiguous(memory_format=torch.channels_last))
            loss_id = F.cross_entropy(out[:bs], y_id[idx], label_smoothing=cfg.label_smoothing)
            if margins is None:
                loss_oe = -F.log_softmax(out[bs:], 1).mean(1).mean()  # CE to the uniform target
            else:
                loss_oe = energy_margin_loss(out[:bs], out[bs:], *margins)
            loss = loss_id + lam * loss_oe
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                d = min(0.99, (1 + g) / (10 + g))
                for e, v in zip(ema.state_dict().values(), model.state_dict().values()):
                    if e.is_floating_point():
                        e.lerp_(v, 1 - d)
                    else:
                        e.copy_(v)
            sums["id"] += loss_id.item()
            sums["oe"] += loss_oe.item()
        entry = {"epoch": epoch + 1, "loss_digits": sums["id"] / steps, "loss_outliers": sums["oe"] / steps,
                 "uniform_loss": math.log(len(card.classes)), "seconds": time.perf_counter() - te}  # fmt: skip
        log.append(entry)
        print(f"epoch {epoch + 1}/{epochs}: digits {entry['loss_digits']:.4f}, outliers "
              f"{entry['loss_outliers']:.4f} (uniform = {entry['uniform_loss']:.4f}), {entry['seconds']:.0f} s", flush=True)  # fmt: skip
    return ema.eval(), log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lam", type=float, default=0.5, help="weight of the outlier loss")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--pool", type=int, default=4500, help="synthetic outliers per pool")
    ap.add_argument("--fresh", action="store_true", help="a new pool every epoch")
    ap.add_argument("--energy", type=float, nargs=2, metavar=("M_IN", "M_OUT"), default=None,
                    help="energy-bounded loss (Liu et al. 2020) with these margins instead of the uniform target")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-family", type=int, default=150)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--measure-only", action="store_true", help="measure --out as it is")
    ap.add_argument("--name", default="outlier_exposure", help="results file name")
    args = ap.parse_args()
    torch.set_num_threads(1)  # an OpenMP team on a busy shared CPU is far slower
    C.report_load()
    res: dict = {"machine": C.machine(), "recipe": vars(args) | {"out": str(args.out)}}
    if not args.measure_only:
        model, card = load_model(default_model_path())
        t0 = time.perf_counter()
        tuned, log = fine_tune(
            model, card, args.epochs, args.lam, args.lr, args.pool, args.fresh, args.seed,
            None if args.energy is None else tuple(args.energy),
        )
        res["fine_tune"] = {"log": log, "seconds": time.perf_counter() - t0}
        card = copy.deepcopy(card)
        card.name = args.out.stem
        card.created = ""
        opts = [f"--{k} {v}" for k, v in vars(args).items() if k in ("epochs", "lam", "lr", "pool", "seed")]
        card.command = "python bench/outlier_exposure.py " + " ".join(opts + (["--fresh"] if args.fresh else [])
                                                              + ([f"--energy {args.energy[0]} {args.energy[1]}"] if args.energy else []))
        card.metrics = {"note": "outlier-exposure fine-tune of mnist-resnet (bench experiment)"}
        save_model(args.out, tuned.to(memory_format=torch.contiguous_format), card)
        print(f"wrote {args.out}")
    tuned, card = load_model(args.out)
    cache = args.out.with_name(args.out.stem + "_outputs.npz")
    if not args.measure_only:
        cache.unlink(missing_ok=True)
    measured = E.measure(tuned, card, args.per_family, cache=cache)
    measured.pop("_reports")
    res.update(measured)
    E.print_report(f"{card.name}: outlier exposure ({args.epochs} epochs, lam {args.lam})", res)
    C.write_results(args.name, res)


if __name__ == "__main__":
    main()
