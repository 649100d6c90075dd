"""Is a saliency map faithful? The deletion curve (Petsiuk et al. 2018, RISE).

Pixels are set to black (the background of every prepared input) in the map's order,
most salient first, and the model's probability for the explained class is read after
each step. A map that finds what the model relies on makes the probability fall fast:
a small area under the curve. A random order is the reference.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from app.core.explain import app_logits, model_input


@torch.inference_mode()
def deletion_curves(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    saliency: torch.Tensor | np.ndarray | None,
    targets: torch.Tensor | np.ndarray,
    *,
    steps: int = 16,
    tta_flip: bool = False,
    seed: int = 0,
    batch_size: int = 512,
) -> np.ndarray:
    """Probability of `targets` as pixels are deleted, most salient first.

    Args:
        model: a `Classifier` in eval mode.
        images: (N, C, H, W) or (N, H, W), uint8 or float in [0, 1].
        saliency: (N, H, W); None deletes in a random order (the reference).
        targets: class per image whose probability is tracked.
        steps: the curve has steps + 1 points, from 0 to all pixels deleted.
        seed: for the random order, and to break ties in the saliency order.

    Returns:
        (N, steps + 1) probabilities (`curve_area` sums them up).
    """
    x = model_input(model, images)
    n, _, h, w = x.shape
    gen = torch.Generator().manual_seed(seed)
    jitter = torch.rand(n, h * w, generator=gen)
    if saliency is None:
        score = jitter
    else:
        s = torch.as_tensor(np.asarray(saliency), dtype=torch.float32).reshape(n, h * w)
        # ties (Grad-CAM's zeros) are broken at random, not in raster order
        span = (s.amax(1, keepdim=True) - s.amin(1, keepdim=True)).clamp(min=1e-12)
        score = s / span + 1e-6 * jitter
    rank = torch.empty(n, h * w, dtype=torch.int64)
    rank.scatter_(1, score.argsort(1, descending=True), torch.arange(h * w).expand(n, -1).contiguous())
    counts = torch.round(torch.linspace(0, h * w, steps + 1)).long()[1:-1]  # the inner points
    t = torch.as_tensor(np.asarray(targets), dtype=torch.int64).to(x.device)
    out = torch.empty(n, steps + 1)
    k = len(counts)

    def probs_of(batch: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        if x.is_contiguous(memory_format=torch.channels_last):
            batch = batch.contiguous(memory_format=torch.channels_last)
        return torch.softmax(app_logits(model, batch, tta_flip), 1).gather(1, tt[:, None])[:, 0].cpu()

    # Both ends are the same for every order: the image itself, and all black.
    per = max(1, batch_size)
    out[:, 0] = torch.cat([probs_of(x[s : s + per], t[s : s + per]) for s in range(0, n, per)])
    black = torch.softmax(app_logits(model, torch.zeros_like(x[:1]), tta_flip), 1)[0].cpu()
    out[:, -1] = black[t.cpu()]
    per = max(1, batch_size // max(k, 1))
    for s0 in range(0, n if k else 0, per):
        xb, rb = x[s0 : s0 + per], rank[s0 : s0 + per].to(x.device)
        keep = (rb[:, None, :] >= counts.to(x.device)[None, :, None]).view(len(xb), k, 1, h, w)
        batch = (xb[:, None] * keep).reshape(-1, *xb.shape[1:])
        tt = t[s0 : s0 + per].repeat_interleave(k)
        # Once a good order has deleted all the ink the rest is black: no forward pass.
        probs = black[tt.cpu()]
        live = batch.flatten(1).amax(1) > 0
        if bool(live.any()):
            probs[live.cpu()] = probs_of(batch[live], tt[live])
        out[s0 : s0 + per, 1:-1] = probs.view(len(xb), k)
    return out.numpy()


def curve_area(curves: np.ndarray) -> float:
    """Mean area under deletion curves (trapezoid rule, x from 0 to 1)."""
    c = np.asarray(curves, dtype=np.float64)
    return float(((c[:, 1:] + c[:, :-1]) / 2).mean())
