"""Batch norm over the global batch of a distributed run, on any device.

With plain DDP each process normalizes with the statistics of its own share of the
batch: N processes then train another network than one process at the same global
batch (noisier statistics, other gradients). Synchronized batch norm computes mean and
variance over the whole global batch, so a run gives the same weights whatever the
number of processes. torch's `nn.SyncBatchNorm` does this on GPUs only (its kernels
are CUDA ones); on the CPU `AllReduceBatchNorm2d` does it with one all-reduce of
(sum, sum of squares, count) per layer forward and one of two gradient sums backward,
around torch's own CPU batch-norm kernels.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class _GlobalBatchNorm(torch.autograd.Function):
    """Batch norm with the statistics of every process's rows. torch's own CPU kernels
    do the heavy passes (local statistics, normalization, backward, all accumulated in
    float64 as torch's CPU batch norm does), so a step costs little more than with
    plain BatchNorm2d: a version written with tensor ops ran 5x slower than it.

    Forward: local (mean, var) -> one all-reduce of (n*mean, n*(var+mean^2), n) in
    float64 -> normalize with the global statistics. Backward: the eval-mode kernel
    gives gy*w*invstd and this process's sums of gy and gy*x_hat; one all-reduce of
    those sums gives the terms of the global statistics' gradient:
        gx = w*invstd*(gy - sum(gy)/N - x_hat*sum(gy*x_hat)/N)
    Weight and bias get this process's sums (DDP averages them like other gradients).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):  # type: ignore[override]
        c = x.shape[1]
        mean_l, var_l = torch.batch_norm_update_stats(x, None, None, 0.0)
        n_l = x.numel() // c
        m = mean_l.double()
        t = torch.cat([m * n_l, (var_l.double() + m * m) * n_l, m.new_full((1,), n_l)])
        dist.all_reduce(t)
        n = t[2 * c]
        mean_d = t[:c] / n
        var_d = (t[c : 2 * c] / n - mean_d * mean_d).clamp_min(0)
        mean, var = mean_d.float(), var_d.float()  # float32 also under bf16 autocast (torch's mixed-dtype rule)
        y = F.batch_norm(x, mean, var, weight, bias, False, 0.0, eps)
        ctx.save_for_backward(x, weight, mean, var)
        ctx.eps, ctx.n = eps, float(n)
        count = t[2 * c :].clone()
        ctx.mark_non_differentiable(mean, var, count)
        return y, mean, var, count

    @staticmethod
    def backward(ctx, gy, _gmean, _gvar, _gcount):  # type: ignore[override]
        x, weight, mean, var = ctx.saved_tensors
        c = x.shape[1]
        w = weight if weight is not None else torch.ones(c, dtype=mean.dtype, device=x.device)
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
            gy.contiguous(memory_format=torch.channels_last) if x.is_contiguous(memory_format=torch.channels_last) else gy.contiguous(),
            x, w, mean, var, None, None, False, ctx.eps, [True, True, True],
        )  # fmt: skip
        sums = torch.cat([gw, gb]).double()
        dist.all_reduce(sums)
        invstd = torch.rsqrt(var.double() + ctx.eps)
        scale = w.double() * invstd / ctx.n
        shape = (1, c, 1, 1)
        gx = gx.add_((-scale * sums[c:]).to(gx.dtype).view(shape))
        gx = gx.addcmul_(x - mean.view(shape), (-scale * invstd * sums[:c]).to(gx.dtype).view(shape))
        return gx, (gw if weight is not None else None), (gb if weight is not None else None), None


class AllReduceBatchNorm2d(nn.BatchNorm2d):
    """`nn.BatchNorm2d` whose training statistics span every process of the default
    group; eval mode (running statistics) and single-process runs are unchanged. Same
    parameters and buffers as BatchNorm2d, so state dicts load both ways."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        y, mean, var, count = _GlobalBatchNorm.apply(x, self.weight, self.bias, self.eps)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            assert self.num_batches_tracked is not None
            n = float(count)  # every process's rows: the unbiased variance's count
            m = self.momentum if self.momentum is not None else 0.1
            with torch.no_grad():
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), m)
                self.running_var.lerp_((var * (n / max(n - 1, 1))).to(self.running_var.dtype), m)
                self.num_batches_tracked.add_(1)
        return y


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` with every BatchNorm2d synchronized across processes: torch's
    `nn.SyncBatchNorm` on CUDA, `AllReduceBatchNorm2d` elsewhere. Weights, buffers and
    their order are kept, so optimizer state and checkpoints still fit."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert(model)


def _convert(module: nn.Module) -> nn.Module:
    if type(module) is nn.BatchNorm2d:
        bn = AllReduceBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
            device=module.running_mean.device if module.running_mean is not None else None,
        )  # fmt: skip
        if module.affine:  # the same Parameter objects: an optimizer made before still holds them
            bn.weight, bn.bias = module.weight, module.bias
        bn.running_mean, bn.running_var = module.running_mean, module.running_var
        bn.num_batches_tracked = module.num_batches_tracked
        bn.train(module.training)
        return bn
    for name, child in module.named_children():
        new = _convert(child)
        if new is not child:
            setattr(module, name, new)
    return module

