"""Datasets: the built-in MNIST/Fashion-MNIST (IDX files found on this machine, or
downloaded through torchvision) and image folders, behind one `load_dataset()`.

Every problem with the files raises `DataError` with a message naming the file and
what is wrong with it. The pieces live by concern: `app.core.dataset` (the in-memory
`Dataset`), `app.core.idx` (IDX reading), `app.core.folders` (image folders); their
public names are re-exported here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from app.core.dataset import DataError, Dataset, split_train_val
from app.core.folders import SPLITS, folder_spec, load_image_folder, split_folder
from app.core.idx import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    MAX_IDX_BYTES,
    read_idx_images,
    read_idx_labels,
)
from app.core.models import FASHION_SPEC, MNIST_SPEC, InputSpec

__all__ = [
    "BUILTIN", "FASHION_CLASSES", "IDX_IMAGES_MAGIC", "IDX_LABELS_MAGIC", "MAX_IDX_BYTES",
    "MNIST_CLASSES", "SPLITS", "DataError", "Dataset", "default_data_dir", "folder_spec",
    "load_builtin", "load_dataset", "load_image_folder", "read_idx_images", "read_idx_labels",
    "split_folder", "split_train_val",
]  # fmt: skip

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
BUILTIN = ("mnist", "fashion-mnist")


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
