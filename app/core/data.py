"""Datasets as in-memory uint8 tensors: MNIST/Fashion-MNIST IDX files, torchvision
downloads, and image folders (one subfolder per class).

Every problem with the files raises `DataError` with a message naming the file and
what is wrong with it.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from app.core.images import ImageLoadError, iter_image_files, load_image, unreadable_folder
from app.core.models import FASHION_SPEC, MNIST_SPEC, InputSpec
from app.core.preprocess import prepare
from app.core.reading import FileProblem, megabytes, open_regular

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


# A dataset is held in memory whole; past this an IDX header is damaged or hostile (a
# gzip bomb: a valid header, then gigabytes of zeros). MNIST's 60k training images are
# 47 MB, EMNIST's 700k are 550 MB.
MAX_IDX_BYTES = 2**30
_CHUNK = 1 << 22


def _open_idx(path: Path) -> tuple[BinaryIO, int | None]:
    """Opens a raw or gzip IDX file as a stream; returns it and the size of its content
    when known without decompressing (raw files)."""
    try:
        f = open_regular(path, MAX_IDX_BYTES + 16, "an IDX file")
    except FileProblem as e:
        raise DataError(f"{path}: {e.problem}") from None
    try:
        if f.read(2) == b"\x1f\x8b":
            f.seek(0)
            return gzip.GzipFile(fileobj=f, mode="rb"), None
        f.seek(0)
        return f, os.fstat(f.fileno()).st_size
    except BaseException:
        f.close()
        raise


def _read_upto(stream: BinaryIO, path: Path, n: int) -> bytes:
    """Up to n bytes (fewer only at the end of the data); gzip damage is a DataError."""
    parts, got = [], 0
    try:
        while got < n:
            chunk = stream.read(min(_CHUNK, n - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip file ({e})") from None
    return b"".join(parts)


def _read_idx(path: Path, header_size: int, kind: str, check_header) -> tuple[tuple[int, ...], bytes]:
    """Reads an IDX header, lets `check_header` validate it and return the payload size
    it promises, then reads exactly that much and one byte more (to tell "extra bytes"),
    never the rest of a file that goes on and on."""
    stream, size = _open_idx(path)
    with stream:
        head = _read_upto(stream, path, header_size)
        if len(head) < header_size:
            raise DataError(f"{path}: too short for an IDX {kind} file ({len(head)} bytes)")
        fields = struct.unpack(">" + "I" * (header_size // 4), head)
        expected, what = check_header(fields)
        if expected > MAX_IDX_BYTES:
            raise DataError(
                f"{path}: header says {what} = {megabytes(expected)}, more than the "
                f"{megabytes(MAX_IDX_BYTES)} limit: a damaged file, or not a dataset this "
                "app can hold in memory"
            )
        if size is not None and size - header_size != expected:  # raw: decide from the size
            found = size - header_size
            what_is = "truncated" if found < expected else "has extra bytes"
            raise DataError(
                f"{path}: file {what_is}: header says {what} = {expected} bytes, found {found}"
            )
        body = _read_upto(stream, path, expected)
        if len(body) < expected:
            raise DataError(
                f"{path}: file truncated: header says {what} = {expected} bytes, found {len(body)}"
            )
        if _read_upto(stream, path, 1):
            raise DataError(
                f"{path}: file has extra bytes: header says {what} = {expected} bytes, "
                "and the data goes on after them"
            )
    return fields, body


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX3 image file (raw or gzip) into a uint8 array (N, H, W)."""
    p = Path(path)

    def check(fields: tuple[int, ...]) -> tuple[int, str]:
        magic, n, rows, cols = fields
        if magic != IDX_IMAGES_MAGIC:
            hint = " (this is a label file)" if magic == IDX_LABELS_MAGIC else ""
            raise DataError(
                f"{p}: not an IDX image file: magic {magic}, expected {IDX_IMAGES_MAGIC}{hint}"
            )
        if not (1 <= rows <= 4096 and 1 <= cols <= 4096):
            raise DataError(f"{p}: implausible image size {rows}x{cols}")
        return n * rows * cols, f"{n} images of {rows}x{cols}"

    (_, n, rows, cols), body = _read_idx(p, 16, "image", check)
    return np.frombuffer(body, dtype=np.uint8).reshape(n, rows, cols).copy()


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX1 label file (raw or gzip) into a uint8 array (N,)."""
    p = Path(path)

    def check(fields: tuple[int, ...]) -> tuple[int, str]:
        magic, n = fields
        if magic != IDX_LABELS_MAGIC:
            hint = " (this is an image file)" if magic == IDX_IMAGES_MAGIC else ""
            raise DataError(
                f"{p}: not an IDX label file: magic {magic}, expected {IDX_LABELS_MAGIC}{hint}"
            )
        return n, f"{n} labels"

    _, body = _read_idx(p, 8, "label", check)
    return np.frombuffer(body, dtype=np.uint8).copy()


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


def _class_folders(root: Path) -> list[str]:
    """The visible subfolders of `root`, sorted."""
    try:
        with os.scandir(root) as it:
            entries = list(it)
    except OSError as e:
        reason = "permission denied" if isinstance(e, PermissionError) else e.strerror or str(e)
        raise DataError(f"{root}: cannot read the folder ({reason})") from None
    return sorted(e.name for e in entries if not e.name.startswith(".") and _is_dir(e))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def load_image_folder(
    folder: str | os.PathLike,
    spec: InputSpec,
    classes: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """One subfolder per class; every image goes through `prepare()` with `spec`.

    Junk files, and sub-folders that cannot be read, are skipped and listed in
    `Dataset.skipped`.

    Raises:
        DataError: missing or unreadable folder, fewer than two classes, or a class with
            no images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    found = _class_folders(root)
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
        reason = unreadable_folder(root / c)
        if reason:
            raise DataError(f"{root / c}: cannot read class folder {c!r} ({reason})")
        # The same walk as `classify`: sorted, symlink loops ended, and a sub-folder that
        # cannot be read comes back as itself, so it is listed among the skipped files.
        entries = list(iter_image_files([root / c]))
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


SPLITS = ("train", "test", "val")


def _holds_class_folders(folder: Path) -> bool:
    """Whether `folder` has a subfolder with an image in it (directly or deeper)."""
    try:
        subdirs = _class_folders(folder)
    except DataError:
        return False
    return any(next(iter_image_files([folder / d]), None) is not None for d in subdirs)


def split_folder(folder: str | os.PathLike, split: str) -> Path:
    """The folder that holds `split` of a folder dataset.

    A split layout is DIR/train/<class>/..., beside test/ (or val/): every subfolder of
    DIR is a split name, and train/ holds class folders with images. Anything else is
    one subfolder per class, so a dataset may well have classes named "train" or
    "test" (vehicles: bus, car, train).

    Raises:
        DataError: a split layout without a folder for the test split.
    """
    root = Path(folder)
    try:
        names = set(_class_folders(root))
    except DataError:
        return root  # load_image_folder says what is wrong with it
    if not names or not names <= set(SPLITS) or "train" not in names:
        return root
    if not _holds_class_folders(root / "train"):
        return root
    if split == "train":
        return root / "train"
    for name in ("test", "val"):
        if name in names:
            return root / name
    raise DataError(f"{root}: has train/ but no test/ or val/ folder for the test split")


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
    folder = split_folder(dataset, split)
    return load_image_folder(folder, spec or folder_spec(), classes)


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of range(n) into train and validation indices."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = int(round(n * val_fraction)) if val_fraction > 0 else 0
    n_val = min(n_val, n - 1)
    return perm[n_val:].sort().values, perm[:n_val].sort().values
