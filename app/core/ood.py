"""When a model should not answer: "not sure: A or B?" and "this does not look like ...".

A classifier always names one of its classes, even for a scribble or a shirt. This
module turns a model's outputs into a verdict per image:

- ``foreign``: the image looks like none of the classes. An outlier score (higher =
  stranger) above a threshold. Scores: the maximum softmax probability (Hendrycks &
  Gimpel 2017), the maximum logit, the energy -T*logsumexp(z/T) (Liu et al. 2020), and
  the Mahalanobis distance of the penultimate features to the nearest class mean under
  one shared covariance (Lee et al. 2018).
- ``unsure``: it looks like the classes, but two of them about equally: the calibrated
  runner-up is at least `unsure_ratio` times as likely as the winner.
- ``ok``: answer with the top class.

The threshold is fitted on held-out in-distribution data so that at most `budget` (1%)
of it is flagged, unsure and foreign together, and the foreign rate on new images stays
within the budget with 95% confidence (`allowed_flags`). Validation images share their
writers (or photographers) with the training images, so a threshold read off them alone
flags about twice the budget on new ones (docs/calibration.md): pass the validation
logits together with those of a few augmented copies of each (the model's own training
augmentation), which stand in for new writers.

Nothing here knows about digits: messages use the model's class names. Scores on a
model that never saw an outlier separate poorly; outlier exposure in training
(`app.core.outliers`) is what makes them work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SCORES = ("msp", "maxlogit", "energy", "mahalanobis")
DEFAULT_BUDGET = 0.01  # share of held-out in-distribution images that may be flagged
UNSURE_RATIO = 0.5  # runner-up at least half as likely as the winner: "not sure: A or B?"
DEFAULT_CONFIDENCE = 0.95  # the budget holds on new images with this confidence
RULE_FORMAT = 1


# --- running a model -------------------------------------------------------------------------


def _head(model: nn.Module) -> nn.Module:
    """The final linear layer (`fc`) of the app's ResNets (compact and torchvision)."""
    net = getattr(model, "net", model)
    fc = getattr(net, "fc", None)
    if not isinstance(fc, nn.Linear):
        raise ValueError(f"{type(net).__name__} has no final linear layer `fc`")
    return fc


