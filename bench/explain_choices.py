"""The measurements behind the explanation defaults (docs/explain.md), on validation
digits only: the 500 of the 5k MNIST training digits that the shipped model held out
(the 10k test split is never used to choose anything).

1. Grad-CAM stage: deletion-curve area (lower = more faithful) of each stage of
   resnet-mnist, next to random and brightest-pixel-first orders.
2. Integrated-gradients steps: area, correlation with a 64-step integral, completeness
   error |sum(attr) - (logit(x) - logit(black))| / |logit change|, and time per image,
   fp32 and bf16.
3. Captum, when importable (`pip install captum` in a scratch venv): the same maps from
   `LayerGradCam` and `IntegratedGradients` (max difference) and their time.

    python bench/explain_choices.py [--n 200] [--deletion-steps 16]
"""

from __future__ import annotations

import argparse
import time

import _common as C
import numpy as np
import torch

from app.core.data import load_builtin, split_train_val
from app.core.explain import grad_cam, integrated_gradients, stages
from app.core.faithfulness import curve_area, deletion_curves
from app.core.predictor import Predictor, _fused_for_inference
from app.core.resources import default_model_path


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.mean([np.corrcoef(u.ravel(), v.ravel())[0, 1] for u, v in zip(a.numpy(), b.numpy())]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="validation digits")
    ap.add_argument("--deletion-steps", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)  # CPU times per image; 2 threads on a busy machine spin-wait
    C.report_load("before explain_choices")
    info = C.machine()
    if not default_model_path().exists():
        raise SystemExit("needs the shipped model (make model)")
    predictor = Predictor.load(default_model_path())
    model = _fused_for_inference(predictor.model)
    data = load_builtin("mnist", C.MNIST_DIR, "train")
    _, val = split_train_val(len(data), 0.1, 0)  # the shipped model's held-out digits
    x = data.images[val[: args.n]]
    cams, logits = grad_cam(model, x)
    pred = logits.argmax(1)
    results: dict = {"machine": info, "n": len(x)}

    def area(saliency) -> float:
        return curve_area(deletion_curves(model, x, saliency, pred, steps=args.deletion_steps))

    rows = [["random order", "", area(None)], ["brightest pixels first", "", area(x[:, 0].float())]]
    for name, side in stages(model, 28):
        rows.append([f"Grad-CAM on {name}", f"{side}x{side}", area(grad_cam(model, x, layer=name)[0])])
    print()
    C.print_table(["deletion order", "grid", "deletion AUC"], rows)
    results["deletion"] = {r[0]: r[2] for r in rows}

    with torch.no_grad():
        black = model(torch.zeros(1, 1, 28, 28))[0]
    change = logits.gather(1, pred[:, None])[:, 0] - black[pred]
    ref, _ = integrated_gradients(model, x, steps=64, precision="fp32")
    rows = []
    for steps in (4, 8, 16, 32):
        for precision in ("fp32", "bf16"):
            t = time.process_time()
            attr, _ = integrated_gradients(model, x, steps=steps, precision=precision)
            ms = (time.process_time() - t) * 1000 / len(x)
            err = ((attr.sum((1, 2)) - change).abs() / change.abs()).numpy()
            rows.append([steps, precision, area(attr), corr(attr, ref), float(np.median(err)), float(np.percentile(err, 90)), ms])
    print()
    C.print_table(
        ["IG steps", "precision", "deletion AUC", "corr. to 64 steps", "completeness err. median", "p90", "CPU ms/image (batched)"],
        rows,
    )  # fmt: skip
    results["ig"] = rows

    try:
        from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam
    except ImportError:
        print("\ncaptum not installed: comparison skipped")
    else:
        xf = x[:32].float().div(255).contiguous(memory_format=torch.channels_last)
        t = pred[:32]
        c = LayerGradCam(model, model.get_submodule("net.layers.5")).attribute(xf, target=t, relu_attributions=True)
        c = LayerAttribution.interpolate(c, (28, 28), "bilinear")[:, 0].detach()
        i = IntegratedGradients(model).attribute(xf, target=t, n_steps=16, method="riemann_middle")[:, 0].detach()
        ours_c = grad_cam(model, x[:32])[0]
        ours_i = integrated_gradients(model, x[:32], precision="fp32")[0]
        print(f"\ncaptum vs ours, max abs difference: Grad-CAM {float((c - ours_c).abs().max()):.2g} "
              f"(scale {float(ours_c.max()):.2g}), IG {float((i - ours_i).abs().max()):.2g} (scale {float(ours_i.abs().max()):.2g})")  # fmt: skip
    C.report_load("after")
    C.write_results("explain_choices", results)


if __name__ == "__main__":
    main()
