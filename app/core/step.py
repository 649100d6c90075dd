"""One optimizer step in the run's numeric precision: autocast to bf16/fp16 where chosen
(fp32 master weights), and a `GradScaler` with fp16, whose narrow range would otherwise
let small gradients underflow to zero (bf16 has fp32's range and needs none)."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager

import torch
from torch import nn


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or infinite: training diverged. `value` is the loss."""

    def __init__(self, value: float) -> None:
        super().__init__(f"loss {value}")
        self.value = value


class StepPrecision:
    """How a training step computes on `device`: in fp32 (`dtype` None) or under
    autocast to `dtype`, with loss scaling for fp16."""

    def __init__(self, device: torch.device, dtype: torch.dtype | None) -> None:
        self.device = device
        self.dtype = dtype
        self.scaler = torch.amp.GradScaler(device.type) if dtype is torch.float16 else None

    def autocast(self) -> AbstractContextManager:
        """The forward pass's autocast context (a no-op in fp32)."""
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def train_step(
        self, model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, criterion: nn.Module,
        opt: torch.optim.Optimizer, weight: float = 1.0,
    ) -> tuple[float, torch.Tensor]:  # fmt: skip
        """Forward, backward and optimizer step; returns (loss, logits). `weight` scales
        the loss whose gradient is taken (a process's share of a distributed batch); the
        loss returned is unscaled.

        Raises:
            NonFiniteLoss: the loss is NaN/inf (the weights are left untouched).
            RuntimeError: what the device raises (out of memory, a lost GPU).
        """
        with self.autocast():
            out = model(xb)
            loss = criterion(out.float(), yb)
        opt.zero_grad(set_to_none=True)
        weighted = loss * weight if weight != 1 else loss
        if self.scaler is not None:
            self.scaler.scale(weighted).backward()
        else:
            weighted.backward()
        value = loss.item()  # float(loss) warns: the tensor requires grad
        if not math.isfinite(value):
            raise NonFiniteLoss(value)
        if self.scaler is not None:
            self.scaler.step(opt)  # skips the step when the scaled gradients overflowed
            self.scaler.update()
        else:
            opt.step()
        return value, out
