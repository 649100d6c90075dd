"""How far a model's confidence can be trusted: temperature scaling, ECE, NLL, Brier
score and reliability diagrams.

A model trained with label smoothing under-states its certainty (a crisp digit shows
"91% confident" although the model is right 99.4% of the time). Dividing its logits by
one temperature T, fitted on held-out data by minimising the negative log-likelihood
(Guo et al. 2017, "On Calibration of Modern Neural Networks"), fixes most of that; T
never changes which class wins. Everything here works on logits and labels, so it does
not care how the model was run.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.core.fileio import atomic_write_bytes

ECE_BINS = 15  # equal-width confidence bins, the usual choice since Guo et al. 2017
T_MIN, T_MAX = 0.05, 20.0  # a fitted temperature outside this says the data was too small
_BISECTION_STEPS = 80  # halvings of the log-temperature bracket: far below float32 precision


def _as_tensors(logits, labels) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.as_tensor(np.asarray(logits) if not isinstance(logits, torch.Tensor) else logits)
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    z = z.detach().to("cpu", torch.float64)
    y = y.detach().to("cpu", torch.int64).reshape(-1)
    if z.ndim != 2 or len(z) != len(y):
        raise ValueError(f"need logits (N, C) and N labels, got {tuple(z.shape)} and {len(y)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= z.shape[1]):
        raise ValueError(f"labels must be in 0..{z.shape[1] - 1}")
    if not torch.isfinite(z).all():
        raise ValueError("logits contain NaN or infinity")
    return z, y


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Probabilities of (N, C) logits divided by `temperature`, as float64 numpy."""
    z = torch.as_tensor(np.asarray(logits) if not isinstance(logits, torch.Tensor) else logits)
    return torch.softmax(z.detach().cpu().double() / temperature, dim=-1).numpy()


def nll(logits, labels, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (cross-entropy) of the labels under logits / T."""
    z, y = _as_tensors(logits, labels)
    if not len(y):
        return float("nan")
    return float(torch.nn.functional.cross_entropy(z / temperature, y))


def _nll_slope(z: torch.Tensor, y: torch.Tensor, beta: float) -> float:
    """d/d(beta) of the mean NLL of softmax(beta * z): E_p[z] - z_y, averaged.

    The NLL is convex in beta = 1/T (a log-sum-exp of linear functions minus a linear
    term), so this slope rises monotonically and its root is the unique optimum."""
    p = torch.softmax(beta * z, dim=1)
    return float(((p * z).sum(1) - z.gather(1, y[:, None])[:, 0]).mean())


@dataclass(frozen=True)
class TemperatureFit:
    """A fitted temperature and what it did on the data it was fitted on.

    at_bound: the best temperature lay outside [T_MIN, T_MAX] (e.g. a validation set on
    which the model made no mistake gives no evidence how sure it should be); the
    temperature is then the bound and `smoothed` says whether the fit fell back to
    add-one smoothing of the targets (see `fit_temperature`).
    """

    temperature: float
    nll_before: float
    nll_after: float
    n: int
    at_bound: bool = False
    smoothed: bool = False


def _solve_beta(z: torch.Tensor, y: torch.Tensor | None, soft: torch.Tensor | None) -> float:
    """Root of the NLL slope in log(beta), by bisection within [1/T_MAX, 1/T_MIN]."""

    def slope(beta: float) -> float:
        if soft is None:
            assert y is not None
            return _nll_slope(z, y, beta)
        p = torch.softmax(beta * z, dim=1)
        return float(((p * z).sum(1) - (soft * z).sum(1)).mean())

    lo, hi = math.log(1 / T_MAX), math.log(1 / T_MIN)
    if slope(math.exp(lo)) >= 0:
        return math.exp(lo)
    if slope(math.exp(hi)) <= 0:
        return math.exp(hi)
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        if slope(math.exp(mid)) > 0:
            hi = mid
        else:
            lo = mid
    return math.exp((lo + hi) / 2)


def fit_temperature(logits, labels) -> TemperatureFit:
    """The temperature T minimising the NLL of `labels` under softmax(logits / T).

    Deterministic (bisection on the convex problem's slope in float64, no random
    start). Degenerate data is handled, never an exception for well-formed input:
    no samples, or all logits equal, give T = 1; when the model is right on every
    sample with a margin the NLL keeps falling as T -> 0, so the targets are smoothed
    by Laplace's rule of succession (an error rate of 1 / (n + 2) is assumed rather
    than 0) before fitting, and the result is clipped to [T_MIN, T_MAX].

    Args:
        logits: (N, C) raw model outputs (tensor or array).
        labels: (N,) true class indices.

    Raises:
        ValueError: mismatched shapes, labels out of range, NaN/inf logits.
    """
    z, y = _as_tensors(logits, labels)
    n = len(y)
    if n == 0 or float((z - z.mean(1, keepdim=True)).abs().max()) == 0.0:
        value = nll(z, y) if n else float("nan")
        return TemperatureFit(1.0, value, value, n)
    before = nll(z, y)
    beta = _solve_beta(z, y, None)
    smoothed = False
    if beta >= 1 / T_MIN * (1 - 1e-9):  # confident and never wrong: no finite optimum
        eps = 1.0 / (n + 2)
        k = z.shape[1]
        soft = torch.full_like(z, eps / (k - 1))
        soft.scatter_(1, y[:, None], 1.0 - eps)
        beta = _solve_beta(z, None, soft)
        smoothed = True
    t = 1.0 / beta
    at_bound = t <= T_MIN * (1 + 1e-9) or t >= T_MAX * (1 - 1e-9)
    return TemperatureFit(t, before, nll(z, y, t), n, at_bound, smoothed)


# --- measures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics of confidence against accuracy (bins of equal width on [0, 1]).

    edges: bins + 1 edges. count, confidence (mean max-probability), accuracy: per bin
    (confidence and accuracy are 0 where count is 0).
    """

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def n(self) -> int:
        return int(self.count.sum())

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean |accuracy - confidence|."""
        if self.n == 0:
            return float("nan")
        return float((self.count * np.abs(self.accuracy - self.confidence)).sum() / self.n)


def reliability_bins(probs, labels, bins: int = ECE_BINS) -> ReliabilityBins:
    """Bins the top-class probability of each sample; bin i holds (i/bins, (i+1)/bins]."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"need probabilities (N, C) and N labels, got {p.shape} and {len(y)}")
    conf = p.max(1) if len(p) else np.zeros(0)
    correct = (p.argmax(1) == y).astype(np.float64) if len(p) else np.zeros(0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Right-closed bins; a confidence of exactly 0 (impossible for a softmax) joins bin 0.
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.int64)
    safe = np.maximum(count, 1)
    confidence = np.bincount(idx, weights=conf, minlength=bins) / safe
    accuracy = np.bincount(idx, weights=correct, minlength=bins) / safe
    return ReliabilityBins(edges, count, confidence, accuracy)


