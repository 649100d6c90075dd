"""Inference: a `Predictor` classifies images with one model, as the app, the CLI and
the evaluation use it (conv-BN fused, channels_last, flip TTA for mirror-trained models).
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from app.core.explain import Explanation, explain_prepared
from app.core.images import ImageLoadError, load_image
from app.core.modelio import ModelCard, load_model, weights_path
from app.core.models import Classifier
from app.core.ood import AbstainRule
from app.core.precision import Choice, choose_for_inference
from app.core.preprocess import PreparedImage, prepare
from app.core.step import StepPrecision

Cancel = threading.Event | Callable[[], bool] | None
BATCH = 64  # images per forward pass when classifying many


@dataclass(frozen=True)
class Prediction:
    """One classified image.

    label/index are None when there was nothing to classify (`blank`, with `message`).
    top_k: (label, probability) pairs, best first. probabilities: one per class.
    model_input: the exact uint8 image the model received.
    region: where the digit was found on a photo, (x0, y0, x1, y1) in the image's pixels.
    note: what the user should know besides the label (e.g. several digits were found).
    verdict: whether to answer ("ok"), "unsure" between the top two, or say the image is
    "foreign" to the model's classes (`ood.AbstainRule`); verdict_message says it in
    words ("not sure: 4 or 9?", "this does not look like a digit"; "" when ok).
    calibrated: the probabilities are divided by the card's fitted temperature.
    """

    label: str | None
    index: int | None
    confidence: float
    top_k: list[tuple[str, float]]
    probabilities: list[float]
    model_input: np.ndarray
    blank: bool = False
    message: str = ""
    region: tuple[int, int, int, int] | None = None
    note: str = ""
    verdict: str = "ok"
    verdict_message: str = ""
    calibrated: bool = False

    @property
    def headline(self) -> str:
        """What to tell the user in one phrase: the label, or the verdict's message."""
        if self.blank:
            return self.message
        return self.verdict_message or str(self.label)

    def to_json(self) -> dict:
        if self.blank:
            return {"label": None, "confidence": 0.0, "top_k": [], "message": self.message}
        out = {
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "top_k": [[lbl, round(p, 6)] for lbl, p in self.top_k],
            "verdict": self.verdict,
            "calibrated": self.calibrated,
        }
        if self.verdict_message:
            out["verdict_message"] = self.verdict_message
        if self.region is not None:
            out["region"] = list(self.region)
        if self.note:
            out["note"] = self.note
        return out


def _fuse_conv_bn(module: torch.nn.Module) -> None:
    """Folds every BatchNorm that directly follows a conv into it, in place: `convN`/`bnN`
    attribute pairs (ResNet blocks and stems) and adjacent Conv2d -> BatchNorm2d in
    Sequentials (stems, projection shortcuts). The BN becomes an Identity."""
    for child in module.children():
        _fuse_conv_bn(child)
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(conv, bn)
                module[i + 1] = nn.Identity()
        return
    for name, conv in list(module.named_children()):
        if not (isinstance(conv, nn.Conv2d) and name.startswith("conv")):
            continue
        bn_name = "bn" + name[len("conv"):]
        bn = getattr(module, bn_name, None)
        if isinstance(bn, nn.BatchNorm2d):
            setattr(module, name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())


def _fused_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """An eval-only copy of `model` with conv+BN pairs fused, channels_last.

    Done by walking the modules, not with torch.fx: fx tracing patches
    `nn.Module.__call__` process-wide while it runs, which broke a training step running
    at the same time in another thread."""
    fused = copy.deepcopy(model).eval()
    with torch.no_grad():
        _fuse_conv_bn(fused)
    return fused.to(memory_format=torch.channels_last)


def abstain_rule(card: ModelCard) -> AbstainRule:
    """The card's fitted "not sure" / "does not look like" rule at its temperature; for a
    card without one, a rule that only says "not sure" (never "does not look like")."""
    t = card.temperature if card.temperature is not None else 1.0
    if card.abstain is not None:
        return AbstainRule.from_dict({**card.abstain, "temperature": t})
    return AbstainRule("msp", math.inf, t)


