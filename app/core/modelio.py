"""Model files: a model is `NAME.safetensors` (weights only) + `NAME.json` (its card).

Nothing a user hands us is ever unpickled: weights are read with safetensors, and the
card is JSON. Inference lives in `app.core.predictor`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from app import __version__
from app.core.fileio import atomic_write_files
from app.core.models import ARCHITECTURES, Classifier, InputSpec, build_model, count_parameters

CARD_FORMAT = 1


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
        try:
            card = cls(
                name=str(d.get("name", "")),
                arch=str(d["arch"]),
                classes=[str(c) for c in d["classes"]],
                input=InputSpec.from_dict(d["input"]),
                dataset=str(d.get("dataset", "")),
                train_samples=int(d.get("train_samples", 0)),
                command=str(d.get("command", "")),
                metrics=dict(d.get("metrics", {})),
                recipe=dict(d.get("recipe", {})),
                created=str(d.get("created", "")),
                app_version=str(d.get("app_version", "")),
                torch_version=str(d.get("torch_version", "")),
                parameters=int(d.get("parameters", 0)),
                format=int(d.get("format", CARD_FORMAT)),
            )
        except KeyError as e:
            raise ModelFileError(f"{source}: model card lacks the field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"{source}: invalid model card ({e})") from None
        if card.arch not in ARCHITECTURES:
            raise ModelFileError(
                f"{source}: unknown architecture {card.arch!r} (known: {', '.join(ARCHITECTURES)})"
            )
        if len(card.classes) < 2:
            raise ModelFileError(f"{source}: a model needs at least 2 classes")
        return card

    def summary(self) -> str:
        acc = self.metrics.get("test_accuracy")
        acc_s = f", {acc * 100:.2f}% on {self.metrics.get('test_split', 'test')}" if acc else ""
        return f"{self.name} ({self.arch}, {len(self.classes)} classes{acc_s})"


def card_path(weights: str | os.PathLike) -> Path:
    """The card beside a weights file: NAME.json."""
    return Path(weights).with_suffix(".json")


def weights_path(path: str | os.PathLike) -> Path:
    """Accepts NAME.safetensors, NAME.json or NAME and returns NAME.safetensors."""
    p = Path(path)
    return p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")


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
    try:
        atomic_write_files([(wpath, weights), (card_path(wpath), card_bytes)])
    except OSError as e:
        raise ModelFileError(f"cannot save model to {wpath}: {e.strerror or e}") from None
    return wpath


_PICKLE_MAGICS = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+ opcode; torch.save's zip


def _refuse_pickle(path: Path, head: bytes) -> None:
    if head.startswith(_PICKLE_MAGICS):
        raise ModelFileError(
            f"{path}: this is a PyTorch pickle, not a safetensors file; pickles are "
            "never loaded because they can run code"
        )


def _check_safetensors_header(path: Path) -> None:
    """Rejects anything that is not a safetensors file before any parser sees it.

    The header is parsed first; a pickle is named only when that fails, since a valid
    header length can start with the byte a pickle starts with (0x80 = 128 mod 256)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = path.stat().st_size
            if len(head) < 8:
                raise ModelFileError(f"{path}: not a safetensors file (only {size} bytes)")
            (n,) = struct.unpack("<Q", head)
            header = f.read(n) if n <= min(size - 8, 100_000_000) else None
    except FileNotFoundError:
        raise ModelFileError(f"{path}: model file not found") from None
    except PermissionError:
        raise ModelFileError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read model file ({e.strerror or e})") from None
    if header is None:
        _refuse_pickle(path, head)
        raise ModelFileError(f"{path}: not a safetensors file, or truncated (bad header)")
    try:
        meta = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError):
        _refuse_pickle(path, head)
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
    """The card of a model (NAME.safetensors, NAME.json or NAME).

    Raises:
        ModelFileError: missing, unreadable or invalid card.
    """
    cpath = card_path(weights_path(path))
    try:
        d = json.loads(cpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(
            f"{cpath}: model card missing; a model needs NAME.safetensors and NAME.json side by side"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{cpath}: model card is not valid JSON ({e})") from None
    except OSError as e:
        raise ModelFileError(f"{cpath}: cannot read model card ({e.strerror or e})") from None
    if not isinstance(d, dict):
        raise ModelFileError(f"{cpath}: model card is not a JSON object")
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
