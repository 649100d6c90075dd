"""A selection set for outlier-exposure runs that is neither the non-digit test set nor
the training pool: glyphs of the Hershey fonts that `app.core.glyph_outliers` never draws
(Cyrillic, and the symbolic, astrology, meteorology and music fonts), written with the
same random hand, flagged by each model's own card rule; plus what the card says about
the model's validation digits. Choosing between runs on this keeps the test digits and
tests/helpers/ood.py out of every choice.

    python bench/oe_select.py MODEL [MODEL ...] [--n 600] [--seed 5]

Keys that are digits, digit look-alikes in Latin fonts or tiny marks are skipped; what a
held-out font draws for a key is not vetted one by one, so some glyphs may look like a
digit: the rate is for comparing runs, not a target.
"""

from __future__ import annotations

import argparse

import _common as C
import numpy as np
import torch
from HersheyFonts import HersheyFonts

from app.core import glyph_outliers as go
from app.core.models import MNIST_SPEC
from app.core.predictor import Predictor
from app.core.preprocess import prepare

HELD_OUT = ("cyrillic", "cyrilc_1", "symbolic", "astrology", "meteorology", "music")


def selection_set(n: int, seed: int) -> np.ndarray:
    glyphs = []
    for font in HELD_OUT:
        h = HersheyFonts()
        h.load_default_font(font)
        for code in range(33, 127):
            key = chr(code)
            if key in go.LOOKALIKES or key in go.TOO_SMALL:
                continue
            strokes = [s for s in h.strokes_for_text(key) if len(s) > 1]
            if strokes:
                glyphs.append(strokes)
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        prepared = prepare(go.draw_glyph(glyphs[int(rng.integers(len(glyphs)))], rng, 96), MNIST_SPEC)
        if not prepared.blank:
            out.append(prepared.pixels)
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    C.report_load()
    x = torch.from_numpy(selection_set(args.n, args.seed)).unsqueeze(1).float().div(255)
    rows = []
    for path in args.models:
        p = Predictor.load(path)
        z = torch.cat([p.logits(x[s : s + 500]) for s in range(0, len(x), 500)])
        kinds = np.array([v.kind for v in p.rule.judge(z.double().numpy(), p.classes)])
        m = p.card.metrics
        rows.append([path, f"{m.get('val_accuracy', float('nan')):.2%}", f"{p.card.abstain['flagged_val']:.2%}",
                     f"{(kinds != 'ok').mean():.1%}"])  # fmt: skip
    C.print_table(["model", "val accuracy", "val + aug flagged", f"held-out Hershey glyphs flagged ({args.n})"], rows)


if __name__ == "__main__":
    main()
