"""The user's own examples ("my examples"): a dataset on disk in the image-folder layout.

    <user data>/personal/<class>/<id>.png    the 28x28 model input (light ink on black)
    <user data>/personal/<class>/<id>.json   the original pen strokes (`app.core.strokes`)

One folder a class, so the folder is also a plain dataset for `python -m app train
--dataset DIR`. The strokes are kept so an example can be re-rendered for a model with
another input size. Every file is written atomically (PNG and strokes together); ids
sort by creation time.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app.core.data import DataError, Dataset
from app.core.fileio import atomic_write_files
from app.core.images import IMAGE_SUFFIXES, ImageLoadError, load_image
from app.core.models import MNIST_SPEC, InputSpec
from app.core.preprocess import prepare
from app.core.strokes import Drawing, StrokesError, prepared_pixels

MAX_CLASS_NAME = 40
HELD_OUT_FRACTION = 0.2  # of each class's examples, kept out of fine-tuning to judge it
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f]')  # not allowed in file names on Windows
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class PersonalError(Exception):
    """A personal-examples operation that cannot be done; str() is user-readable."""


def personal_dir() -> Path:
    """Where the user's examples live by default."""
    from app.core.resources import user_data_dir

    return user_data_dir() / "personal"


def check_class_name(name: str) -> str:
    """The name, trimmed, if it can be a class (and a folder on every OS).

    Raises:
        PersonalError: empty, too long, or with characters a folder name cannot have.
    """
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise PersonalError("a class needs a name")
    if len(name) > MAX_CLASS_NAME:
        raise PersonalError(f"class names are at most {MAX_CLASS_NAME} characters")
    bad = _FORBIDDEN.search(name)
    if bad:
        shown = repr(bad.group()) if bad.group().isprintable() else "control characters"
        raise PersonalError(f"a class name cannot contain {shown}")
    if name.startswith(".") or name.endswith("."):
        raise PersonalError("a class name cannot start or end with a dot")
    if name.split(".")[0].lower() in _RESERVED:
        raise PersonalError(f"{name!r} is a reserved name on Windows; choose another")
    return name


@dataclass(frozen=True)
class Example:
    """One saved example: its class, its image and (when drawn) its strokes file."""

    label: str
    png: Path
    strokes: Path | None

    @property
    def id(self) -> str:
        return self.png.stem

    def drawing(self) -> Drawing | None:
        """The original strokes, or None when there are none (or they cannot be read)."""
        if self.strokes is None:
            return None
        try:
            return Drawing.from_json(self.strokes.read_bytes())
        except (OSError, StrokesError):
            return None

    def pixels(self) -> np.ndarray:
        """The saved image as uint8 (H, W). Raises ImageLoadError."""
        return np.asarray(load_image(self.png).convert("L"))


def _png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="L").save(buf, "PNG")
    return buf.getvalue()


def _new_id() -> str:
    return f"{time.time_ns() // 1_000_000:013d}-{uuid.uuid4().hex[:6]}"


