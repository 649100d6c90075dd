"""Why the model answered what it did: Grad-CAM and integrated gradients, hand-written.

Both explain one class's *logit* (for a model used with flip TTA, the average of the
image's and its mirror's logits, which is what the app ranks by), for the predicted
class or any other ("why not 9?").

- Grad-CAM (Selvaraju et al. 2017) weighs a stage's feature maps by the mean gradient
  of the logit and keeps the positive part: coarse regions, class-discriminative.
  The stage is the deepest one whose maps are still at least `MIN_CAM_SIDE` px wide
  (`gradcam_layer`): at 28x28 the last stage of a torchvision ResNet is 4x4, too coarse
  to point at a stroke; see docs/explain.md for the measurements behind the choice.
- Integrated gradients (Sundararajan et al. 2017) integrate the input gradient along
  the straight path from a black image (MNIST's background) to the input: pixel-level,
  signed, and the attributions sum to logit(input) - logit(black) (completeness).

Why not Captum: docs/explain.md (it pulls matplotlib into the app and the bundle; two
short functions do what the app needs).

Safe to run in the inference thread next to other work: the model must be in eval mode
and is never changed (gradients are taken with `torch.autograd.grad`, so no parameter's
`.grad` is written; the one forward hook is removed in a `finally` and records only the
calling thread's forward pass). Grad mode and inference mode are thread-local in torch.
Works on the plain model and on the Predictor's BN-fused, channels_last copy alike:
the hooked module is a stage (a block or a torchvision `layerN`), which the fusion
keeps under the same name.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from app.core.devices import autocast_dtype
from app.core.preprocess import PreparedImage

METHODS = {"gradcam": "Grad-CAM", "ig": "integrated gradients"}
MIN_CAM_SIDE = 7  # px; the coarsest Grad-CAM grid that still separates a digit's strokes
IG_STEPS = 16  # midpoint rule: attributions sum to the logit change within ~8% (median)
MAX_CHUNK = 64  # images per forward/backward: bounds memory (graph kept for the gradient)


@dataclass(frozen=True)
class Explanation:
    """What drove one image's score for one class.

    attribution: float32 (H, W) at the model-input resolution; Grad-CAM: >= 0;
        integrated gradients: signed (positive = evidence for the class).
    heatmap: float32 (H, W) in [0, 1]: the positive evidence scaled to its maximum
        (all zeros when there is none), what overlays draw.
    target: the class explained; predicted: the model's answer; probabilities: per class.
    explained: in words, the quantity explained (e.g. "logit of class 7, averaged over
        the image and its mirror").
    """

    method: str
    target: int
    predicted: int
    probabilities: np.ndarray
    attribution: np.ndarray
    heatmap: np.ndarray
    layer: str = ""
    explained: str = ""


# --- which layer Grad-CAM looks at ------------------------------------------------------


def _stride(module: nn.Module) -> int:
    """Downsampling factor of a block or stem: its largest conv/pool stride."""
    s = 1
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            st = m.stride if isinstance(m.stride, int) else m.stride[0]
            s = max(s, int(st))
    return s


def stages(model: nn.Module, size: int) -> list[tuple[str, int]]:
    """The network's stages as (qualified module name, output side in px for a
    `size` x `size` input), shallow to deep.

    Knows the two families in `app.core.models`: CompactResNet (`net.stem` +
    `net.layers`, a stage ends before a strided block) and torchvision ResNets
    (`net.layer1..4`). The names exist unchanged in the Predictor's fused copy.
    """
    net = getattr(model, "net", model)
    prefix = "net." if net is not model else ""
    out: list[tuple[str, int]] = []
    if hasattr(net, "layer4"):  # torchvision
        side = size
        for name in ("conv1", "maxpool"):
            side = math.ceil(side / _stride(getattr(net, name)))
        for i in range(1, 5):
            side = math.ceil(side / _stride(getattr(net, f"layer{i}")))
            out.append((f"{prefix}layer{i}", side))
        return out
    if hasattr(net, "layers") and hasattr(net, "stem"):  # CompactResNet
        blocks = list(net.layers)
        side = math.ceil(size / _stride(net.stem))
        for i, block in enumerate(blocks):
            side = math.ceil(side / _stride(block))
            if i == len(blocks) - 1 or _stride(blocks[i + 1]) > 1:
                out.append((f"{prefix}layers.{i}", side))
        return out
    raise ValueError(f"no known ResNet layout in {type(net).__name__}; pass the layer name")


def gradcam_layer(model: nn.Module, size: int | None = None) -> str:
    """The stage Grad-CAM uses: the deepest with maps at least MIN_CAM_SIDE wide (the
    first stage if none is). Deeper maps are more class-specific, shallower ones finer;
    at 28x28 this is the 7x7 last stage of resnet-mnist(-small) and torchvision's 7x7
    `layer3` (its `layer4` is 4x4); at 224 px torchvision's 7x7 `layer4`."""
    if size is None:
        spec = getattr(model, "spec", None)
        size = spec.size if spec is not None else 28
    found = stages(model, size)
    ok = [name for name, side in found if side >= MIN_CAM_SIDE]
    return ok[-1] if ok else found[0][0]


