"""Training-time augmentation: one batched `grid_sample` on the device (random affine,
optional mirror, smooth elastic warp), then optional random erasing, with randomness
derived from (seed, epoch, step)."""

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
    """Random affine (rotate, scale, shear, shift, optional mirror) + smooth elastic warp,
    then random erasing (`cfg.erase`).

    Args:
        x: float images (B, C, H, W) in [0, 1], on any device.
        cfg: the ranges (rotate_deg, scale, shear_deg, shift, hflip, elastic, erase).
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
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border" if border else "zeros", align_corners=False)
    return erase(x, cfg.erase, gen, total, rows) if cfg.erase > 0 else x


ERASE_AREA = (0.02, 0.4)  # share of the image a rectangle covers (Zhong et al.'s defaults)
ERASE_ASPECT = (0.3, 1 / 0.3)  # its height / width


def erase(x: torch.Tensor, p: float, gen: torch.Generator, total: int, rows: slice) -> torch.Tensor:
    """Random erasing (Zhong et al. 2017, "Random Erasing Data Augmentation"): each image
    with probability `p` gets one rectangle of random area and aspect (ERASE_AREA,
    ERASE_ASPECT), wholly inside the image, replaced by uniform noise in [0, 1]. Batched:
    one mask from coordinate comparisons. Draws (for `total` images, these `rows` kept)
    come from `gen` on the CPU, like `augment_batch`'s."""
    b, c, h, w = x.shape
    u = torch.rand(total, 5, generator=gen)[rows]
    noise = torch.rand(total, c, h, w, generator=gen)[rows].to(x.device, x.dtype)
    area = ERASE_AREA[0] + u[:, 1] * (ERASE_AREA[1] - ERASE_AREA[0])
    lo, hi = torch.log(torch.tensor(ERASE_ASPECT))
    aspect = torch.exp(lo + u[:, 2] * (hi - lo))
    eh = (torch.sqrt(area * aspect) * h).clamp(1, h)
    ew = (torch.sqrt(area / aspect) * w).clamp(1, w)
    y0, x0 = u[:, 3] * (h - eh), u[:, 4] * (w - ew)
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    rows_in = (ys >= y0.view(-1, 1, 1)) & (ys < (y0 + eh).view(-1, 1, 1))
    cols_in = (xs >= x0.view(-1, 1, 1)) & (xs < (x0 + ew).view(-1, 1, 1))
    inside = rows_in & cols_in & (u[:, 0] < p).view(-1, 1, 1)
    return torch.where(inside.unsqueeze(1).to(x.device), noise, x)