def flip_tta(recipe: dict) -> bool:
    """Whether a model is judged and used on each image and its mirror (logits averaged).

    A model trained on randomly mirrored images has learnt both orientations, so the
    average is a free ensemble of two views (airbench's test-time augmentation); never for
    digits, whose mirror images are other shapes. `recipe`: a model card's recipe, i.e.
    its TrainConfig as a dict."""
    return bool(recipe.get("hflip", False)) and bool(recipe.get("augment", True))


class Predictor:
    """Classifies images with one model; thread-confined (use one per thread)."""

    def __init__(
        self, model: Classifier, card: ModelCard, path: Path | None = None, precision: str = "auto"
    ) -> None:
        self.model = model.eval()
        self.card = card
        self.path = path
        self.device = next(model.parameters()).device
        # channels_last convs run ~20% faster on x86 CPUs (oneDNN); see bench/.
        self.model = self.model.to(memory_format=torch.channels_last)
        # Inference runs a copy with every BatchNorm folded into its conv: with
        # channels_last, 9-14% less CPU per image and ~20% per batch of 64
        # (bench/inference_latency.py); outputs
        # match the model to ~1e-7. `model` stays the model as loaded.
        self._forward = _fused_for_inference(self.model)
        self.tta_flip = flip_tta(card.recipe)  # mirror-trained models see each image twice
        # fp32 or bf16 autocast: `auto` measures which is faster here (app.core.precision)
        self.precision = precision
        self._choice: Choice | None = None
        # Probabilities are softmax(logits / T) with the card's fitted temperature (1 for a
        # card that was never calibrated); the rule says when not to answer. A card
        # without a fitted rule still says "not sure" between two close classes.
        self.calibrated = card.temperature is not None
        self.temperature = card.temperature if card.temperature is not None else 1.0
        self.rule = abstain_rule(card)

    @classmethod
    def load(
        cls, path: str | os.PathLike | None = None, device: str = "cpu", precision: str = "auto"
    ) -> Predictor:
        """Loads a model file; None loads the shipped default model. `precision`: auto
        (measured), fp32 or bf16."""
        from app.core.resources import default_model_path

        p = Path(path) if path is not None else default_model_path()
        model, card = load_model(p, device)
        return cls(model, card, weights_path(p), precision)

    @property
    def inference_model(self) -> nn.Module:
        """The BN-fused, channels_last copy that `predict` runs (eval only, never train)."""
        return self._forward

    @property
    def classes(self) -> list[str]:
        return self.card.classes

    def prepare(self, image: Image.Image | np.ndarray, clean: bool = False) -> PreparedImage:
        """`prepare()` for this model; clean=True for canvas drawings (the fast path)."""
        return prepare(image, self.card.input, clean=clean)

    def _to_batch(self, prepared: Sequence[PreparedImage]) -> torch.Tensor:
        arr = np.stack([p.pixels for p in prepared])
        t = torch.from_numpy(arr)
        t = t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
        return t.to(self.device).float().div_(255).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def predict_prepared(self, prepared: Sequence[PreparedImage], top_k: int = 5) -> list[Prediction]:
        """Runs the model on already prepared images (blank ones are not run)."""
        out: list[Prediction | None] = [None] * len(prepared)
        todo = [i for i, p in enumerate(prepared) if not p.blank]
        for i, p in enumerate(prepared):
            if p.blank:
                out[i] = Prediction(None, None, 0.0, [], [], p.pixels, True, p.reason)
        k = max(1, min(top_k, len(self.classes)))
        for start in range(0, len(todo), BATCH):
            idx = todo[start : start + BATCH]
            logits = self.logits(self._to_batch([prepared[i] for i in idx])).cpu()
            probs_np = torch.softmax(logits / self.temperature, 1).numpy()
            verdicts = self.rule.judge(logits.double().numpy(), self.classes)
            for row, i in enumerate(idx):
                pr = probs_np[row]
                order = np.argsort(-pr)[:k]
                best = int(order[0])
                out[i] = Prediction(
                    self.classes[best],
                    best,
                    float(pr[best]),
                    [(self.classes[j], float(pr[j])) for j in order],
                    [float(v) for v in pr],
                    prepared[i].pixels,
                    region=prepared[i].region,
                    note=prepared[i].note,
                    verdict=verdicts[row].kind,
                    verdict_message=verdicts[row].message,
                    calibrated=self.calibrated,
                )
        return [p for p in out if p is not None]

    def inference_precision(self) -> Choice:
        """fp32 or bf16 for every forward pass of this Predictor: `auto` is measured once
        per machine on batches of `BATCH` (where the gain is; a single image takes a few
        ms either way), and single images use the same, so an image gets the same answer
        alone or in a batch."""
        if self._choice is None:
            spec = self.card.input
            sample = torch.zeros(BATCH, spec.channels, spec.size, spec.size, device=self.device)
            sample = sample.contiguous(memory_format=torch.channels_last)
            self._choice = choose_for_inference(self.precision, self._forward, sample, self.card.arch)
        return self._choice

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Float logits of a float (N, C, H, W) batch in [0, 1] on the model's device."""
        with StepPrecision(self.device, self.inference_precision().dtype).autocast():
            out = self._forward(batch).float()
            if self.tta_flip:
                out = (out + self._forward(batch.flip(-1)).float()) / 2
        return out

    def explain(
        self,
        prepared: PreparedImage,
        target: int | None = None,
        method: str = "gradcam",
        *,
        fused: bool = True,
        precision: str = "auto",
    ) -> Explanation:
        """Why this model scores `prepared` as it does, for `target` (None: the predicted
        class), with the same logits the app ranks by (flip TTA included).

        Args:
            fused: explain the BN-fused, channels_last copy that `predict` runs (the
                default: no second model in memory) or the model as loaded; the maps agree
                to float noise (tests/core/test_predictor_explain.py).
            precision: integrated gradients' path passes ("auto": bf16 where the CPU has
                native bf16, `explain.integrated_gradients`).

        Raises:
            ValueError: a blank image, a target out of range or an unknown method.
        """
        model = self._forward if fused else self.model
        return explain_prepared(
            model, prepared, target, method, tta_flip=self.tta_flip, precision=precision, temperature=self.temperature
        )

    def predict(self, image: Image.Image | np.ndarray, top_k: int = 5, clean: bool = False) -> Prediction:
        """Preprocesses and classifies one image (PIL or array); clean=True for canvas
        drawings."""
        return self.predict_prepared([self.prepare(image, clean)], top_k)[0]

    def predict_many(self, images: Iterable[Image.Image | np.ndarray], top_k: int = 5) -> list[Prediction]:
        return self.predict_prepared([self.prepare(im) for im in images], top_k)

    def predict_paths(
        self,
        paths: Iterable[str | os.PathLike],
        top_k: int = 5,
        batch_size: int = 32,
        cancel: Cancel = None,
        on_image: Callable[[Path, Image.Image], object] | None = None,
    ) -> Iterator[tuple[Path, Prediction | ImageLoadError]]:
        """Classifies files in batches, yielding (path, result) in the order given.

        A file that cannot be read or classified yields an ImageLoadError saying why, and
        the others go on.

        Args:
            cancel: checked before each file: once set (an Event) or true (a callable),
                the iteration ends; files not yet yielded are not classified.
            on_image: called with each image as it is loaded (e.g. to make a thumbnail).
        """
        is_cancelled = cancel.is_set if isinstance(cancel, threading.Event) else cancel
        pending: list[tuple[Path, PreparedImage]] = []

        def flush() -> Iterator[tuple[Path, Prediction | ImageLoadError]]:
            if not pending:
                return
            results: list[Prediction] | list[ImageLoadError]
            try:
                results = self.predict_prepared([p for _, p in pending], top_k)
            except Exception as e:  # e.g. out of memory: these files fail, the rest go on
                results = [ImageLoadError(path, f"classification failed: {_describe(e)}") for path, _ in pending]
            yield from zip([path for path, _ in pending], results)
            pending.clear()

        for raw in paths:
            if is_cancelled is not None and is_cancelled():
                return
            path = Path(raw)
            try:
                image = load_image(path)
                if on_image is not None:
                    on_image(path, image)
                prepared = self.prepare(image)
            except ImageLoadError as e:
                yield from flush()
                yield path, e
                continue
            except Exception as e:  # an odd image must not end a batch of thousands
                yield from flush()
                yield path, ImageLoadError(path, f"cannot classify: {_describe(e)}")
                continue
            pending.append((path, prepared))
            if len(pending) >= batch_size:
                yield from flush()
        yield from flush()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__