# --- shared plumbing --------------------------------------------------------------------


@contextmanager
def _gradients_on(model: nn.Module) -> Iterator[None]:
    """Grad mode on for this thread only, inside any caller's inference_mode/no_grad."""
    if model.training:
        raise ValueError(
            "explanations need a model in eval mode (a training-mode model would update its "
            "BatchNorm statistics); call model.eval() on your own copy first"
        )
    with torch.inference_mode(False), torch.enable_grad():
        yield


def model_input(model: nn.Module, images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Float (N, C, H, W) in [0, 1] on the model's device, in the model's memory format.
    uint8 input (prepared pixels, dataset tensors) is scaled; (N, H, W) gets a channel."""
    t = torch.as_tensor(images)
    if t.ndim == 3:
        t = t.unsqueeze(1)
    if t.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), not {tuple(t.shape)}")
    param = next(model.parameters())
    # clone(): a tensor made under inference_mode cannot enter autograd
    t = t.to(param.device).clone()
    t = t.float().div_(255) if t.dtype == torch.uint8 else t.float()
    conv = next((p for p in model.parameters() if p.ndim == 4), param)
    if conv.ndim == 4 and conv.is_contiguous(memory_format=torch.channels_last):
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def app_logits(model: nn.Module, x: torch.Tensor, tta_flip: bool) -> torch.Tensor:
    """Logits as the app computes them: flip-TTA models average image and mirror."""
    if not tta_flip:
        return model(x).float()
    n = len(x)
    both = model(torch.cat([x, x.flip(-1)])).float()
    return (both[:n] + both[n:]) / 2


def _targets(logits: torch.Tensor, targets: torch.Tensor | list[int] | int | None) -> torch.Tensor:
    n, k = logits.shape
    if targets is None:
        return logits.argmax(1)
    t = torch.as_tensor(targets, dtype=torch.int64, device=logits.device).reshape(-1)
    if len(t) == 1 and n > 1:
        t = t.expand(n)
    if len(t) != n:
        raise ValueError(f"{len(t)} targets for {n} images")
    if int(t.min()) < 0 or int(t.max()) >= k:
        raise ValueError(f"target class out of range 0..{k - 1}")
    return t


# --- Grad-CAM -----------------------------------------------------------------------------


def _grad_cam_chunk(
    model: nn.Module, module: nn.Module, x: torch.Tensor, targets, tta_flip: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    owner = threading.get_ident()
    captured: list[torch.Tensor] = []

    def keep(_mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        if threading.get_ident() == owner:  # another thread's forward is not ours
            captured.append(out)

    handle = module.register_forward_hook(keep)
    try:
        x = x.requires_grad_(True)  # a graph even if the parameters are frozen
        logits = app_logits(model, x, tta_flip)
    finally:
        handle.remove()
    if len(captured) != 1:
        raise RuntimeError(f"the Grad-CAM layer ran {len(captured)} times in one forward pass")
    act = captured[0]
    t = _targets(logits, targets)
    (grad,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), act)
    cam = (grad.mean((2, 3), keepdim=True) * act).sum(1)  # (B, h, w)
    if tta_flip:  # the mirror's map, mirrored back, adds to the image's: one linear score
        n = len(x)
        cam = cam[:n] + cam[n:].flip(-1)
    cam = F.interpolate(F.relu(cam)[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam[:, 0].detach(), logits.detach()


def grad_cam(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    targets: torch.Tensor | list[int] | int | None = None,
    *,
    layer: str | None = None,
    tta_flip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM maps at the input resolution.

    Args:
        model: a `Classifier` (plain or the Predictor's fused copy) in eval mode.
        images: (N, C, H, W) or (N, H, W); uint8 (0..255) or float in [0, 1].
        targets: class per image (or one for all); None: the predicted class.
        layer: module name to look at; default `gradcam_layer(model)`.
        tta_flip: explain the average of the image's and its mirror's logits.

    Returns:
        (maps (N, H, W) >= 0, logits (N, K)), float32 on the CPU.
    """
    module = model.get_submodule(layer or gradcam_layer(model))
    maps, logits = [], []
    with _gradients_on(model):
        x = model_input(model, images)
        t_all = None if targets is None else torch.as_tensor(targets).reshape(-1)
        for s in range(0, len(x), MAX_CHUNK):
            t = t_all if t_all is None or len(t_all) == 1 else t_all[s : s + MAX_CHUNK]
            m, lg = _grad_cam_chunk(model, module, x[s : s + MAX_CHUNK], t, tta_flip)
            maps.append(m.cpu())
            logits.append(lg.cpu())
    return torch.cat(maps), torch.cat(logits)


# --- integrated gradients -------------------------------------------------------------------


def _path_autocast(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 for the path's passes where the hardware has fast bf16 (the training policy,
    `devices.autocast_dtype`), never fp16, whose gradients underflow."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, not {precision!r}")
    dtype = autocast_dtype(device, precision)
    return dtype if dtype == torch.bfloat16 else None


