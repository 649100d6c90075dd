"""Image-folder datasets: one subfolder per class (optionally under train/ and test/ or
val/), every image prepared with the model's input spec."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from app.core.dataset import DataError, Dataset
from app.core.images import ImageLoadError, iter_image_files, load_image, unreadable_folder
from app.core.models import InputSpec
from app.core.preprocess import prepare

SPLITS = ("train", "test", "val")


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
