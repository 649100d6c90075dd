"""Calibration and "not a digit" table of a digit model (default: the shipped one).

    python bench/calibration_ood.py [--model PATH] [--per-family 150] [--seed 1]

Prints: the temperature fitted on the trainer's own validation digits; accuracy, mean
confidence, ECE (15 bins), NLL and Brier score on the MNIST 10k test before and after;
the calibrated confidence of drawn digits; and, for each outlier score, the share of
images flagged ("not sure" or "does not look like") at the threshold that flags at most
1% of the validation digits: on validation, the MNIST test, canvas-like digits and each
family of the seeded non-digit set (tests/helpers/ood.py). Writes
bench/results/calibration_ood.json, the reliability diagrams before/after as PNGs
in bench/results/, and the model's outputs (--cached reuses them).
"""

from __future__ import annotations

import argparse

import _common as C
import _ood_eval as E
import numpy as np
import torch

from app.core import calibration as cal
from app.core.modelio import load_model
from app.core.resources import default_model_path
from tests.helpers.ood import ood_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model file (default: the shipped model)")
    ap.add_argument("--per-family", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1, help="seed of the non-digit set")
    ap.add_argument("--name", default="calibration_ood", help="results file name")
    ap.add_argument("--cached", action="store_true", help="reuse the model outputs saved by the last run")
    args = ap.parse_args()
    torch.set_num_threads(1)  # an OpenMP team on a busy shared CPU is far slower
    C.report_load()
    path = args.model or default_model_path()
    model, card = load_model(path)
    cache = C.RESULTS / f"{args.name}_outputs.npz"
    if not args.cached:
        cache.unlink(missing_ok=True)
    res = E.measure(model, card, args.per_family, args.seed, cache)
    res["model"] = str(path)
    res["machine"] = C.machine()
    E.print_report(f"{card.name}: calibration and out-of-distribution", res)
    C.RESULTS.mkdir(parents=True, exist_ok=True)
    for key, report in res["_reports"].items():
        out = cal.save_reliability_diagram(report, C.RESULTS / f"{args.name}_reliability_{key}.png", f"{card.name}, MNIST test")
        print(f"wrote {out.relative_to(C.ROOT)}")
    with np.load(cache) as f:
        arrays = dict(f)
    if "ood_pixels" not in arrays:  # outputs saved by an older version: redraw the set (seeded)
        arrays["ood_pixels"] = np.stack([it.pixels for it in ood_images(args.per_family, args.seed)])
    if len(arrays["ood_pixels"]) == len(arrays["ood_logits"]):
        sheet = C.RESULTS / f"{args.name}_nondigits.png"
        E.nondigit_sheet(arrays, res).save(sheet)
        print(f"wrote {sheet.relative_to(C.ROOT)} (under each image: '-' flagged, else the digit shown)")
    res = {k: v for k, v in res.items() if not k.startswith("_")}
    C.write_results(args.name, res)


if __name__ == "__main__":
    main()