def integrated_gradients(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    targets: torch.Tensor | list[int] | int | None = None,
    *,
    steps: int = IG_STEPS,
    tta_flip: bool = False,
    precision: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients from a black image, summed over channels.

    Args: as `grad_cam`; steps: points on the path (midpoint rule); precision: of the
        path's forward/backward passes: "auto" is bf16 on CPUs with native bf16 (maps
        correlate 0.9996 with fp32 ones, at ~0.55x the time), else fp32. The returned
        logits are always fp32, as the Predictor computes them.

    Returns:
        (attributions (N, H, W), signed, logits (N, K)), float32 on the CPU. Per image
        the attributions sum to about logit(image) - logit(black) for the target.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    out_attr, out_logits = [], []
    with _gradients_on(model):
        x_all = model_input(model, images)
        with torch.no_grad():
            logits_all = torch.cat([app_logits(model, x_all[s : s + MAX_CHUNK], tta_flip) for s in range(0, len(x_all), MAX_CHUNK)])
        t_all = _targets(logits_all, targets)
        dtype = _path_autocast(x_all.device, precision)
        per_chunk = max(1, MAX_CHUNK // (steps * (2 if tta_flip else 1)))
        for s in range(0, len(x_all), per_chunk):
            x, t = x_all[s : s + per_chunk], t_all[s : s + per_chunk]
            n = len(x)
            a = alphas.to(x.device).view(steps, 1, 1, 1, 1)
            path = (a * x.unsqueeze(0)).reshape(steps * n, *x.shape[1:])
            if x.is_contiguous(memory_format=torch.channels_last):
                path = path.contiguous(memory_format=torch.channels_last)
            path.requires_grad_(True)
            with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                logits = app_logits(model, path, tta_flip)
            score = logits.gather(1, t.repeat(steps)[:, None]).sum()
            (grad,) = torch.autograd.grad(score, path)
            attr = x * grad.float().view(steps, n, *x.shape[1:]).mean(0)  # baseline 0: (x - 0) * mean grad
            out_attr.append(attr.sum(1).detach().cpu())
        out_logits.append(logits_all.cpu())
    return torch.cat(out_attr), torch.cat(out_logits)


# --- one entry point for the app ----------------------------------------------------------


def _heatmap(attribution: np.ndarray) -> np.ndarray:
    pos = np.clip(attribution, 0.0, None)
    top = float(pos.max()) if pos.size else 0.0
    return (pos / top).astype(np.float32) if top > 0 else np.zeros_like(pos, dtype=np.float32)


def explain(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    targets: torch.Tensor | list[int] | int | None = None,
    method: str = "gradcam",
    *,
    tta_flip: bool = False,
    precision: str = "auto",
    temperature: float = 1.0,
) -> list[Explanation]:
    """Explains each image's logit for its target class (default: the predicted one).

    Args:
        model: a `Classifier` in eval mode: `Predictor.model` or its fused copy.
        images: prepared pixels, uint8 (N, H, W) / (N, C, H, W) or float in [0, 1].
        targets: class index per image, one for all, or None for the predicted class.
        method: "gradcam" or "ig".
        tta_flip: the model is used with flip TTA (`flip_tta(card.recipe)`).
        precision: integrated gradients' path precision (see there); Grad-CAM, one
            pass, is always fp32.
        temperature: the model card's calibration temperature; only the probabilities
            shown with the map use it (the attributions are of the raw logit).

    Raises:
        ValueError: unknown method, target out of range, or a model in training mode.
    """
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; use {' or '.join(METHODS)}")
    layer = ""
    if method == "gradcam":
        layer = gradcam_layer(model, int(torch.as_tensor(images).shape[-1]))
        attrs, logits = grad_cam(model, images, targets, layer=layer, tta_flip=tta_flip)
    else:
        attrs, logits = integrated_gradients(model, images, targets, tta_flip=tta_flip, precision=precision)
    t = _targets(logits, targets)
    probs = torch.softmax(logits / temperature, 1).numpy()
    pred = logits.argmax(1).numpy()
    where = ", averaged over the image and its mirror" if tta_flip else ""
    out = []
    for i, a in enumerate(attrs.numpy()):
        a = a.astype(np.float32)
        out.append(
            Explanation(
                method, int(t[i]), int(pred[i]), probs[i], a, _heatmap(a), layer,
                f"logit of class {int(t[i])}{where}",
            )  # fmt: skip
        )
    return out


def explain_prepared(
    model: nn.Module,
    prepared: PreparedImage,
    target: int | None = None,
    method: str = "gradcam",
    *,
    tta_flip: bool = False,
    precision: str = "auto",
    temperature: float = 1.0,
) -> Explanation:
    """`explain` for one prepared image (the canvas, a dropped file).

    Raises:
        ValueError: the image is blank (nothing to explain), or as `explain`.
    """
    if prepared.blank:
        raise ValueError(prepared.reason or "nothing to explain: the image is blank")
    px = np.asarray(prepared.pixels)
    batch = px[None, None] if px.ndim == 2 else px.transpose(2, 0, 1)[None]
    return explain(
        model, np.ascontiguousarray(batch), target, method, tta_flip=tta_flip, precision=precision,
        temperature=temperature,
    )[0]  # fmt: skip
