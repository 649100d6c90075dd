"""Fused outlier scores, post hoc: energy, max logit, Mahalanobis and kNN on the
penultimate features, each standardised on the reference set (the validation digits and
their augmented copies, as the app's rule reads its threshold), then summed or maxed.

    python bench/ood_fused.py MODEL [MODEL ...] [--cache-dir DIR] [--tta] [--name ood_fused]

For every variant: the threshold read off the reference set exactly as
`ood.fit_abstain_rule` does (1% budget, unsure included, 95% bound), then the share it
flags of the selection set (`oe_select.py`: held-out Hershey glyphs, what a design is
chosen on), of the MNIST test digits and of the non-digit test set (tests/helpers/ood.py,
measured only). The Gaussian and the kNN bank come from the model's own training split.

Also printed, for analysis only (never a rule): the share of non-digits flagged at the
threshold read off the *test* digits so that exactly 1% of them are flagged, i.e. the
best any threshold on that score could do. With --tta, the energy of each image averaged
over five fixed views (turned +/-8 degrees, scaled 0.9 and 1.1), or of the mean logits,
with the threshold read off the reference set's views the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _common as C
import _ood_eval as E
import numpy as np
import oe_select
import torch
import torch.nn.functional as F

from app.core import calibration as cal
from app.core import ood
from app.core.data import load_builtin
from app.core.modelio import load_model
from tests.helpers.ood import FAMILIES


def arrays_of(path: str, cache_dir: Path) -> dict[str, np.ndarray]:
    cache = cache_dir / (Path(path).parent.name + "_" + Path(path).stem + ".npz")
    if cache.is_file():
        with np.load(cache) as f:
            return dict(f)
    model, card = load_model(path)
    a = E.collect(model, card)
    sel = E.run(model, oe_select.selection_set(600, 5), False)
    a["select_logits"], a["select_feats"] = sel.logits, sel.feats
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **a)
    return a


def base_scores(
    a: dict[str, np.ndarray], sets: tuple[str, ...]
) -> tuple[float, dict[str, dict[str, np.ndarray]]]:
    t = cal.fit_temperature(a["val_logits"], a["val_labels"]).temperature
    gauss = ood.fit_feature_gaussian(
        a["train_feats"], a["train_labels"], a["train_logits"].shape[1]
    )
    out: dict[str, dict[str, np.ndarray]] = {}
    for k in sets:
        z, f = a[f"{k}_logits"], a[f"{k}_feats"]
        out[k] = {
            "energy": ood.outlier_scores("energy", z, t),
            "maxlogit": ood.outlier_scores("maxlogit", z, t),
            "maha": gauss.distances(f),
            "knn": E.knn_scores(a["train_feats"], f),
        }
    return t, out


def fuse(
    parts: dict[str, np.ndarray], ref: dict[str, np.ndarray], names: tuple[str, ...], how: str
) -> np.ndarray:
    cols = []
    for n in names:
        r, s = ref[n], parts[n]
        if how.startswith("z"):
            cols.append((s - r.mean()) / r.std())
        else:  # empirical tail probability of the reference set, -log
            rs = np.sort(r)
            ge = len(rs) - np.searchsorted(rs, s, side="left")
            cols.append(-np.log((ge + 1) / (len(rs) + 1)))
    m = np.stack(cols)
    return m.max(0) if how.endswith("max") else m.sum(0)


def oracle(
    score_test: np.ndarray,
    unsure_test: np.ndarray,
    score_ood: np.ndarray,
    unsure_ood: np.ndarray,
    rate: float = 0.01,
) -> float:
    """Non-digits flagged at the threshold that flags `rate` of the test digits (analysis
    only: read off the test digits)."""
    rest = np.sort(score_test[~unsure_test])[::-1]
    k = int(rate * len(score_test)) - int(unsure_test.sum())
    thr = rest[k] if 0 <= k < len(rest) else np.inf
    return float(((score_ood > thr) | unsure_ood).mean())


VIEWS = ((0.0, 1.0), (8.0, 1.0), (-8.0, 1.0), (0.0, 0.9), (0.0, 1.1))  # (degrees, scale)


def views(x: torch.Tensor) -> list[torch.Tensor]:
    """uint8 (N, 1, H, W) images under each of VIEWS."""
    xf, out = x.float().div(255), []
    for deg, s in VIEWS:
        r = np.deg2rad(deg)
        th = torch.tensor(
            [[np.cos(r) / s, -np.sin(r) / s, 0], [np.sin(r) / s, np.cos(r) / s, 0]],
            dtype=torch.float32,
        )
        g = F.affine_grid(th.expand(len(x), 2, 3), list(x.shape), align_corners=False)
        out.append(
            F.grid_sample(xf, g, align_corners=False).mul(255).round().clamp(0, 255).to(torch.uint8)
        )
    return out


def tta(path: str, a: dict[str, np.ndarray]) -> list[list[str]]:
    """Rows: energy over 1, 3 (turned) or 5 views, of the mean logits or mean energy."""
    model, card = load_model(path)
    data, _, val_idx = E.trainer_split(card)
    sets = {"val": data.images[val_idx], "valaug": E.augmented(data.images[val_idx], card.recipe),
            "test": load_builtin("mnist", C.MNIST_DIR, "test").images,
            "select": torch.from_numpy(oe_select.selection_set(600, 5)).unsqueeze(1),
            "ood": torch.from_numpy(a["ood_pixels"]).unsqueeze(1)}  # fmt: skip
    z = {
        k: torch.stack([ood.logits_and_features(model, v)[0] for v in views(x)]).double()
        for k, x in sets.items()
    }
    t = cal.fit_temperature(a["val_logits"], a["val_labels"]).temperature
    clear = ~a["ood_lookalike"] & ~a["ood_blank"]
    rows = []
    for nv in (1, 3, 5):
        for how in ("mean logits", "mean energy"):

            def sc(k: str, nv=nv, how=how) -> tuple[np.ndarray, np.ndarray]:
                zz = z[k][:nv]
                unsure = ood.unsure_mask(zz.mean(0).numpy(), t)
                if how == "mean logits":
                    return ood.outlier_scores("energy", zz.mean(0).numpy(), t), unsure
                return np.mean([ood.outlier_scores("energy", v.numpy(), t) for v in zz], 0), unsure

            s = {k: sc(k) for k in sets}
            ref, ref_u = (
                np.concatenate([s["val"][0], s["valaug"][0]]),
                np.concatenate([s["val"][1], s["valaug"][1]]),
            )
            allowed = min(
                ood.allowed_flags(len(ref), 0.01) - int(ref_u.sum()),
                ood.allowed_flags(len(ref), 0.01, 0.95),
            )
            thr = ood.threshold_for_budget(ref, allowed, ref_u)
            fl = {k: (s[k][0] > thr) | s[k][1] for k in sets}
            rows.append([f"{nv} view{'s' if nv > 1 else ''}, {how}", f"{fl['select'].mean():.1%}",
                         f"{fl['test'].mean():.2%}", f"**{fl['ood'][clear].mean():.1%}**",
                         f"{oracle(s['test'][0], s['test'][1], s['ood'][0][clear], s['ood'][1][clear]):.1%}"])  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("models", nargs="+")
    ap.add_argument(
        "--cache-dir", default="/tmp/ood_fused", help="model outputs are kept here (.npz)"
    )
    ap.add_argument(
        "--tta", action="store_true", help="also the averaged views (5 more passes a set)"
    )
    ap.add_argument("--name", default="ood_fused", help="results file name")
    args = ap.parse_args()
    torch.set_num_threads(1)
    C.report_load()
    sets = ("val", "valaug", "test", "select", "ood", "canvas", "pen")
    variants: list[tuple[str, tuple[str, ...], str]] = [
        (n, (n,), "zsum") for n in ("energy", "maxlogit", "maha", "knn")
    ]
    for names in (
        ("energy", "maha"),
        ("maxlogit", "maha"),
        ("energy", "knn"),
        ("energy", "maha", "knn"),
    ):
        for how in ("zsum", "zmax", "rsum", "rmax"):
            variants.append(("+".join(names) + f" {how}", names, how))
    results = {}
    for path in args.models:
        a = arrays_of(path, Path(args.cache_dir))
        t, s = base_scores(a, sets)
        ref = {n: np.concatenate([s["val"][n], s["valaug"][n]]) for n in s["val"]}
        z_ref = np.concatenate([a["val_logits"], a["valaug_logits"]])
        unsure_ref = ood.unsure_mask(z_ref, t)
        n = len(z_ref)
        total = ood.allowed_flags(n, 0.01)
        allowed = min(total - int(unsure_ref.sum()), ood.allowed_flags(n, 0.01, 0.95))
        clear = ~a["ood_lookalike"] & ~a["ood_blank"]
        fam = a["ood_family"]
        rows = []
        for label, names, how in variants:
            fused = {k: fuse(s[k], ref, names, how) for k in sets}
            r = fuse(ref, ref, names, how)
            thr = ood.threshold_for_budget(r, allowed, unsure_ref)
            fl = {k: (fused[k] > thr) | ood.unsure_mask(a[f"{k}_logits"], t) for k in sets}
            row = {
                "ref": float(((r > thr) | unsure_ref).mean()),
                "select": float(fl["select"].mean()),
                "test": float(fl["test"].mean()),
                "ood": float(fl["ood"][clear].mean()),
                "canvas": float(fl["canvas"].mean()),
                "pen": float(fl["pen"].mean()),
                "auroc": E.auroc(fused["test"], fused["ood"][clear]),
                "oracle_at_test_1pct": oracle(
                    fused["test"],
                    ood.unsure_mask(a["test_logits"], t),
                    fused["ood"][clear],
                    ood.unsure_mask(a["ood_logits"], t)[clear],
                ),
                "families": {f: float(fl["ood"][clear & (fam == f)].mean()) for f in FAMILIES},
            }
            results[f"{path} {label}"] = row
            rows.append([label, f"{row['ref']:.2%}", f"{row['select']:.1%}", f"{row['test']:.2%}", f"**{row['ood']:.1%}**",
                         f"{row['canvas']:.0%} / {row['pen']:.1%}", f"{row['auroc']:.4f}", f"{row['oracle_at_test_1pct']:.1%}",
                         *[f"{row['families'][f]:.0%}" for f in FAMILIES]])  # fmt: skip
        print(f"\n## {path} (T = {t:.4f}, reference {n}, foreign allowed {allowed})\n")
        C.print_table(["score", "ref flagged", "selection set", "MNIST test", "non-digits", "canvas / pen",
                       "AUROC test vs non-digits", "at 1% of test (oracle)", *[f[:8] for f in FAMILIES]], rows)  # fmt: skip
        if args.tta:
            print(
                f"\nviews averaged ({path}; energy, threshold read off the reference set's views):\n"
            )
            C.print_table(
                ["views", "selection set", "MNIST test", "non-digits", "at 1% of test (oracle)"],
                tta(path, a),
            )
    C.write_results(args.name, {"machine": C.machine(), "results": results})


if __name__ == "__main__":
    main()
