"""Which glyphs of the outlier pool's letters (`app.core.glyph_outliers`) a model reads as
a digit as surely as its own validation digits: the check behind "filter the pool's
digit look-alikes with the shipped model" (docs/calibration.md).

    python bench/glyph_scan.py [--model PATH] [--draws 6] [--top 40]

Every glyph is written `--draws` times by the random hand; per glyph the median energy
(the card's temperature) and the digit it is read as most often. Prints how many glyphs
score below the validation digits' median and 90th percentile, and the most digit-like.
"""

from __future__ import annotations

import argparse

import _common as C
import _ood_eval as E
import numpy as np
import torch

from app.core import glyph_outliers as go
from app.core import ood
from app.core.models import MNIST_SPEC
from app.core.predictor import Predictor
from app.core.preprocess import prepare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model file (default: the shipped model)")
    ap.add_argument("--draws", type=int, default=6)
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(1)
    C.report_load()
    p = Predictor.load(args.model)
    table = go.glyphs()
    rng = np.random.default_rng(11)
    px, idx = [], []
    for i, (_, _, strokes) in enumerate(table):
        for _ in range(args.draws):
            prepared = prepare(go.draw_glyph(strokes, rng, 96), MNIST_SPEC)
            if not prepared.blank:
                px.append(prepared.pixels)
                idx.append(i)
    x = torch.from_numpy(np.stack(px)).unsqueeze(1).float().div(255)
    z = torch.cat([p.logits(x[s : s + 500]) for s in range(0, len(x), 500)]).double().numpy()
    energy, read = ood.outlier_scores("energy", z, p.temperature), z.argmax(1)
    data, _, val_idx = E.trainer_split(p.card)
    zv = torch.cat([p.logits(data.images[val_idx][s : s + 500].float().div(255)) for s in range(0, len(val_idx), 500)])
    ev = ood.outlier_scores("energy", zv.double().numpy(), p.temperature)
    idx_a = np.array(idx)
    rows = sorted(
        (float(np.median(energy[idx_a == i])), font, ch, int(np.bincount(read[idx_a == i], minlength=10).argmax()))
        for i, (font, ch, _) in enumerate(table)
        if (idx_a == i).any()
    )
    for q in (0.5, 0.9):
        cut = float(np.quantile(ev, q))
        print(f"glyphs more digit-like than {q:.0%} of the validation digits (energy < {cut:.3f}): "
              f"{sum(r[0] < cut for r in rows)} of {len(rows)}")  # fmt: skip
    print(f"glyphs under the card's threshold ({p.rule.threshold:.3f}): {sum(r[0] <= p.rule.threshold for r in rows)}")
    C.print_table(["median energy", "font", "glyph", "read as"], [[f"{e:.2f}", f, c, d] for e, f, c, d in rows[: args.top]])


if __name__ == "__main__":
    main()
