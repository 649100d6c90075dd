"""Model files: a model is `NAME.safetensors` (weights only) + `NAME.json` (its card).

Nothing a user hands us is ever unpickled: weights are read with safetensors, and the
card is JSON. Inference lives in `app.core.predictor`.

The two files are one model: both carry the same random `pair` id. A save writes the new
card as `.NAME.next.json` first, then replaces the weights, then moves the card into
place; a process killed between those renames leaves new weights whose card is the
pending one, and readers take that (and finish the move). Old pairs without an id load
as before.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import struct
from pathlib import Path

import torch

from app import __version__
from app.core.fileio import atomic_write_files
from app.core.modelcard import (  # noqa: F401  (re-exported: their home was here)
    ABSTAIN_SCORES,
    CARD_FORMAT,
    MAX_CLASS_NAME,
    MAX_CLASSES,
    ModelCard,
    ModelFileError,
)
from app.core.models import Classifier, InputSpec, build_model, count_parameters
from app.core.reading import FileProblem, open_regular, read_capped

MAX_CARD_BYTES = 16_000_000  # a 100,000-class card is ~5 MB
MAX_WEIGHTS_BYTES = 2**31  # ResNet-50 is ~100 MB


def card_path(weights: str | os.PathLike) -> Path:
    """The card beside a weights file: NAME.json."""
    return Path(weights).with_suffix(".json")


def weights_path(path: str | os.PathLike) -> Path:
    """Accepts NAME.safetensors, NAME.json or NAME and returns NAME.safetensors."""
    p = Path(path)
    return p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")


def pending_card_path(weights: str | os.PathLike) -> Path:
    """Where a save puts the new card until the new weights are in place:
    `.NAME.next.json` beside them."""
    w = weights_path(weights)
    return w.with_name(f".{w.stem}.next.json")


def unique_model_path(folder: Path, stem: str) -> Path:
    """`folder/stem.safetensors`, or `stem-2`, `stem-3`... if a model, card or checkpoint
    of that name exists (a new run never overwrites another's files)."""
    candidate, n = folder / f"{stem}.safetensors", 1
    while candidate.exists() or candidate.with_suffix(".ckpt").exists() or candidate.with_suffix(".json").exists():
        n += 1
        candidate = folder / f"{stem}-{n}.safetensors"
    return candidate


def save_model(path: str | os.PathLike, model: Classifier, card: ModelCard) -> Path:
    """Saves weights + card as one pair; returns the weights path.

    Both files are written in full (synced temp files) before anything is replaced, then
    the card goes to `pending_card_path`, the weights replace the old ones, and the card
    replaces the old card. Whenever the process dies, `read_card`/`load_model` find a
    complete pair: the old one, or the new weights with the pending card.

    Raises:
        ModelFileError: the folder is not writable or the disk is full (the previous
            model at that path, if any, is left intact).
    """
    from safetensors.torch import save as st_save

    wpath = weights_path(path)
    card.name = card.name or wpath.stem
    card.parameters = count_parameters(model)
    card.created = card.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    card.pair = secrets.token_hex(8)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"arch": card.arch, "app": "resnet-studio", "app_version": __version__, "pair": card.pair}
    weights = st_save(tensors, metadata=meta)
    card_bytes = _card_bytes(card)
    cpath, pending = card_path(wpath), pending_card_path(wpath)
    try:
        atomic_write_files([(pending, card_bytes), (wpath, weights)])
        try:
            os.replace(pending, cpath)
        except FileNotFoundError:  # a reader finished the move for us (see read_card)
            if _card_pair(cpath) != card.pair:
                raise
    except OSError as e:
        raise ModelFileError(f"cannot save model to {wpath}: {e.strerror or e}") from None
    return wpath


def _card_pair(cpath: Path) -> str | None:
    try:
        return str(json.loads(read_capped(cpath, MAX_CARD_BYTES, "a model card")).get("pair", ""))
    except (FileProblem, ValueError, AttributeError):
        return None