def ece(probs, labels, bins: int = ECE_BINS) -> float:
    """Expected calibration error of (N, C) probabilities, `bins` equal-width bins."""
    return reliability_bins(probs, labels, bins).ece


def brier(probs, labels) -> float:
    """Mean over samples of sum_c (p_c - [c == label])^2 (0 is perfect, 2 the worst)."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    if not len(p):
        return float("nan")
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(((p - onehot) ** 2).sum(1).mean())


@dataclass(frozen=True)
class CalibrationReport:
    """Calibration of a model's probabilities on labelled data at one temperature."""

    temperature: float
    n: int
    accuracy: float
    mean_confidence: float
    ece: float
    nll: float
    brier: float
    bins: ReliabilityBins

    def to_json(self) -> dict:
        return {
            "temperature": round(self.temperature, 6),
            "n": self.n,
            "accuracy": round(self.accuracy, 6),
            "mean_confidence": round(self.mean_confidence, 6),
            "ece": round(self.ece, 6),
            "nll": round(self.nll, 6),
            "brier": round(self.brier, 6),
        }


def calibration_report(logits, labels, temperature: float = 1.0, bins: int = ECE_BINS) -> CalibrationReport:
    """Accuracy, mean confidence, ECE, NLL and Brier score of softmax(logits / T)."""
    z, y = _as_tensors(logits, labels)
    p = softmax(z, temperature)
    y_np = y.numpy()
    rb = reliability_bins(p, y_np, bins)
    n = len(y_np)
    return CalibrationReport(
        temperature,
        n,
        float((p.argmax(1) == y_np).mean()) if n else float("nan"),
        float(p.max(1).mean()) if n else float("nan"),
        rb.ece,
        nll(z, y, temperature),
        brier(p, y_np),
        rb,
    )