@torch.no_grad()  # not inference_mode: callers may use the outputs in autograd
def logits_and_features(
    model: nn.Module, images: torch.Tensor, batch_size: int = 500, tta_flip: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float logits (N, K) and penultimate features (N, D) of uint8 images (N, C, H, W).

    The features are the input of the final linear layer (after global pooling), taken
    with a forward hook, so any of the app's ResNets works without changes. With
    `tta_flip` both are averaged over the image and its mirror, as the app runs such
    models.
    """
    fc = _head(model)
    grabbed: list[torch.Tensor] = []
    hook = fc.register_forward_pre_hook(lambda _m, args: grabbed.append(args[0].detach().float()))
    model.eval()
    device = next(model.parameters()).device
    logits, feats = [], []
    try:
        for start in range(0, len(images), batch_size):
            xb = images[start : start + batch_size].to(device).float().div_(255)
            grabbed.clear()
            out = model(xb).float()
            f = grabbed[0]
            if tta_flip:
                out = (out + model(xb.flip(-1)).float()) / 2
                f = (f + grabbed[1]) / 2
            logits.append(out.cpu())
            feats.append(f.flatten(1).cpu())
    finally:
        hook.remove()
    if not logits:
        n_cls = fc.out_features
        return torch.zeros(0, n_cls), torch.zeros(0, fc.in_features)
    return torch.cat(logits), torch.cat(feats)


# --- class-conditional Gaussian on features --------------------------------------------------


@dataclass(frozen=True)
class FeatureGaussian:
    """Class means (K, D) and the inverse of a shared, shrunk covariance (D, D), float32.

    Stored with a model it costs (K + D) * D * 4 bytes: 70 KB for the 128 features of
    resnet-mnist, 1 MB for ResNet-18/34's 512, 17 MB for ResNet-50's 2048.
    """

    means: np.ndarray
    precision: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.means.nbytes + self.precision.nbytes)

    def distances(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Squared Mahalanobis distance of each row to its nearest class mean (N,)."""
        f = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        mu = torch.as_tensor(self.means, dtype=torch.float64)
        prec = torch.as_tensor(self.precision, dtype=torch.float64)
        if len(f) == 0:
            return np.zeros(0)
        # (f - mu)^T P (f - mu) for all pairs, expanded: f P f - 2 f P mu + mu P mu
        fp = f @ prec
        d = (fp * f).sum(1, keepdim=True) - 2 * fp @ mu.T + ((mu @ prec) * mu).sum(1)[None]
        return d.min(1).values.clamp_min(0).numpy()


def fit_feature_gaussian(features, labels, num_classes: int) -> FeatureGaussian:
    """Class means and a shared covariance of training features (Lee et al. 2018).

    The covariance is shrunk toward a scaled identity by D / (D + N), so that a small
    dataset (fewer images than features) still gives a usable, invertible matrix.

    Raises:
        ValueError: no features, or a class without any.
    """
    f = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if f.ndim != 2 or len(f) == 0 or len(f) != len(y):
        raise ValueError("need features (N, D) with N >= 1 and N labels")
    counts = torch.bincount(y, minlength=num_classes)
    if int(counts.min()) == 0:
        raise ValueError(f"class {int(counts.argmin())} has no samples to fit a mean on")
    means = torch.zeros(num_classes, f.shape[1], dtype=torch.float64).index_add_(0, y, f) / counts[:, None]
    centred = f - means[y]
    n, d = f.shape
    cov = centred.T @ centred / n
    alpha = d / (d + n)
    scale = float(torch.trace(cov)) / d or 1.0
    cov = (1 - alpha) * cov + alpha * scale * torch.eye(d, dtype=torch.float64)
    precision = torch.linalg.inv(cov)
    return FeatureGaussian(means.float().numpy(), precision.float().numpy())


# --- scores ---------------------------------------------------------------------------------


def outlier_scores(
    score: str,
    logits,
    temperature: float = 1.0,
    features=None,
    gaussian: FeatureGaussian | None = None,
) -> np.ndarray:
    """One outlier score per image (higher = less like the training data).

    Args:
        score: one of SCORES.
        logits: (N, K) raw logits.
        temperature: the model's calibration temperature (msp and energy use it).
        features, gaussian: penultimate features and the fitted Gaussian (mahalanobis).
    """
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    if score == "msp":
        return (1.0 - torch.softmax(z / temperature, 1).max(1).values).numpy()
    if score == "maxlogit":
        return (-z.max(1).values).numpy()
    if score == "energy":
        return (-temperature * torch.logsumexp(z / temperature, 1)).numpy()
    if score == "mahalanobis":
        if features is None or gaussian is None:
            raise ValueError("the mahalanobis score needs features and a fitted FeatureGaussian")
        return gaussian.distances(features)
    raise ValueError(f"unknown score {score!r}; use one of {', '.join(SCORES)}")


def allowed_flags(n: int, budget: float, confidence: float | None = None) -> int:
    """How many of `n` held-out images a rule may flag to keep within `budget`.

    Without `confidence`: floor(budget * n). With it: the largest k for which the
    one-sided Clopper-Pearson bound says, at that confidence, that the true rate is at
    most `budget` (P[Binomial(n, budget) <= k] <= 1 - confidence), or 0 if none is.
    A rate read off 500 digits is noisy, and new writers differ from the training ones
    (MNIST's test digits come from other people): for n = 500 and 1% this allows 1
    flag, not 5.
    """
    plain = int(math.floor(budget * n + 1e-9))
    if confidence is None or n == 0 or budget <= 0:
        return plain
    alpha = 1.0 - confidence
    log_p, log_q = math.log(budget), math.log1p(-budget)
    cdf, k = 0.0, -1
    while k < plain:
        i = k + 1
        cdf += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        if cdf > alpha:
            break
        k = i
    return max(k, 0)


def threshold_for_budget(scores, allowed: int, already_flagged=None) -> float:
    """The lowest threshold such that `scores > threshold` flags at most `allowed` of
    the images not `already_flagged` (bool, e.g. unsure); +inf when there are none."""
    s = np.asarray(scores, dtype=np.float64)
    done = np.zeros(len(s), dtype=bool) if already_flagged is None else np.asarray(already_flagged, bool)
    rest = np.sort(s[~done])[::-1]
    if len(rest) == 0:
        return float("inf")
    if allowed <= 0:
        return float(rest[0])  # flag nothing seen so far (ties included)
    if allowed >= len(rest):
        return float(rest[-1]) - 1e-12
    # Ties at the threshold stay unflagged (strict >), so the budget holds with ties too.
    return float(rest[allowed])


# --- verdicts ---------------------------------------------------------------------------------


def describe_classes(classes: Sequence[str], limit: int = 4) -> str:
    """The classes in words: "0-9", "cat, dog or bird", "T-shirt/top, Trouser, ... (10)"."""
    names = [str(c) for c in classes]
    if len(names) > 2 and all(n.isdigit() and len(n) == 1 for n in names):
        values = [int(n) for n in names]
        if values == list(range(values[0], values[0] + len(values))):
            return f"{names[0]}\u2013{names[-1]}"
    if len(names) <= limit:
        return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
    return ", ".join(names[: limit - 1]) + f", \u2026 ({len(names)} classes)"


def kind_of(classes: Sequence[str]) -> str:
    """What a model's classes are, for "this does not look like ...": "a digit" when every
    class is one decimal digit, "a letter" when every class is one letter, otherwise the
    names themselves (`describe_classes`)."""
    names = [str(c) for c in classes]
    if all(len(n) == 1 and n.isdecimal() for n in names):
        return "a digit"
    if all(len(n) == 1 and n.isalpha() for n in names):
        return "a letter"
    return describe_classes(names)


@dataclass(frozen=True)
class Verdict:
    """What to tell the user about one image.

    kind: "ok" (answer), "unsure" (between the two `candidates`) or "foreign" (none of
    the classes). message: a short sentence ("" when ok). score: the outlier score.
    """

    kind: str
    message: str
    candidates: tuple[str, str]
    score: float

    def to_json(self) -> dict:
        return {"kind": self.kind, "message": self.message, "candidates": list(self.candidates),
                "score": round(float(self.score), 6)}  # fmt: skip


@dataclass(frozen=True)
class AbstainRule:
    """A fitted decision rule: when to say "not sure" and "does not look like".

    score: one of SCORES. threshold: flag as foreign when the score is above it.
    temperature: the calibration temperature the probabilities use. unsure_ratio: flag
    as unsure when p2 >= unsure_ratio * p1. flagged_val: the share of the held-out
    in-distribution images this rule flagged when it was fitted (n_val of them).
    gaussian: class means and precision, for the mahalanobis score only.
    """

    score: str
    threshold: float
    temperature: float = 1.0
    unsure_ratio: float = UNSURE_RATIO
    budget: float = DEFAULT_BUDGET
    flagged_val: float = 0.0
    n_val: int = 0
    gaussian: FeatureGaussian | None = None

    @property
    def needs_features(self) -> bool:
        return self.score == "mahalanobis"

    def scores(self, logits, features=None) -> np.ndarray:
        return outlier_scores(self.score, logits, self.temperature, features, self.gaussian)

    def judge(self, logits, classes: Sequence[str], features=None) -> list[Verdict]:
        """A verdict for each row of `logits` (and `features`, for mahalanobis)."""
        z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
        if len(z) == 0:
            return []
        s = self.scores(z, features)
        p = torch.softmax(z / self.temperature, 1)
        top = torch.topk(p, 2, dim=1)
        what = kind_of(classes)
        out = []
        for i in range(len(z)):
            a, b = (classes[int(j)] for j in top.indices[i])
            p1, p2 = (float(v) for v in top.values[i])
            if s[i] > self.threshold:
                out.append(Verdict("foreign", f"this does not look like {what}", (a, b), float(s[i])))
            elif p2 >= self.unsure_ratio * p1:
                out.append(Verdict("unsure", f"not sure: {a} or {b}?", (a, b), float(s[i])))
            else:
                out.append(Verdict("ok", "", (a, b), float(s[i])))
        return out

    def flags(self, logits, features=None) -> np.ndarray:
        """Boolean (N,): flagged (unsure or foreign), without building messages."""
        z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
        return (self.scores(z, features) > self.threshold) | unsure_mask(z, self.temperature, self.unsure_ratio)

    def to_dict(self) -> dict:
        """JSON-ready, for the model card (the Gaussian's arrays are stored apart)."""
        return {
            "format": RULE_FORMAT, "score": self.score, "threshold": self.threshold,
            "temperature": self.temperature, "unsure_ratio": self.unsure_ratio,
            "budget": self.budget, "flagged_val": self.flagged_val, "n_val": self.n_val,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict, gaussian: FeatureGaussian | None = None) -> AbstainRule:
        """Raises ValueError for an unknown score or a mahalanobis rule without its Gaussian."""
        rule = cls(
            str(d["score"]), float(d["threshold"]), float(d.get("temperature", 1.0)),
            float(d.get("unsure_ratio", UNSURE_RATIO)), float(d.get("budget", DEFAULT_BUDGET)),
            float(d.get("flagged_val", 0.0)), int(d.get("n_val", 0)), gaussian,
        )  # fmt: skip
        if rule.score not in SCORES:
            raise ValueError(f"unknown outlier score {rule.score!r}")
        if rule.needs_features and gaussian is None:
            raise ValueError("a mahalanobis rule needs its class means and precision")
        return rule


def unsure_mask(logits, temperature: float = 1.0, ratio: float = UNSURE_RATIO) -> np.ndarray:
    """Boolean (N,): the calibrated runner-up is at least `ratio` times the winner."""
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    if len(z) == 0:
        return np.zeros(0, dtype=bool)
    top = torch.topk(torch.softmax(z / temperature, 1), 2, dim=1).values
    return (top[:, 1] >= ratio * top[:, 0]).numpy()


def fit_abstain_rule(
    logits,
    score: str = "msp",
    temperature: float = 1.0,
    budget: float = DEFAULT_BUDGET,
    features=None,
    gaussian: FeatureGaussian | None = None,
    unsure_ratio: float = UNSURE_RATIO,
    confidence: float | None = DEFAULT_CONFIDENCE,
) -> AbstainRule:
    """Fits the foreign threshold on held-out in-distribution data.

    At most floor(budget * N) of the held-out images are flagged in all, unsure ones
    included; the foreign flags alone are also held to `allowed_flags(N, budget,
    confidence)`, so that the rate on new images stays within the budget with that
    confidence. "Unsure" follows from the calibrated probabilities (`unsure_ratio`);
    only if it alone would take more than half the budget (a weak model) is the ratio
    raised until it takes at most half. With no held-out data nothing is flagged as
    foreign.

    Args:
        logits: (N, K) logits of held-out images of the model's own classes (the
            validation split, best with augmented copies of it; see the module notes).
        score, temperature, features, gaussian: see `outlier_scores`.
        budget: the largest share of those images that may be flagged.
        confidence: see `allowed_flags`; None for the plain share.
    """
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; use one of {', '.join(SCORES)}")
    if not 0 <= budget < 1:
        raise ValueError(f"budget must be in [0, 1), not {budget}")
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    n = len(z)
    if n == 0:
        return AbstainRule(score, float("inf"), temperature, unsure_ratio, budget, 0.0, 0, gaussian)
    s = outlier_scores(score, z, temperature, features, gaussian)
    total = allowed_flags(n, budget)
    unsure = unsure_mask(z, temperature, unsure_ratio)
    while unsure.sum() > total // 2 and unsure_ratio < 1.0:
        unsure_ratio = min(1.0, unsure_ratio + 0.05)
        unsure = unsure_mask(z, temperature, unsure_ratio)
    foreign = min(total - int(unsure.sum()), allowed_flags(n, budget, confidence))
    threshold = threshold_for_budget(s, foreign, unsure)
    flagged = float(((s > threshold) | unsure).mean())
    return AbstainRule(score, threshold, temperature, unsure_ratio, budget, flagged, n, gaussian)