def _weights_pair(wpath: Path) -> str:
    """The `pair` id in a weights file's header metadata; "" when it has none or the
    file cannot be read (load_model then says what is wrong with it)."""
    try:
        with open_regular(wpath, MAX_WEIGHTS_BYTES, "a model file") as f:
            head = f.read(8)
            if len(head) < 8:
                return ""
            (n,) = struct.unpack("<Q", head)
            if n > 100_000_000:
                return ""
            meta = json.loads(f.read(n)).get("__metadata__") or {}
        pair = meta.get("pair", "")
        return pair if isinstance(pair, str) else ""
    except (FileProblem, OSError, ValueError, AttributeError):
        return ""


def _card_bytes(card: ModelCard) -> bytes:
    return json.dumps(card.to_dict(), indent=2).encode() + b"\n"


def write_card(path: str | os.PathLike, card: ModelCard) -> Path:
    """Replaces the card of the model at `path` atomically (the weights are not touched);
    returns the card's path.

    Raises:
        ModelFileError: the card cannot be written (the old one is left intact).
    """
    cpath = card_path(weights_path(path))
    try:
        atomic_write_files([(cpath, _card_bytes(card))])
    except OSError as e:
        raise ModelFileError(f"cannot write the model card {cpath}: {e.strerror or e}") from None
    return cpath


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
        f = open_regular(path, MAX_WEIGHTS_BYTES, "a model file")
    except FileProblem as e:
        problem = "model file not found" if e.problem == "file not found" else e.problem
        raise ModelFileError(f"{path}: {problem}") from None
    try:
        with f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
            if len(head) < 8:
                raise ModelFileError(f"{path}: not a safetensors file (only {size} bytes)")
            (n,) = struct.unpack("<Q", head)
            header = f.read(n) if n <= min(size - 8, 100_000_000) else None
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
    """Reads and validates the card of a model (NAME.safetensors, NAME.json or NAME).

    When the weights come from a newer save than the card (a save killed between its
    renames), the pending card of that save is the model's card: it is returned, and
    moved into place when the folder allows.

    Raises:
        ModelFileError: missing, not a regular file, too large, not JSON, or a field
            with the wrong type or value; weights and card from different saves with no
            pending card that fits.
    """
    wpath = weights_path(path)
    cpath = card_path(wpath)
    try:
        card = _read_card_file(cpath)
    except ModelFileError:
        if cpath.exists() or not wpath.exists():
            raise
        card = None  # a first save killed before its card was moved into place?
    wpair = _weights_pair(wpath) if card is None or card.pair else ""
    if card is not None and (not card.pair or not wpair or wpair == card.pair):
        return card
    pending = pending_card_path(wpath)
    try:
        staged = _read_card_file(pending)
    except ModelFileError:
        staged = None
    if staged is not None and wpair and staged.pair == wpair:
        try:
            os.replace(pending, cpath)  # finish the interrupted save
        except OSError:
            pass  # read-only folder: the pending card serves as it is
        return staged
    if card is None:
        return _read_card_file(cpath)  # raises the card's own problem
    raise ModelFileError(
        f"{wpath}: the weights and the card {cpath.name} come from different saves (an "
        "interrupted save, or files copied from two models); save or copy the model again"
    )


def _read_card_file(cpath: Path) -> ModelCard:
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


def load_start_model(path: str | os.PathLike, arch: str, classes: list[str], spec: InputSpec) -> Classifier:
    """The weights a run starts from instead of random ones (`train --start-from`): the
    model file's, in training precision, after checking that they fit the run.

    Raises:
        ModelFileError: unreadable, or another architecture, class list or input.
    """
    model, card = load_model(path)
    name = f"start from {weights_path(path).name}:"
    if card.arch != arch:
        raise ModelFileError(f"{name} it is a {card.arch}, the run trains a {arch} (choose --arch {card.arch})")
    if list(card.classes) != list(classes):
        raise ModelFileError(f"{name} it knows the classes {card.classes[:12]}, the data has {list(classes)[:12]}")

    def reads(x: InputSpec) -> str:
        return f"{x.channels}-channel {x.size}x{x.size} images ({x.mode}, mean {list(x.mean)}, std {list(x.std)})"

    if reads(card.input) != reads(spec):
        raise ModelFileError(f"{name} it reads {reads(card.input)}, the data gives {reads(spec)}")
    return model.float().train()
