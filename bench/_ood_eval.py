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
from app.core.augment import augment_batch
from app.core.config import TrainConfig
from app.core.data import Dataset, load_builtin, split_train_val
from app.core.modelio import ModelCard
from app.core.predictor import flip_tta
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


# Where the threshold is read off, and with what guarantee (see ood.allowed_flags):
VARIANTS: dict[str, tuple[tuple[str, ...], float | None]] = {
    "val": (("val",), None),  # at most 1% of the 500 validation digits
    "val_bound95": (("val",), 0.95),  # ... and <= 1% on new digits with 95% confidence
    "valaug": (("val", "valaug"), None),  # validation + 5 augmented copies: 3000 images
    "valaug_bound95": (("val", "valaug"), 0.95),  # the recommended rule
}
VARIANT_WORDS = {
    "val": "flags at most 1% of the 500 validation digits",
    "val_bound95": "keeps the rate <= 1% with 95% confidence, read off the 500 validation digits",
    "valaug": "flags at most 1% of the validation digits and 5 augmented copies of each (3,000)",
    "valaug_bound95": "keeps the rate <= 1% with 95% confidence, read off validation + augmented copies",
}


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


def augmented(images: torch.Tensor, recipe: dict, copies: int = 5, seed: int = 100) -> torch.Tensor:
    """`copies` versions of each image under the model's own training augmentation
    (rotation, shear, zoom, shift, elastic warp for digits): a stand-in for new writers
    when the threshold is fitted, since the validation digits come from the training
    digits' writers."""
    cfg = TrainConfig.from_dict(recipe)
    out = []
    for r in range(copies):
        x = augment_batch(images.float().div(255), cfg, torch.Generator().manual_seed(seed + r))
        out.append(x.mul(255).round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


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


def collect(model, card: ModelCard, per_family: int = 150, ood_seed: int = 1) -> dict[str, np.ndarray]:
    """Runs the model on every set once: logits, features and labels as arrays."""
    tta = flip_tta(card.recipe)
    data, train_idx, val_idx = trainer_split(card)
    test = load_builtin("mnist", C.MNIST_DIR, "test")
    print(f"running the model on {len(train_idx)} train, {len(val_idx)} val, {len(test)} test digits ...", flush=True)
    sets: dict[str, tuple[np.ndarray | torch.Tensor, np.ndarray]] = {
        "train": (data.images[train_idx], data.labels[train_idx].numpy()),
        "val": (data.images[val_idx], data.labels[val_idx].numpy()),
        "valaug": (augmented(data.images[val_idx], card.recipe), np.tile(data.labels[val_idx].numpy(), 5)),
        "test": (test.images, test.labels.numpy()),
        "canvas": canvas_digits(),
        "pen": pen_digits(),
        "samples": sample_digits(),
    }
    dd = drawn_digits(24, 0)
    sets["drawn"] = (dd.images, dd.labels.numpy())
    print(f"building the non-digit set ({per_family} per family) ...", flush=True)
    items: list[OODImage] = ood_images(per_family, ood_seed)
    sets["ood"] = (np.stack([it.pixels for it in items]), np.full(len(items), -1))
    arrays: dict[str, np.ndarray] = {}
    for name, (pixels, labels) in sets.items():
        out = run(model, pixels, tta)
        arrays[f"{name}_logits"], arrays[f"{name}_feats"], arrays[f"{name}_labels"] = out.logits, out.feats, labels
    arrays["ood_family"] = np.array([it.family for it in items])
    arrays["ood_name"] = np.array([it.name for it in items])
    arrays["ood_lookalike"] = np.array([it.lookalike != "" for it in items])
    arrays["ood_blank"] = np.array([it.blank for it in items])
    arrays["ood_pixels"] = np.stack([it.pixels for it in items])
    arrays["classes"] = np.array(card.classes)
    return arrays


def analyse(a: dict[str, np.ndarray], budget: float = 0.01) -> dict:
    """The calibration and OOD numbers of `collect`'s arrays."""
    sets = ("train", "val", "valaug", "test", "canvas", "pen", "samples", "drawn", "ood")
    o = {k: Outputs(a[f"{k}_logits"], a[f"{k}_feats"]) for k in sets}
    y = {k: a[f"{k}_labels"] for k in sets}
    fam, look, blank = a["ood_family"], a["ood_lookalike"], a["ood_blank"]
    fit = cal.fit_temperature(o["val"].logits, y["val"])
    t = fit.temperature
    res: dict = {
        "temperature": fit.temperature,
        "temperature_fit": {"nll_before": fit.nll_before, "nll_after": fit.nll_after, "n": fit.n,
                            "at_bound": fit.at_bound, "smoothed": fit.smoothed},
        "_reports": {"before": cal.calibration_report(o["test"].logits, y["test"], 1.0),
                     "after": cal.calibration_report(o["test"].logits, y["test"], t)},
        "val_after": cal.calibration_report(o["val"].logits, y["val"], t).to_json(),
    }  # fmt: skip
    res["test_before"] = res["_reports"]["before"].to_json()
    res["test_after"] = res["_reports"]["after"].to_json()
    for name in ("samples", "canvas", "drawn", "pen"):
        p1, pt = cal.softmax(o[name].logits, 1.0), cal.softmax(o[name].logits, t)
        right = pt.argmax(1) == y[name]
        res[f"{name}_digits"] = {
            "n": len(y[name]), "accuracy": float(right.mean()),
            "confidence_before_median": float(np.median(p1.max(1))),
            "confidence_after_median": float(np.median(pt.max(1))),
            "confidence_after_min_correct": float(pt.max(1)[right].min()) if right.any() else None,
            "share_correct_at_98": float((pt.max(1)[right] >= 0.98).mean()) if right.any() else None,
        }  # fmt: skip
    res["samples_digits"]["confidence_after"] = [round(float(v), 4) for v in cal.softmax(o["samples"].logits, t).max(1)]

    gauss = ood.fit_feature_gaussian(o["train"].feats, y["train"], o["train"].logits.shape[1])
    res["gaussian_bytes"] = gauss.nbytes
    clear = ~look & ~blank
    wrong_test = o["test"].logits.argmax(1) != y["test"]
    for variant, (refs, confidence) in VARIANTS.items():
        rows: dict[str, dict] = {}
        for score in (*ood.SCORES, "knn"):
            def s_of(out: Outputs, score=score) -> np.ndarray:
                if score == "knn":
                    return knn_scores(o["train"].feats, out.feats)
                return ood.outlier_scores(score, out.logits, t, out.feats, gauss)

            unsure = {k: ood.unsure_mask(o[k].logits, t) for k in sets}
            ref_s = np.concatenate([s_of(o[k]) for k in refs])
            ref_u = np.concatenate([unsure[k] for k in refs])
            total = ood.allowed_flags(len(ref_s), budget)
            allowed = min(total - int(ref_u.sum()), ood.allowed_flags(len(ref_s), budget, confidence))
            thr = ood.threshold_for_budget(ref_s, allowed, ref_u)
            foreign = {k: s_of(o[k]) > thr for k in sets}
            flagged = {k: foreign[k] | unsure[k] for k in sets}
            fo = flagged["ood"]
            rows[score] = {
                "threshold": thr, "reference_n": len(ref_s), "foreign_allowed": allowed,
                **{k: float(flagged[k].mean()) for k in ("val", "valaug", "test", "canvas", "drawn", "pen")},
                "test_foreign": float(foreign["test"].mean()), "test_unsure": float(unsure["test"].mean()),
                "test_errors_flagged": float(flagged["test"][wrong_test].mean()) if wrong_test.any() else None,
                "samples": int(flagged["samples"].sum()),
                "families": {f: float(fo[clear & (fam == f)].mean()) if (clear & (fam == f)).any() else None for f in FAMILIES},
                "ood_all": float(fo[clear].mean()),
                "ood_all_with_blank": float((fo | blank)[~look].mean()),
                "lookalikes": float(fo[look & ~blank].mean()) if (look & ~blank).any() else None,
                "auroc_test_vs_ood": auroc(s_of(o["test"]), s_of(o["ood"])[clear]),
            }  # fmt: skip
        res[f"scores_{variant}"] = rows
    res["ood_counts"] = {
        "total": len(fam), "lookalikes": int(look.sum()), "blank": int(blank.sum()),
        "blank_per_family": {f: int((blank & (fam == f)).sum()) for f in FAMILIES},
        "counted": int(clear.sum()),
    }  # fmt: skip
    res["test_accuracy"] = float((o["test"].logits.argmax(1) == y["test"]).mean())
    res["val_accuracy"] = float((o["val"].logits.argmax(1) == y["val"]).mean())
    return res


def nondigit_sheet(a: dict[str, np.ndarray], res: dict, score: str = "energy", variant: str = "valaug_bound95"):
    """A contact sheet of the non-digit set (prepared 28x28 images) with the model's
    answer under each: "-" flagged (foreign or unsure), else the digit it would show.
    Look-alikes are framed orange, blanks grey."""
    rows = res[f"scores_{variant}"][score]
    t = res["temperature"]
    gauss = ood.fit_feature_gaussian(a["train_feats"], a["train_labels"], a["train_logits"].shape[1])
    s = ood.outlier_scores(score, a["ood_logits"], t, a["ood_feats"], gauss)
    flagged = (s > rows["threshold"]) | ood.unsure_mask(a["ood_logits"], t)
    items = [
        OODImage(str(f), str(n), "x" if lk else "", None, px, bool(b))  # type: ignore[arg-type]
        for f, n, lk, px, b in zip(a["ood_family"], a["ood_name"], a["ood_lookalike"], a["ood_pixels"], a["ood_blank"])
    ]
    answer = {id(it): ("" if it.blank else "-" if fl else str(int(z.argmax())))
              for it, fl, z in zip(items, flagged, a["ood_logits"])}  # fmt: skip
    from tests.helpers.ood import contact_sheet

    return contact_sheet(items, columns=30, note=lambda it: f"{answer[id(it)]} {it.name}")


def measure(model, card: ModelCard, per_family: int = 150, ood_seed: int = 1, cache=None) -> dict:
    """`collect` (or its saved arrays in `cache`, an .npz path, when present) + `analyse`."""
    from pathlib import Path

    if cache is not None and Path(cache).is_file():
        with np.load(cache) as f:
            arrays = dict(f)
        print(f"model outputs read from {cache}")
    else:
        arrays = collect(model, card, per_family, ood_seed)
        if cache is not None:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(cache, **arrays)
    return analyse(arrays)


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
    headers = ["score", "val", "MNIST test (foreign)", "test errors", "canvas", "drawn", "pen",
               *[f[:8] for f in fams], "all OOD", "look-alikes", "AUROC"]  # fmt: skip
    for key in ("valaug_bound95", "val"):
        rows = []
        for name, r in res[f"scores_{key}"].items():
            rows.append([
                name, f"{r['val']:.1%}", f"{r['test']:.2%} ({r['test_foreign']:.2%})",
                "-" if r["test_errors_flagged"] is None else f"{r['test_errors_flagged']:.0%}", f"{r['canvas']:.0%}",
                f"{r['drawn']:.1%}", f"{r['pen']:.1%}",
                *["-" if r["families"][f] is None else f"{r['families'][f]:.0%}" for f in fams],
                f"**{r['ood_all']:.1%}**", "-" if r["lookalikes"] is None else f"{r['lookalikes']:.0%}",
                f"{r['auroc_test_vs_ood']:.4f}",
            ])  # fmt: skip
        print(f"\nflagged (unsure or foreign) at the threshold that {VARIANT_WORDS[key]}:")
        C.print_table(headers, rows)
    print("\nall thresholds: MNIST test flagged / non-digits flagged")
    scores = list(res["scores_val"])
    C.print_table(
        ["threshold", *scores],
        [[VARIANT_WORDS[v], *[f"{res[f'scores_{v}'][sc]['test']:.2%} / {res[f'scores_{v}'][sc]['ood_all']:.1%}" for sc in scores]]
         for v in VARIANTS],
    )  # fmt: skip
