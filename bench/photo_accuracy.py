"""Accuracy on generated photos and scans, per condition: the photo front end vs the
clean-drawing path (which is what every image got before the front end existed).

    python bench/photo_accuracy.py [--per 100] [--seed 1] [--conditions ...] [--mnist-test]

The images come from tests.helpers.photos (seeded; MNIST test-split writers for every
other image when the files are there). --mnist-test also sends the 10k MNIST test digits
through both paths. Writes bench/results/photo_accuracy.json.
"""

from __future__ import annotations

import argparse
import time

import _common as C
import torch

from app.core.predictor import Predictor
from tests.helpers.photos import CONDITIONS, load_mnist_test, make_sample


def accuracy(predictor: Predictor, images, labels, clean: bool) -> tuple[float, int]:
    prepared = [predictor.prepare(im, clean=clean) for im in images]
    preds = predictor.predict_prepared(prepared)
    right = sum(1 for p, y in zip(preds, labels) if p.label == str(y))
    return right / len(labels), sum(1 for p in prepared if p.blank)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per", type=int, default=100, help="images per condition")
    ap.add_argument("--seed", type=int, default=1, help="1: not the tests' seed (0)")
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    ap.add_argument("--mnist-test", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    predictor = Predictor.load()
    mnist = load_mnist_test(C.MNIST_DIR)
    results: dict = {"machine": C.machine(), "per": args.per, "seed": args.seed, "mnist_writers": mnist is not None}
    rows = []
    for cond in args.conditions:
        t = time.perf_counter()
        samples = [make_sample(cond, i, args.seed, mnist) for i in range(args.per)]
        gen_s = time.perf_counter() - t
        images, labels = [s.image for s in samples], [s.label for s in samples]
        before, blank_before = accuracy(predictor, images, labels, clean=True)
        t = time.perf_counter()
        after, blank_after = accuracy(predictor, images, labels, clean=False)
        per_img = (time.perf_counter() - t) / len(images) * 1000
        results[cond] = {"before": before, "after": after, "blank_before": blank_before, "blank_after": blank_after}
        rows.append([cond, len(images), f"{before:.1%}", f"{after:.1%}", blank_before, blank_after, per_img, gen_s])
        print(f"{cond}: {before:.1%} -> {after:.1%}", flush=True)
    print()
    C.print_table(["condition", "images", "before", "after", "blank before", "blank after", "ms/img after",
                   "generate s"], rows)  # fmt: skip
    if args.mnist_test and mnist is not None:
        images, labels = mnist
        rows = []
        for clean in (True, False):
            acc, blanks = accuracy(predictor, list(images), list(labels), clean)
            results[f"mnist_test_{'clean' if clean else 'photo'}"] = acc
            rows.append(["clean path" if clean else "photo front end", len(labels), f"{acc:.2%}", blanks])
        print()
        C.print_table(["MNIST 10k test", "images", "accuracy", "blank"], rows)
    C.write_results("photo_accuracy", results)


if __name__ == "__main__":
    main()