def _sort_key(name: str) -> tuple:
    """Digits in numeric order first, then names alphabetically."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name.casefold())


class PersonalStore:
    """The examples under `root` (default: `personal_dir()`); created on first write."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else personal_dir()

    # --- classes ----------------------------------------------------------------------------

    def classes(self) -> list[str]:
        """Class folders (empty ones included), digits first."""
        try:
            names = [e.name for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith(".")]
        except FileNotFoundError:
            return []
        except OSError as e:
            raise PersonalError(f"{self.root}: cannot read my examples ({e.strerror or e})") from None
        return sorted(names, key=_sort_key)

    def new_class(self, name: str) -> str:
        """Creates a class folder (nothing happens when it exists); returns the name used.

        Raises:
            PersonalError: a bad name, or the folder cannot be created.
        """
        name = check_class_name(name)
        existing = {c.casefold(): c for c in self.classes()}
        if name.casefold() in existing:  # one folder per class on case-insensitive disks too
            return existing[name.casefold()]
        try:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PersonalError(f"cannot create class {name!r} in {self.root}: {e.strerror or e}") from None
        return name

    def delete_class(self, name: str) -> int:
        """Deletes a class and its examples; returns how many examples went."""
        examples = self.examples(name)
        for ex in examples:
            self.delete(ex)
        try:
            (self.root / name).rmdir()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise PersonalError(f"cannot delete class {name!r}: {e.strerror or e}") from None
        return len(examples)

    # --- examples ---------------------------------------------------------------------------

    def add(self, label: str, drawing: Drawing | None = None, pixels: np.ndarray | None = None,
            spec: InputSpec = MNIST_SPEC) -> Example:  # fmt: skip
        """Saves an example of class `label` (created if new): the drawing's strokes and
        its model input (`pixels`, or rendered from the drawing the canvas's way).

        Raises:
            PersonalError: nothing to save (no drawing, a blank one), bad label, disk error.
        """
        if pixels is None:
            if drawing is None:
                raise PersonalError("nothing to add: draw something first")
            pixels = prepared_pixels(drawing, spec)
            if pixels is None:
                raise PersonalError("nothing to add: the drawing is blank")
        pixels = np.asarray(pixels)
        if pixels.ndim == 3:
            pixels = pixels[..., 0]
        label = self.new_class(label)
        png = self.root / label / f"{_new_id()}.png"
        files: list[tuple[Path, bytes]] = [(png, _png_bytes(pixels))]
        strokes = None
        if drawing is not None:
            strokes = png.with_suffix(".json")
            files.append((strokes, drawing.to_json().encode()))
        try:
            atomic_write_files(files)
        except OSError as e:
            raise PersonalError(f"cannot save the example in {png.parent}: {e.strerror or e}") from None
        return Example(label, png, strokes)

    def examples(self, label: str | None = None) -> list[Example]:
        """Saved examples, oldest first (one class, or all classes in class order)."""
        out: list[Example] = []
        for c in [label] if label is not None else self.classes():
            folder = self.root / c
            try:
                pngs = sorted(
                    p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                )
            except FileNotFoundError:
                continue
            except OSError as e:
                raise PersonalError(f"{folder}: cannot read ({e.strerror or e})") from None
            for p in pngs:
                js = p.with_suffix(".json")
                out.append(Example(c, p, js if js.is_file() else None))
        return out

    def counts(self) -> dict[str, int]:
        """Examples per class (empty classes included), in class order."""
        counts = {c: 0 for c in self.classes()}
        for ex in self.examples():
            counts[ex.label] = counts.get(ex.label, 0) + 1
        return counts

    def delete(self, example: Example) -> None:
        """Removes an example's files (already gone is fine)."""
        for p in (example.png, example.strokes):
            if p is None:
                continue
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise PersonalError(f"cannot delete {p}: {e.strerror or e}") from None


# --- as a dataset -----------------------------------------------------------------------------


def _example_pixels(png: Path, strokes: Path | None, spec: InputSpec) -> np.ndarray | None:
    """An example as model input for `spec`: the saved image when it is already that
    (gray, spec size, one channel), else re-rendered from its strokes, else prepared."""
    image = load_image(png)
    if spec.channels == 1 and image.size == (spec.size, spec.size) and image.mode in ("L", "P", "1"):
        return np.asarray(image.convert("L"))
    drawing = Example("", png, strokes).drawing()
    if drawing is not None:
        return prepared_pixels(drawing, spec)
    prepared = prepare(image, spec)
    return None if prepared.blank else prepared.pixels


def _rank(path: str) -> bytes:
    return hashlib.blake2b(Path(path).stem.encode(), digest_size=8).digest()


def held_out_mask(paths: list[str], labels: list[int], fraction: float = HELD_OUT_FRACTION) -> list[bool]:
    """Which examples are kept out of fine-tuning to judge it: in every class, the
    floor(fraction * n) examples whose file names hash lowest (none in a class of fewer
    than 1 / fraction). By hash, not by position: the choice barely moves as examples
    come and go, and it mixes old and new drawings."""
    held = [False] * len(paths)
    for c in set(labels):
        members = sorted((i for i, lab in enumerate(labels) if lab == c), key=lambda i: _rank(paths[i]))
        for i in members[: int(len(members) * fraction)]:
            held[i] = True
    return held


def load_examples(folder: str | os.PathLike, spec: InputSpec = MNIST_SPEC) -> Dataset:
    """The examples under `folder` (one subfolder a class) as a Dataset; classes are
    the non-empty folders, digits first. Unreadable files are listed in `skipped`.

    Raises:
        DataError: no folder, or no examples at all.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    try:
        store_examples = PersonalStore(root).examples()
    except PersonalError as e:
        raise DataError(str(e)) from None
    pixels, labels, paths, skipped = [], [], [], []
    classes: list[str] = []
    for ex in store_examples:
        try:
            px = _example_pixels(ex.png, ex.strokes, spec)
        except ImageLoadError as e:
            skipped.append(str(e))
            continue
        if px is None:
            skipped.append(f"{ex.png}: blank")
            continue
        if ex.label not in classes:
            classes.append(ex.label)
        pixels.append(px)
        labels.append(classes.index(ex.label))
        paths.append(str(ex.png))
    if not pixels:
        raise DataError(f"{root}: no examples (one subfolder a class, with PNG images)")
    arr = np.stack(pixels)
    arr = arr[:, None] if arr.ndim == 3 else arr.transpose(0, 3, 1, 2)
    return Dataset(
        torch.from_numpy(np.ascontiguousarray(arr)), torch.tensor(labels, dtype=torch.int64),
        classes, spec, root.name, str(root), skipped, paths,
    )  # fmt: skip