# --- reliability diagram ----------------------------------------------------------------------


def _font(size: int):
    from PIL import ImageFont

    try:  # Pillow >= 10.1 ships a scalable default font; older ones a fixed bitmap
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def reliability_diagram(report: CalibrationReport, title: str = "", size: int = 560):
    """A reliability diagram as a PIL image: per bin, a bar of the accuracy against
    the bin's confidence range, the gap to the mean confidence shaded, the diagonal of
    perfect calibration, the number of samples above each bar, and the ECE in the title.
    """
    from PIL import Image, ImageDraw

    b = report.bins
    w, h = size, int(size * 1.08)
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    f_small, f_mid = _font(max(9, size // 52)), _font(max(11, size // 34))
    left, right, top, bottom = int(0.14 * w), int(0.04 * w), int(0.15 * h), int(0.12 * h)
    pw, ph = w - left - right, h - top - bottom

    def px(x: float, y: float) -> tuple[float, float]:
        return left + x * pw, top + (1 - y) * ph

    head = f"{title}  " if title else ""
    d.text(
        (w / 2, 0.035 * h),
        f"{head}ECE {report.ece:.2%} (T = {report.temperature:.3g})",
        fill="black", font=f_mid, anchor="mt",
    )  # fmt: skip
    d.text(
        (w / 2, 0.075 * h),
        f"accuracy {report.accuracy:.2%}, mean confidence {report.mean_confidence:.2%}, "
        f"NLL {report.nll:.4f}, n = {report.n}",
        fill="#444", font=f_small, anchor="mt",
    )  # fmt: skip
    for k in range(11):  # grid and ticks every 0.1
        v = k / 10
        d.line([px(v, 0), px(v, 1)], fill="#eee")
        d.line([px(0, v), px(1, v)], fill="#eee")
        d.text((px(v, 0)[0], px(v, 0)[1] + 4), f"{v:.1f}", fill="black", font=f_small, anchor="mt")
        d.text((px(0, v)[0] - 4, px(0, v)[1]), f"{v:.1f}", fill="black", font=f_small, anchor="rm")
    d.text((left + pw / 2, h - 0.035 * h), "confidence (top-class probability)", fill="black", font=f_mid, anchor="mb")
    d.text((0.02 * w, top - 0.03 * h), "accuracy", fill="black", font=f_mid, anchor="lb")
    for i in range(len(b.count)):
        if b.count[i] == 0:
            continue
        x0, x1 = b.edges[i], b.edges[i + 1]
        acc, conf = b.accuracy[i], b.confidence[i]
        d.rectangle([px(x0, acc), px(x1, 0)], fill="#4a7fc1", outline="#1f4e8c")
        lo, hi = sorted((acc, conf))
        if hi - lo > 1e-9:  # the gap between what the model says and what it achieves
            d.rectangle([px(x0, hi), px(x1, lo)], fill="#f2b8b5", outline="#c0392b")
        cx, cy = px((x0 + x1) / 2, max(acc, conf))
        d.text((cx, cy - 3), str(int(b.count[i])), fill="black", font=f_small, anchor="mb")
    d.line([px(0, 0), px(1, 1)], fill="#666", width=2)
    d.rectangle([px(0, 1), px(1, 0)], outline="black")
    lx, ly = px(0.04, 0.96)
    d.rectangle([lx, ly, lx + 14, ly + 10], fill="#4a7fc1", outline="#1f4e8c")
    d.text((lx + 20, ly + 5), "accuracy per bin", fill="black", font=f_small, anchor="lm")
    d.rectangle([lx, ly + 16, lx + 14, ly + 26], fill="#f2b8b5", outline="#c0392b")
    d.text((lx + 20, ly + 21), "gap to mean confidence", fill="black", font=f_small, anchor="lm")
    d.text((lx + 20, ly + 37), "numbers: images per bin", fill="black", font=f_small, anchor="lm")
    return img


def save_reliability_diagram(
    report: CalibrationReport, path: str | os.PathLike, title: str = "", size: int = 560
) -> Path:
    """Writes `reliability_diagram(...)` as a PNG; returns the path.

    Raises:
        OSError: the file cannot be written (the caller turns it into a message).
    """
    p = Path(path)
    buf = io.BytesIO()
    reliability_diagram(report, title, size).save(buf, format="PNG")
    atomic_write_bytes(p, buf.getvalue())  # never a half-written PNG in place of a good one
    return p
