"""Datasets as in-memory uint8 tensors: MNIST/Fashion-MNIST IDX files, torchvision
downloads, and image folders (one subfolder per class).

Every problem with the files raises `DataError` with a message naming the file and
what is wrong with it.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.core.images import IMAGE_SUFFIXES, ImageLoadError, load_image
from app.core.models import FASHION_SPEC, MNIST_SPEC, InputSpec
from app.core.preprocess import prepare

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
BUILTIN = ("mnist", "fashion-mnist")
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049


class DataError(Exception):
    """A dataset that cannot be used; str() is a user-readable message."""


@dataclass
class Dataset:
    """Images as one uint8 tensor (N, C, H, W) plus int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    spec: InputSpec
    name: str
    source: str = ""
    skipped: list[str] = field(default_factory=list)  # junk files left out, with reasons
    paths: list[str] = field(default_factory=list)  # image folders: the file of each image

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(f"{self.name}: images must be a uint8 (N, C, H, W) tensor")
        if len(self.images) != len(self.labels):
            raise DataError(
                f"{self.name}: {len(self.images)} images but {len(self.labels)} labels"
            )
        if self.paths and len(self.paths) != len(self.labels):
            raise DataError(f"{self.name}: {len(self.paths)} file paths for {len(self.labels)} images")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> Dataset:
        idx = torch.as_tensor(index)
        idx = idx.nonzero()[:, 0] if idx.dtype == torch.bool else idx.reshape(-1)
        paths = [self.paths[int(i)] for i in idx] if self.paths else []
        return Dataset(
            self.images[index], self.labels[index], self.classes, self.spec, self.name, self.source,
            paths=paths,
        )  # fmt: skip


# --- IDX --------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":
                try:
                    return gzip.decompress(f.read())
                except (OSError, EOFError) as e:
                    raise DataError(f"{path}: corrupt or truncated gzip file ({e})") from None
            return f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an IDX file") from None


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX3 image file (raw or gzip) into a uint8 array (N, H, W)."""
    p = Path(path)
    raw = _read_bytes(p)
    if len(raw) < 16:
        raise DataError(f"{p}: too short for an IDX image file ({len(raw)} bytes)")
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != IDX_IMAGES_MAGIC:
        hint = " (this is a label file)" if magic == IDX_LABELS_MAGIC else ""
        raise DataError(f"{p}: not an IDX image file: magic {magic}, expected {IDX_IMAGES_MAGIC}{hint}")
    if not (1 <= rows <= 4096 and 1 <= cols <= 4096):
        raise DataError(f"{p}: implausible image size {rows}x{cols}")
    expected = n * rows * cols
    if len(raw) - 16 != expected:
        what = "truncated" if len(raw) - 16 < expected else "has extra bytes"
        raise DataError(
            f"{p}: file {what}: header says {n} images of {rows}x{cols} = {expected} bytes, "
            f"found {len(raw) - 16}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols).copy()


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX1 label file (raw or gzip) into a uint8 array (N,)."""
    p = Path(path)
    raw = _read_bytes(p)
    if len(raw) < 8:
        raise DataError(f"{p}: too short for an IDX label file ({len(raw)} bytes)")
    magic, n = struct.unpack(">II", raw[:8])
    if magic != IDX_LABELS_MAGIC:
        hint = " (this is an image file)" if magic == IDX_IMAGES_MAGIC else ""
        raise DataError(f"{p}: not an IDX label file: magic {magic}, expected {IDX_LABELS_MAGIC}{hint}")
    if len(raw) - 8 != n:
        what = "truncated" if len(raw) - 8 < n else "has extra bytes"
        raise DataError(f"{p}: file {what}: header says {n} labels, found {len(raw) - 8}")
    return np.frombuffer(raw, dtype=np.uint8, offset=8).copy()


def _find_idx(data_dir: Path, split: str, kind: str) -> Path:
    """Finds e.g. train-images-idx3-ubyte[.gz] or train-5k-images-idx3-ubyte.gz."""
    prefix = "train" if split == "train" else "t10k"
    pattern = f"{prefix}*-{kind}-idx{3 if kind == 'images' else 1}-ubyte*"
    matches = sorted(data_dir.glob(pattern))
    if not matches:
        # torchvision's layout: DIR/MNIST/raw/...
        matches = sorted(data_dir.glob(f"*/raw/{pattern}"))
    if not matches:
        raise DataError(
            f"{data_dir}: no {split} {kind} file found (looked for {pattern}); "
            "pass --data-dir pointing at the IDX files, or --download"
        )
    # Prefer the full file (train-images...) over subsets if both exist, raw over .gz.
    matches.sort(key=lambda m: (len(m.name), m.suffix == ".gz"))
    return matches[0]


def default_data_dir(name: str) -> Path | None:
    """Where a built-in dataset is looked for when no folder is given."""
    from app.core.resources import project_root, user_data_dir

    env = os.environ.get("RESNET_STUDIO_DATA")
    candidates = []
    if env:
        candidates.append(Path(env) / name)
    candidates.append(user_data_dir() / "data" / name)
    root = project_root()
    if root is not None:
        candidates.append(root.parent / "shared" / "data" / name)
    candidates.append(Path("/usr/share/datasets") / name)
    for c in candidates:
        if c.is_dir():
            return c
    return None


