"""Calibration and out-of-distribution measurements of one digit model, shared by
bench/calibration_ood.py (the shipped model) and bench/outlier_exposure.py.

Data: the 5k MNIST training digits split exactly as the trainer splits them
(`split_train_val(len(data), val_fraction, seed)` after the recipe's `limit`), the 10k
test split (only measured, never used to choose anything), canvas-like drawn digits, and
the seeded non-digit set of tests/helpers/ood.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import _common as C
import numpy as np
import torch
from PIL import Image

from app.core import calibration as cal
from app.core import ood
from app.core.data import Dataset, load_builtin, split_train_val
from app.core.modelio import ModelCard, flip_tta
from app.core.preprocess import prepare
from app.core.resources import resource_path
from tests.helpers.data import drawn_digits
from tests.helpers.digits import digit_strokes, draw_digit
from tests.helpers.ood import FAMILIES, OODImage, draw_strokes, ood_images

KNN_K = 10  # neighbours for the kNN score (Sun et al. 2022 use k = 50 on 50k images)


def trainer_split(card: ModelCard) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """The training data and its (train, val) indices, as the Trainer made them."""
    data = load_builtin("mnist", C.MNIST_DIR, "train")
    limit, seed = int(card.recipe.get("limit", 0)), int(card.recipe.get("seed", 0))
    if limit and limit < len(data):  # same subset as Trainer.run
        data = data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:limit])
    train_idx, val_idx = split_train_val(len(data), float(card.recipe.get("val_fraction", 0.1)), seed)
    return data, train_idx, val_idx


def canvas_digits(n_per_digit: int = 10, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Digits drawn like the app's canvas (280 px, round pen 5-14% of the side), prepared."""
    rng = np.random.default_rng(seed)
    pix, labels = [], []
    for d in range(10):
        for _ in range(n_per_digit):
            side = rng.uniform(0.5, 0.85) * 280
            box = (rng.uniform(0, 280 - side), rng.uniform(0, 280 - side), side * rng.uniform(0.6, 1.0), side)
            pix.append(prepare(draw_digit(d, 280, pen=rng.uniform(0.05, 0.14) * 280, box=box)).pixels)
            labels.append(d)
    return np.stack(pix), np.array(labels)


