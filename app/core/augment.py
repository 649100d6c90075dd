"""Training-time augmentation: one batched `grid_sample` on the device (random affine,
optional mirror, smooth elastic warp), with randomness derived from (seed, epoch, step)."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F

from app.core.config import TrainConfig


def step_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    """A CPU generator owned by one training step.

    Seeded from (seed, epoch, step) alone, so a step that runs again (after a device
    failure, or after a resume) draws exactly what an uninterrupted run draws; a hash
    keeps neighbouring steps' streams unrelated."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{step}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def augment_batch(
    x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, border: bool = False,
    share: tuple[int, slice] | None = None,
) -> torch.Tensor:  # fmt: skip
    """Random affine (rotate, scale, shear, shift, optional mirror) + smooth elastic warp.

    Args:
        x: float images (B, C, H, W) in [0, 1], on any device.
        cfg: the ranges (rotate_deg, scale, shear_deg, shift, hflip, elastic).
        gen: a CPU generator; random numbers are drawn on the CPU (tiny), so results do
            not depend on the device and a run moved between devices stays reproducible.
        border: pad with the edge pixels (photos) instead of zeros (ink on paper).
        share: (global batch size, rows) when `x` is one process's rows of a larger
            batch (distributed training): the draws are those of the whole batch, and
            these rows get theirs, as in a single-process run.
    """
    b, _, h, w = x.shape
    total, rows = share if share is not None else (b, slice(None))
    u = (torch.rand(total, 5, generator=gen) * 2 - 1)[rows]  # uniform in [-1, 1]
    rot = torch.deg2rad(u[:, 0] * cfg.rotate_deg)
    scale = 1 + u[:, 1] * cfg.scale
    shear = torch.deg2rad(u[:, 2] * cfg.shear_deg)
    tx, ty = u[:, 3] * cfg.shift * 2, u[:, 4] * cfg.shift * 2  # grid units: 2 = full width
    # Inverse map for affine_grid: output coords -> input coords.
    cos, sin = torch.cos(rot) / scale, torch.sin(rot) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + torch.tan(shear) * cos, tx], 1),
            torch.stack([sin, cos, ty], 1),
        ],
        1,
    )
    if cfg.hflip:  # mirror half of the batch: negate the x coefficients of the inverse map
        sign = torch.where(torch.rand(total, generator=gen)[rows] < 0.5, -1.0, 1.0)
        theta = torch.cat([theta[:, :, :1] * sign.view(b, 1, 1), theta[:, :, 1:]], 2)
    grid = F.affine_grid(theta.to(x.device), [b, 1, h, w], align_corners=False)
    if cfg.elastic > 0:
        coarse = torch.randn(total, 2, 3, 3, generator=gen)[rows].to(x.device)
        field_ = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        grid = grid + field_.permute(0, 2, 3, 1) * (cfg.elastic * 2.0 / h)
    return F.grid_sample(
        x, grid, mode="bilinear", padding_mode="border" if border else "zeros", align_corners=False
    )
