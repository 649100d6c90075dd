"""A dataset in memory: uint8 images, int64 labels, class names and the input spec, and
`DataError`, what every loader raises with a message naming the file and what is wrong
with it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from app.core.models import InputSpec


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


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of range(n) into train and validation indices."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = int(round(n * val_fraction)) if val_fraction > 0 else 0
    n_val = min(n_val, n - 1)
    return perm[n_val:].sort().values, perm[:n_val].sort().values