def load_builtin(
    name: str, data_dir: str | os.PathLike | None = None, split: str = "train", download: bool = False
) -> Dataset:
    """Loads MNIST or Fashion-MNIST from IDX files (optionally downloaded first)."""
    if name not in BUILTIN:
        raise DataError(f"unknown dataset {name!r}; use mnist, fashion-mnist or a folder")
    if split not in ("train", "test"):
        raise DataError(f"split must be train or test, not {split!r}")
    if data_dir is None:
        found = default_data_dir(name)
        if found is None and not download:
            raise DataError(f"no {name} data found; pass --data-dir DIR or --download")
        data_dir = found or _download_dir(name)
    d = Path(data_dir)
    if download:
        _download(name, d)
    if not d.is_dir():
        raise DataError(f"{d}: data folder not found")
    images = read_idx_images(_find_idx(d, split, "images"))
    labels_path = _find_idx(d, split, "labels")
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{labels_path}: label {int(labels.max())} out of range 0..9")
    classes, spec = (MNIST_CLASSES, MNIST_SPEC) if name == "mnist" else (FASHION_CLASSES, FASHION_SPEC)
    return Dataset(
        torch.from_numpy(images).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
        list(classes),
        spec,
        name,
        str(d),
    )


def _download_dir(name: str) -> Path:
    from app.core.resources import user_data_dir

    return user_data_dir() / "data" / name


def _download(name: str, root: Path) -> None:
    """Downloads through torchvision (needs internet) into root/<Name>/raw."""
    import torchvision.datasets as tvd

    cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as e:  # network errors come in many types
        raise DataError(f"could not download {name} into {root}: {e}") from None


# --- image folders ------------------------------------------------------------------------


def load_image_folder(
    folder: str | os.PathLike,
    spec: InputSpec,
    classes: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """One subfolder per class; every image goes through `prepare()` with `spec`.

    Junk files are skipped and listed in `Dataset.skipped`.

    Raises:
        DataError: missing folder, fewer than two classes, or a class with no images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    found = [p.name for p in subdirs]
    if classes is None:
        classes = found
        if len(classes) < 2:
            raise DataError(
                f"{root}: needs one subfolder per class and at least two classes, found "
                f"{len(classes)} ({', '.join(classes) or 'none'})"
            )
    else:
        missing = [c for c in classes if c not in found]
        if missing:
            raise DataError(f"{root}: class folders missing: {', '.join(missing)}")
    files: list[tuple[Path, int]] = []
    for idx, c in enumerate(classes):
        entries = sorted(
            p for p in (root / c).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not entries:
            raise DataError(f"{root / c}: class folder {c!r} has no images")
        files += [(p, idx) for p in entries]
    pixels: list[np.ndarray] = []
    labels: list[int] = []
    kept: list[str] = []
    skipped: list[str] = []
    for i, (p, label) in enumerate(files):
        try:
            prepared = prepare(load_image(p), spec)
        except ImageLoadError as e:
            skipped.append(str(e))
        else:
            if prepared.blank:
                skipped.append(f"{p}: {prepared.reason}")
            else:
                pixels.append(prepared.pixels)
                labels.append(label)
                kept.append(str(p))
        if progress is not None:
            progress(i + 1, len(files))
    counts = np.bincount(np.array(labels, dtype=np.int64), minlength=len(classes))
    empty = [classes[i] for i, n in enumerate(counts) if n == 0]
    if empty:
        raise DataError(f"{root}: no readable images in class folder(s): {', '.join(empty)}")
    arr = np.stack(pixels)
    arr = arr[:, None] if arr.ndim == 3 else arr.transpose(0, 3, 1, 2)
    return Dataset(
        torch.from_numpy(np.ascontiguousarray(arr)),
        torch.tensor(labels, dtype=torch.int64),
        list(classes),
        spec,
        root.name,
        str(root),
        skipped,
        kept,
    )


def folder_spec(size: int = 64, channels: int = 3) -> InputSpec:
    """How an image folder's images are prepared for a new model: resized and centre-
    cropped to `size`, gray (1 channel) or RGB (3), normalized around mid-gray."""
    return InputSpec(channels, size, (0.5,) * channels, (0.25,) * channels, "resize")


def load_dataset(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    spec: InputSpec | None = None,
    classes: list[str] | None = None,
    download: bool = False,
) -> Dataset:
    """`mnist`, `fashion-mnist` or a folder path (with `spec` for its images)."""
    if dataset in BUILTIN:
        return load_builtin(dataset, data_dir, split, download)
    folder = Path(dataset)
    if split == "test" and (folder / "test").is_dir():
        folder = folder / "test"
    elif (folder / "train").is_dir() and split == "train":
        folder = folder / "train"
    return load_image_folder(folder, spec or folder_spec(), classes)


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of range(n) into train and validation indices."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = int(round(n * val_fraction)) if val_fraction > 0 else 0
    n_val = min(n_val, n - 1)
    return perm[n_val:].sort().values, perm[:n_val].sort().values
