"""Model files and inference.

A model is `NAME.safetensors` (weights only) + `NAME.json` (its card). Nothing a user
hands us is ever unpickled: weights are read with safetensors, and the card is JSON.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app import __version__
from app.core import fields
from app.core.images import ImageLoadError, load_image
from app.core.models import ARCHITECTURES, Classifier, InputSpec, build_model, count_parameters
from app.core.preprocess import PreparedImage, prepare
from app.core.reading import FileProblem, open_regular, read_capped

CARD_FORMAT = 1
MAX_CARD_BYTES = 16_000_000  # a 100,000-class card is ~5 MB
MAX_CLASSES = 100_000
MAX_CLASS_NAME = 200  # characters
MAX_WEIGHTS_BYTES = 2**31  # ResNet-50 is ~100 MB


class ModelFileError(Exception):
    """A model file that cannot be used; str() is a user-readable message."""


@dataclass
class ModelCard:
    """Everything needed to rebuild, use and judge a model."""

    name: str
    arch: str
    classes: list[str]
    input: InputSpec
    dataset: str = ""
    train_samples: int = 0
    command: str = ""
    metrics: dict = field(default_factory=dict)  # e.g. {"test_accuracy": .., "test_split": ..}
    recipe: dict = field(default_factory=dict)
    created: str = ""
    app_version: str = __version__
    torch_version: str = torch.__version__
    parameters: int = 0
    format: int = CARD_FORMAT

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"] = self.input.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "card") -> ModelCard:
        """Builds a card from parsed JSON, checking every field's type and range (the
        one validation of a card; unknown fields are ignored).

        Raises:
            ModelFileError: naming `source` and the field that is wrong.
        """
        if not isinstance(d, dict):
            raise ModelFileError(f"{source}: model card is not a JSON object")
        try:
            fmt = fields.integer(d, "format", 1, 1_000_000, CARD_FORMAT)
            if fmt > CARD_FORMAT:
                raise fields.FieldError(
                    f"format {fmt} is newer than this version of ResNet Studio reads "
                    f"({CARD_FORMAT}); update the app"
                )
            arch = str(fields.text(d, "arch", max_len=100))
            if arch not in ARCHITECTURES:
                raise ModelFileError(
                    f"{source}: unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})"
                )
            card = cls(
                name=str(fields.text(d, "name", "", max_len=1000)),
                arch=arch,
                classes=fields.names(d, "classes", 2, MAX_CLASSES, MAX_CLASS_NAME),
                input=InputSpec.from_dict(d["input"]),
                dataset=str(fields.text(d, "dataset", "")),
                train_samples=fields.integer(d, "train_samples", 0, 10**12, 0),
                command=str(fields.text(d, "command", "")),
                metrics=_checked_metrics(fields.mapping(d, "metrics", {})),
                recipe=_checked_recipe(fields.mapping(d, "recipe", {})),
                created=str(fields.text(d, "created", "", max_len=100)),
                app_version=str(fields.text(d, "app_version", "", max_len=100)),
                torch_version=str(fields.text(d, "torch_version", "", max_len=100)),
                parameters=fields.integer(d, "parameters", 0, 10**12, 0),
                format=fmt,
            )
        except KeyError as e:
            raise ModelFileError(f"{source}: model card lacks the field {e.args[0]!r}") from None
        except ValueError as e:  # FieldError, and InputSpec's own checks
            raise ModelFileError(f"{source}: invalid model card ({e})") from None
        return card

    def summary(self) -> str:
        acc = self.metrics.get("test_accuracy")
        split = self.metrics.get("test_split") or "test"
        acc_s = f", {acc * 100:.2f}% on {split}" if fields.is_number(acc) else ""
        return f"{self.name} ({self.arch}, {len(self.classes)} classes{acc_s})"


def _checked_metrics(metrics: dict) -> dict:
    """The metrics the app reads or shows must have their type (accuracy in 0..1, loss
    >= 0, or null); other entries are kept as they are."""
    w = "metrics."
    for key in ("test_accuracy", "val_accuracy"):
        fields.number(metrics, key, 0.0, 1.0, None, w, allow_none=True)
    for key in ("test_loss", "final_train_loss"):
        fields.number(metrics, key, 0.0, math.inf, None, w, allow_none=True)
    if metrics.get("epochs_trained") is not None:
        fields.integer(metrics, "epochs_trained", 0, 10**9, where=w)
    for key in ("test_split", "val_split"):
        fields.text(metrics, key, None, w, max_len=10_000, allow_none=True)
    per_class = metrics.get("test_per_class")
    if per_class is not None and not (
        isinstance(per_class, list) and all(fields.is_number(a) and 0 <= a <= 1 for a in per_class)
    ):
        raise fields.FieldError(f"{w}test_per_class must be a list of numbers in 0..1")
    return dict(metrics)


def _checked_recipe(recipe: dict) -> dict:
    """The recipe settings that change how the model is used (`flip_tta`) must be
    true/false; the rest is a record of the training run."""
    for key in ("hflip", "augment"):
        if key in recipe:
            fields.boolean(recipe, key, where="recipe.")
    return dict(recipe)


def card_path(weights: str | os.PathLike) -> Path:
    return Path(weights).with_suffix(".json")


def weights_path(path: str | os.PathLike) -> Path:
    """Accepts NAME.safetensors, NAME.json or NAME and returns NAME.safetensors."""
    p = Path(path)
    return p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")


def _new_file_mode(path: Path) -> int:
    """Permissions for a file we (re)write: those of the file it replaces, else the usual
    rw-r--r-- (mkstemp's private 0600 would hide a saved model from other users)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644


def _stage(path: Path, write) -> str:
    """Writes a synced temp file beside `path` and returns its name (removed on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _atomic_write(path: Path, write) -> None:
    """Writes through a temp file in the same folder + rename: a crash or a full disk
    never leaves a half-written file in place of a good one."""
    tmp = _stage(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    _atomic_write(Path(path), lambda f: f.write(data))


def save_model(path: str | os.PathLike, model: Classifier, card: ModelCard) -> Path:
    """Saves weights + card atomically; returns the weights path.

    Raises:
        ModelFileError: the folder is not writable or the disk is full (the previous
            model at that path, if any, is left intact).
    """
    from safetensors.torch import save as st_save

    wpath = weights_path(path)
    card.name = card.name or wpath.stem
    card.parameters = count_parameters(model)
    card.created = card.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"arch": card.arch, "app": "resnet-studio", "app_version": __version__}
    weights = st_save(tensors, metadata=meta)
    card_bytes = json.dumps(card.to_dict(), indent=2).encode() + b"\n"
    # Both files are written in full before either replaces its old version: a full disk
    # while writing the card must not leave new weights beside the old card.
    staged: list[str] = []
    try:
        staged.append(_stage(wpath, lambda f: f.write(weights)))
        staged.append(_stage(card_path(wpath), lambda f: f.write(card_bytes)))
        os.replace(staged[0], wpath)
        os.replace(staged[1], card_path(wpath))
    except OSError as e:
        for tmp in staged:
            _unlink_quietly(tmp)
        raise ModelFileError(f"cannot save model to {wpath}: {e.strerror or e}") from None
    return wpath


def _check_safetensors_header(path: Path) -> None:
    """Rejects anything that is not a safetensors file before any parser sees it."""
    try:
        f = open_regular(path, MAX_WEIGHTS_BYTES, "a model file")
    except FileProblem as e:
        problem = "model file not found" if e.problem == "file not found" else e.problem
        raise ModelFileError(f"{path}: {problem}") from None
    try:
        with f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
            if len(head) < 8:
                raise ModelFileError(f"{path}: not a safetensors file (only {size} bytes)")
            # A safetensors header (JSON) starts at byte 8. Its 8-byte length may well
            # begin with 0x80 (a header of 128, 384, ... bytes), so 0x80 alone is no pickle.
            if head[8:9] != b"{" and (head[:1] == b"\x80" or head[:4] == b"PK\x03\x04"):
                raise ModelFileError(
                    f"{path}: this is a PyTorch pickle, not a safetensors file; pickles are "
                    "never loaded because they can run code"
                )
            (n,) = struct.unpack("<Q", head[:8])
            if n > min(size - 8, 100_000_000):
                raise ModelFileError(f"{path}: not a safetensors file, or truncated (bad header)")
            f.seek(8)
            header = f.read(n)
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read model file ({e.strerror or e})") from None
    try:
        meta = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{path}: not a safetensors file (header is not JSON)") from None
    try:
        end = max((int(v["data_offsets"][1]) for k, v in meta.items() if k != "__metadata__"), default=0)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise ModelFileError(f"{path}: not a safetensors file (malformed header)") from None
    if 8 + n + end > size:
        raise ModelFileError(
            f"{path}: truncated: the header promises {8 + n + end} bytes, the file has {size}"
        )


def read_card(path: str | os.PathLike) -> ModelCard:
    """Reads and validates the card of a model (NAME.safetensors, NAME.json or NAME).

    Raises:
        ModelFileError: missing, not a regular file, too large, not JSON, or a field
            with the wrong type or value.
    """
    cpath = card_path(weights_path(path))
    try:
        raw = read_capped(cpath, MAX_CARD_BYTES, "a model card")
    except FileProblem as e:
        if e.problem == "file not found":
            raise ModelFileError(
                f"{cpath}: model card missing; a model needs NAME.safetensors and NAME.json "
                "side by side"
            ) from None
        raise ModelFileError(f"{cpath}: cannot read model card: {e.problem}") from None
    try:
        d = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelFileError(f"{cpath}: model card is not valid JSON ({e})") from None
    return ModelCard.from_dict(d, str(cpath))


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Classifier, ModelCard]:
    """Loads a model file (NAME.safetensors + NAME.json).

    Raises:
        ModelFileError: missing/invalid card, not safetensors, truncated, or weights that
            do not match the card's architecture or class count.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    wpath = weights_path(path)
    card = read_card(wpath)
    _check_safetensors_header(wpath)
    try:
        state = load_file(str(wpath), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{wpath}: cannot read weights ({e})") from None
    broken = [k for k, t in state.items() if t.is_floating_point() and not bool(t.isfinite().all())]
    if broken:
        # Such weights give NaN probabilities for every image.
        raise ModelFileError(
            f"{wpath}: damaged weights: {broken[0]} holds NaN or infinite values"
            + (f" (and {len(broken) - 1} more tensors)" if len(broken) > 1 else "")
        )
    model = build_model(card.arch, len(card.classes), card.input)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"shape mismatch: {'; '.join(wrong[:3])}")
        if missing:
            parts.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected weights (e.g. {unexpected[0]})")
        raise ModelFileError(
            f"{wpath}: weights do not match the card ({card.arch}, {len(card.classes)} classes): "
            + ", ".join(parts)
        )
    model.load_state_dict(state)
    model.eval()
    return model.to(device), card


# --- inference ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """One classified image.

    label/index are None when there was nothing to classify (`blank`, with `message`).
    top_k: (label, probability) pairs, best first. probabilities: one per class.
    model_input: the exact uint8 image the model received.
    """

    label: str | None
    index: int | None
    confidence: float
    top_k: list[tuple[str, float]]
    probabilities: list[float]
    model_input: np.ndarray
    blank: bool = False
    message: str = ""

    def to_json(self) -> dict:
        if self.blank:
            return {"label": None, "confidence": 0.0, "top_k": [], "message": self.message}
        return {
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "top_k": [[lbl, round(p, 6)] for lbl, p in self.top_k],
        }


def _fuse_conv_bn(module: torch.nn.Module) -> None:
    """Folds every BatchNorm that directly follows a conv into it, in place: `convN`/`bnN`
    attribute pairs (ResNet blocks and stems) and adjacent Conv2d -> BatchNorm2d in
    Sequentials (stems, projection shortcuts). The BN becomes an Identity."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

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
    import copy

    fused = copy.deepcopy(model).eval()
    with torch.no_grad():
        _fuse_conv_bn(fused)
    return fused.to(memory_format=torch.channels_last)


def flip_tta(recipe: dict) -> bool:
    """Whether a model is judged and used on each image and its mirror (logits averaged).

    A model trained on randomly mirrored images has learnt both orientations, so the
    average is a free ensemble of two views (airbench's test-time augmentation); never for
    digits, whose mirror images are other shapes. `recipe`: a model card's recipe, i.e.
    its TrainConfig as a dict."""
    return bool(recipe.get("hflip", False)) and bool(recipe.get("augment", True))


class Predictor:
    """Classifies images with one model; thread-confined (use one per thread)."""

    def __init__(self, model: Classifier, card: ModelCard, path: Path | None = None) -> None:
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

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str = "cpu") -> Predictor:
        """Loads a model file; None loads the shipped default model."""
        from app.core.resources import default_model_path

        p = Path(path) if path is not None else default_model_path()
        model, card = load_model(p, device)
        return cls(model, card, weights_path(p))

    @property
    def classes(self) -> list[str]:
        return self.card.classes

    def prepare(self, image: Image.Image | np.ndarray) -> PreparedImage:
        return prepare(image, self.card.input)

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
        for start in range(0, len(todo), 64):
            idx = todo[start : start + 64]
            probs = torch.softmax(self.logits(self._to_batch([prepared[i] for i in idx])), 1)
            probs_np = probs.cpu().numpy()
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
                )
        return [p for p in out if p is not None]

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Float logits of a float (N, C, H, W) batch in [0, 1] on the model's device."""
        out = self._forward(batch).float()
        if self.tta_flip:
            out = (out + self._forward(batch.flip(-1)).float()) / 2
        return out

    def predict(self, image: Image.Image | np.ndarray, top_k: int = 5) -> Prediction:
        """Preprocesses and classifies one image (PIL or array)."""
        return self.predict_prepared([self.prepare(image)], top_k)[0]

    def predict_many(self, images: Iterable[Image.Image | np.ndarray], top_k: int = 5) -> list[Prediction]:
        return self.predict_prepared([self.prepare(im) for im in images], top_k)

    def predict_paths(
        self, paths: Iterable[str | os.PathLike], top_k: int = 5, batch_size: int = 32
    ) -> Iterator[tuple[Path, Prediction | ImageLoadError]]:
        """Classifies files in batches; unreadable files yield their ImageLoadError."""
        pending: list[tuple[Path, PreparedImage]] = []

        def flush() -> Iterator[tuple[Path, Prediction]]:
            preds = self.predict_prepared([p for _, p in pending], top_k)
            yield from zip([path for path, _ in pending], preds)
            pending.clear()

        for raw in paths:
            path = Path(raw)
            try:
                prepared = self.prepare(load_image(path))
            except ImageLoadError as e:
                yield from flush()
                yield path, e
                continue
            pending.append((path, prepared))
            if len(pending) >= batch_size:
                yield from flush()
        yield from flush()