def pen_digits(n_per_digit: int = 30, seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Digits drawn by the same hand-like pen as the stroke letters of the non-digit set
    (jitter, slant, rotation, nib), prepared: if a rule flags these, it reacts to the
    drawing style, not to the shape."""
    rng = np.random.default_rng(seed)
    strokes = digit_strokes()
    pix, labels = [], []
    for d in range(10):
        for _ in range(n_per_digit):
            pix.append(prepare(draw_strokes(strokes[str(d)], rng, jitter=rng.uniform(0.01, 0.03))).pixels)
            labels.append(d)
    return np.stack(pix), np.array(labels)


def sample_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled sample images digit_0..9.png, prepared."""
    pix = [prepare(Image.open(resource_path("samples", f"digit_{d}.png"))).pixels for d in range(10)]
    return np.stack(pix), np.arange(10)


@dataclass
class Outputs:
    logits: np.ndarray
    feats: np.ndarray


def run(model, pixels: np.ndarray | torch.Tensor, tta: bool) -> Outputs:
    x = torch.as_tensor(pixels)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    z, f = ood.logits_and_features(model, x, tta_flip=tta)
    return Outputs(z.numpy(), f.numpy())


def knn_scores(train_feats: np.ndarray, feats: np.ndarray, k: int = KNN_K) -> np.ndarray:
    """Minus the cosine similarity to the k-th nearest training feature (higher = stranger)."""
    a = torch.nn.functional.normalize(torch.as_tensor(train_feats), dim=1)
    b = torch.nn.functional.normalize(torch.as_tensor(feats), dim=1)
    sims = b @ a.T
    return (-sims.topk(k, dim=1).values[:, -1]).numpy()


def measure(model, card: ModelCard, per_family: int = 150, ood_seed: int = 1, budget: float = 0.01) -> dict:
    """Everything the report needs, as plain numbers."""
    tta = flip_tta(card.recipe)
    data, train_idx, val_idx = trainer_split(card)
    test = load_builtin("mnist", C.MNIST_DIR, "test")
    print(f"running the model on {len(train_idx)} train, {len(val_idx)} val, {len(test)} test digits ...", flush=True)
    tr = run(model, data.images[train_idx], tta)
    va = run(model, data.images[val_idx], tta)
    te = run(model, test.images, tta)
    y_tr, y_va, y_te = data.labels[train_idx].numpy(), data.labels[val_idx].numpy(), test.labels.numpy()
    cpix, clab = canvas_digits()
    cv = run(model, cpix, tta)
    dd = drawn_digits(24, 0)
    dr = run(model, dd.images, tta)
    ppix, plab = pen_digits()
    pe = run(model, ppix, tta)
    spix, slab = sample_digits()
    sa = run(model, spix, tta)
    print(f"building the non-digit set ({per_family} per family) ...", flush=True)
    items: list[OODImage] = ood_images(per_family, ood_seed)
    oo = run(model, np.stack([it.pixels for it in items]), tta)
    fam = np.array([it.family for it in items])
    look = np.array([it.lookalike != "" for it in items])
    blank = np.array([it.blank for it in items])

    fit = cal.fit_temperature(va.logits, y_va)
    t = fit.temperature
    res: dict = {
        "temperature": fit.temperature,
        "temperature_fit": {"nll_before": fit.nll_before, "nll_after": fit.nll_after, "n": fit.n,
                            "at_bound": fit.at_bound, "smoothed": fit.smoothed},
        "_reports": {"before": cal.calibration_report(te.logits, y_te, 1.0),
                     "after": cal.calibration_report(te.logits, y_te, t)},
        "val_after": cal.calibration_report(va.logits, y_va, t).to_json(),
    }  # fmt: skip
    res["test_before"] = res["_reports"]["before"].to_json()
    res["test_after"] = res["_reports"]["after"].to_json()
    for name, out, y in (("samples", sa, slab), ("canvas", cv, clab), ("drawn", dr, dd.labels.numpy()),
                         ("pen", pe, plab)):
        p1 = cal.softmax(out.logits, 1.0)
        pt = cal.softmax(out.logits, t)
        right = pt.argmax(1) == y
        res[f"{name}_digits"] = {
            "n": len(y), "accuracy": float(right.mean()),
            "confidence_before_median": float(np.median(p1.max(1))),
            "confidence_after_median": float(np.median(pt.max(1))),
            "confidence_after_min_correct": float(pt.max(1)[right].min()) if right.any() else None,
            "share_correct_at_98": float((pt.max(1)[right] >= 0.98).mean()) if right.any() else None,
        }  # fmt: skip
    res["samples_digits"]["confidence_after"] = [round(float(v), 4) for v in cal.softmax(sa.logits, t).max(1)]

    gauss = ood.fit_feature_gaussian(tr.feats, y_tr, len(card.classes))
    res["gaussian_bytes"] = gauss.nbytes
    scores: dict[str, dict] = {}
    for score in (*ood.SCORES, "knn"):
        def s_of(out: Outputs, score=score) -> np.ndarray:
            if score == "knn":
                return knn_scores(tr.feats, out.feats)
            return ood.outlier_scores(score, out.logits, t, out.feats, gauss)

        unsure_va = ood.unsure_mask(torch.as_tensor(va.logits, dtype=torch.float64), t, ood.UNSURE_RATIO)
        thr = ood.threshold_for_budget(s_of(va), budget, unsure_va)

        def flagged(out: Outputs, thr=thr, s_of=s_of) -> np.ndarray:
            z = torch.as_tensor(out.logits, dtype=torch.float64)
            return (s_of(out) > thr) | ood.unsure_mask(z, t, ood.UNSURE_RATIO)

        fo = flagged(oo)
        clear = ~look & ~blank
        row = {
            "threshold": thr,
            "val": float(flagged(va).mean()), "test": float(flagged(te).mean()),
            "test_unsure": float(ood.unsure_mask(torch.as_tensor(te.logits, dtype=torch.float64), t, ood.UNSURE_RATIO).mean()),
            "canvas": float(flagged(cv).mean()), "drawn": float(flagged(dr).mean()),
            "pen": float(flagged(pe).mean()),
            "samples": int(flagged(sa).sum()),
            "families": {f: float(fo[clear & (fam == f)].mean()) if (clear & (fam == f)).any() else None for f in FAMILIES},
            "ood_all": float(fo[clear].mean()),
            "ood_all_with_blank": float((fo | blank)[~look].mean()),
            "lookalikes": float(fo[look & ~blank].mean()) if (look & ~blank).any() else None,
            "auroc_test_vs_ood": auroc(s_of(te), s_of(oo)[clear]),
        }  # fmt: skip
        scores[score] = row
    res["scores"] = scores
    res["ood_counts"] = {
        "total": len(items), "lookalikes": int(look.sum()), "blank": int(blank.sum()),
        "blank_per_family": {f: int((blank & (fam == f)).sum()) for f in FAMILIES},
        "counted": int((~look & ~blank).sum()),
    }  # fmt: skip
    res["test_accuracy"] = float((te.logits.argmax(1) == y_te).mean())
    res["val_accuracy"] = float((va.logits.argmax(1) == y_va).mean())
    return res


def auroc(inlier: np.ndarray, outlier: np.ndarray) -> float:
    """P(score of a random outlier > score of a random inlier), ties counted half."""
    x = np.concatenate([inlier, outlier])
    order = x.argsort(kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):  # average ranks of ties
        m = x == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    n1, n2 = len(inlier), len(outlier)
    return float((ranks[n1:].sum() - n2 * (n2 + 1) / 2) / (n1 * n2))


def print_report(title: str, res: dict) -> None:
    print(f"\n## {title}\n")
    b, a = res["test_before"], res["test_after"]
    print(f"temperature fitted on {res['temperature_fit']['n']} validation digits: T = {res['temperature']:.4f}")
    C.print_table(
        ["MNIST 10k test", "accuracy", "mean confidence", "ECE (15 bins)", "NLL", "Brier"],
        [[f"T = {r['temperature']:.3g}", f"{r['accuracy']:.2%}", f"{r['mean_confidence']:.2%}",
          f"{r['ece']:.2%}", f"{r['nll']:.4f}", f"{r['brier']:.4f}"] for r in (b, a)],
    )  # fmt: skip
    print()
    rows = []
    for k in ("samples", "canvas", "drawn", "pen"):
        d = res[f"{k}_digits"]
        rows.append([k, d["n"], f"{d['accuracy']:.1%}", f"{d['confidence_before_median']:.1%}",
                     f"{d['confidence_after_median']:.1%}",
                     "-" if d["share_correct_at_98"] is None else f"{d['share_correct_at_98']:.0%}"])  # fmt: skip
    C.print_table(["drawn digits", "n", "accuracy", "median conf. T=1", "median conf. calibrated", "correct ones >= 98%"], rows)
    print()
    oc = res["ood_counts"]
    print(f"non-digits: {oc['total']} images, {oc['lookalikes']} look-alikes (reported apart), "
          f"{oc['blank']} blank after prepare() (never answered), {oc['counted']} counted")  # fmt: skip
    fams = list(FAMILIES)
    headers = ["score", "val", "MNIST test", "canvas", "drawn", "pen", *[f[:8] for f in fams], "all OOD", "look-alikes", "AUROC"]
    rows = []
    for name, r in res["scores"].items():
        rows.append([
            name, f"{r['val']:.1%}", f"{r['test']:.2%}", f"{r['canvas']:.0%}", f"{r['drawn']:.1%}", f"{r['pen']:.1%}",
            *["-" if r["families"][f] is None else f"{r['families'][f]:.0%}" for f in fams],
            f"**{r['ood_all']:.1%}**", "-" if r["lookalikes"] is None else f"{r['lookalikes']:.0%}",
            f"{r['auroc_test_vs_ood']:.4f}",
        ])  # fmt: skip
    print("flagged (unsure or foreign) at the threshold that flags <= 1% of the validation digits:")
    C.print_table(headers, rows)
