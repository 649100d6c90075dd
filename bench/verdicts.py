"""What the app says about the shipped model's answers, with the temperature and rule its
card carries (`python -m app calibrate`), run through `Predictor` exactly as the canvas,
the batch table and `classify` run it:

    python bench/verdicts.py [--model PATH] [--per-family 150] [--seed 1]

Prints: accuracy, ECE and NLL on the MNIST 10k test at T = 1 and at the card's T; the
share of test digits answered, "not sure" and "does not look like"; the calibrated
confidence of canvas-like drawn digits; and the share of the seeded non-digit set
(tests/helpers/ood.py; look-alikes and blanks apart, as in docs/calibration.md) that is
flagged, per family. Writes bench/results/verdicts.json (NAME with --name).
"""

from __future__ import annotations

import argparse

import _common as C
import _ood_eval as E
import numpy as np
import torch

from app.core import calibration as cal
from app.core.data import load_builtin
from app.core.predictor import Predictor
from app.core.resources import default_model_path
from tests.helpers.ood import FAMILIES, ood_images


def _verdicts(predictor: Predictor, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, verdict kinds) of prepared uint8 images, as the Predictor decides them."""
    x = torch.as_tensor(pixels)
    x = x.unsqueeze(1) if x.ndim == 3 else x
    batches = (x[s : s + 500].float().div(255).contiguous(memory_format=torch.channels_last) for s in range(0, len(x), 500))
    z = torch.cat([predictor.logits(b) for b in batches])
    kinds = np.array([v.kind for v in predictor.rule.judge(z.double().numpy(), predictor.classes)])
    return z.numpy(), kinds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model file (default: the shipped model)")
    ap.add_argument("--per-family", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1, help="seed of the non-digit set")
    ap.add_argument("--name", default="verdicts", help="results file name")
    args = ap.parse_args()
    torch.set_num_threads(1)
    C.report_load()
    path = args.model or default_model_path()
    predictor = Predictor.load(path)
    t = predictor.temperature
    res: dict = {"model": str(path), "machine": C.machine(), "temperature": t, "rule": predictor.card.abstain}

    test = load_builtin("mnist", C.MNIST_DIR, "test")
    z, kinds = _verdicts(predictor, test.images.numpy())
    y = test.labels.numpy()
    before, after = cal.calibration_report(z, y, 1.0), cal.calibration_report(z, y, t)
    wrong = z.argmax(1) != y
    res["test"] = {
        "n": len(y), "accuracy": after.accuracy, "before": before.to_json(), "after": after.to_json(),
        **{k: float((kinds == k).mean()) for k in ("ok", "unsure", "foreign")},
        "flagged": float((kinds != "ok").mean()),
        "errors_flagged": float((kinds[wrong] != "ok").mean()) if wrong.any() else None,
        "accuracy_of_answered": float((~wrong[kinds == "ok"]).mean()),
    }  # fmt: skip

    px, labels = E.canvas_digits()
    zc, kc = _verdicts(predictor, px)
    pc = cal.softmax(zc, t)
    right = pc.argmax(1) == labels
    res["canvas"] = {
        "n": len(labels), "accuracy": float(right.mean()), "median_confidence": float(np.median(pc.max(1))),
        "confidence_before_median": float(np.median(cal.softmax(zc, 1.0).max(1))),
        "share_correct_at_98": float((pc.max(1)[right] >= 0.98).mean()), "flagged": float((kc != "ok").mean()),
    }  # fmt: skip

    items = ood_images(args.per_family, args.seed)
    zo, ko = _verdicts(predictor, np.stack([it.pixels for it in items]))
    fam = np.array([it.family for it in items])
    counted = np.array([not it.blank and not it.lookalike for it in items])
    flagged = ko != "ok"
    res["non_digits"] = {
        "n": len(items), "counted": int(counted.sum()),
        "flagged": float(flagged[counted].mean()), "foreign": float((ko[counted] == "foreign").mean()),
        "families": {f: float(flagged[counted & (fam == f)].mean()) for f in FAMILIES if (counted & (fam == f)).any()},
        "lookalikes_flagged": float(flagged[np.array([bool(it.lookalike) and not it.blank for it in items])].mean()),
    }  # fmt: skip

    r = res["test"]
    print(f"\n## {predictor.card.name}: what the app says (T = {t:.4f}, rule {res['rule']})\n")
    C.print_table(
        ["MNIST 10k test", "accuracy", "mean confidence", "ECE", "NLL"],
        [[f"T = {rep['temperature']:.4g}", f"{rep['accuracy']:.2%}", f"{rep['mean_confidence']:.2%}",
          f"{rep['ece']:.2%}", f"{rep['nll']:.4f}"] for rep in (r["before"], r["after"])],
    )  # fmt: skip
    print(f"\ntest digits: answered {r['ok']:.2%}, not sure {r['unsure']:.2%}, does not look like {r['foreign']:.2%}; "
          f"{r['errors_flagged']:.0%} of the {int(wrong.sum())} wrong answers flagged; accuracy of the answered "
          f"{r['accuracy_of_answered']:.2%}")  # fmt: skip
    c = res["canvas"]
    print(f"canvas digits ({c['n']}): accuracy {c['accuracy']:.0%}, median confidence {c['confidence_before_median']:.1%}"
          f" -> {c['median_confidence']:.1%}, correct ones >= 98%: {c['share_correct_at_98']:.0%}, flagged {c['flagged']:.0%}")  # fmt: skip
    o = res["non_digits"]
    print(f"non-digits ({o['counted']} counted of {o['n']}): flagged {o['flagged']:.1%} "
          f"(does not look like {o['foreign']:.1%}); look-alikes flagged {o['lookalikes_flagged']:.0%}")  # fmt: skip
    C.print_table(list(o["families"]), [[f"{v:.0%}" for v in o["families"].values()]])
    C.write_results(args.name, res)


if __name__ == "__main__":
    main()
