"""Learning without Forgetting for fine-tunes (Li & Hoiem 2016; the softened targets of
Hinton et al. 2015): on the replayed images, the fine-tuned model's outputs for the base's
classes are pulled toward what the base model itself answers for the same augmented image.
The replay's hard labels alone let a fine-tune move MNIST digits across a border the
user's examples push on (docs/personalise.md); the base's own soft outputs also say how
sure it was and what came second, which the labels do not.

The base's answer costs little: a fine-tune trains only the last stages, and the frozen
layers before them are the base's own (weights and BatchNorm statistics), so the base's
features at the first trained stage are the student's. The teacher is the base's tail from
there on (`teacher_tail`), fed with the student's features captured in the same forward
pass (`DistilledLoss.watching`)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

from app.core.models import Classifier, CompactResNet

_TORCHVISION_STEM = ("conv1", "bn1", "relu", "maxpool")


def entry_block(model: Classifier, last_stages: int) -> nn.Module:
    """The module whose input the teacher's tail takes: the first block of the model's
    last `last_stages` stages (the whole net when `last_stages` is 0)."""
    from app.core.finetune import stages

    if last_stages <= 0:
        return model.net
    return stages(model)[-last_stages][0]


def teacher_tail(base: Classifier, last_stages: int) -> nn.Module:
    """A frozen copy of the base's net from its last `last_stages` stages on: it maps the
    input of `entry_block(base, last_stages)` to the base's logits (the whole net, input
    normalised, when `last_stages` is 0)."""
    from app.core.finetune import stages

    tail = copy.deepcopy(base)
    net = tail.net
    if last_stages > 0:
        keep = {id(m) for s in stages(tail)[-last_stages:] for m in s.modules()}
        if isinstance(net, CompactResNet):
            net.stem = nn.Identity()
            net.layers = nn.Sequential(*[b for b in net.layers if id(b) in keep])
        else:  # torchvision's ResNet: stem, layer1..4, avgpool, fc
            for name in _TORCHVISION_STEM:
                setattr(net, name, nn.Identity())
            for i in range(1, 5):
                layer = getattr(net, f"layer{i}", None)
                if layer is not None and id(layer) not in keep:
                    setattr(net, f"layer{i}", nn.Identity())
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 KL(softmax(teacher / T) || softmax(student / T)), the mean over rows; only the
    student's first columns (the teacher's classes) take part, so new classes' outputs are
    free. The T^2 keeps the gradient's size independent of T (Hinton et al. 2015)."""
    t = temperature
    log_p_student = F.log_softmax(student[:, : teacher.shape[1]].float() / t, dim=1)
    log_p_teacher = F.log_softmax(teacher.float() / t, dim=1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * (t * t)


class DistilledLoss(nn.Module):
    """The run's own loss, plus `weight` times the distillation loss on the batch rows
    marked in `rows` (the replayed images), against the teacher's logits for the same
    images (features captured at the entry block by `watching`)."""

    def __init__(self, criterion: nn.Module, teacher: nn.Module, weight: float, temperature: float) -> None:
        super().__init__()
        self.criterion = criterion
        self.teacher = teacher
        self.weight = weight
        self.temperature = temperature
        self.rows: torch.Tensor | None = None  # bool (n,): the rows to distil this step
        self._features: torch.Tensor | None = None
        self.last_distill: float = 0.0  # the last step's distillation term (for tests, logs)

    @contextmanager
    def watching(self, entry: nn.Module, rows: torch.Tensor) -> Iterator[None]:
        """For one training step: captures the input of `entry` in the student's forward
        pass and distils on `rows`; the hook is gone afterwards."""

        def capture(_module: nn.Module, args: tuple) -> None:
            self._features = args[0].detach()

        self.rows = rows
        handle = entry.register_forward_pre_hook(capture)
        try:
            yield
        finally:
            handle.remove()
            self.rows, self._features = None, None

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = self.criterion(logits, labels)
        rows, feats = self.rows, self._features
        if rows is None or feats is None or not bool(rows.any()):
            return loss
        n = len(rows)  # rows beyond (outlier exposure's) are never distilled
        rows = rows.to(logits.device)
        if next(self.teacher.parameters()).device != feats.device:
            self.teacher.to(feats.device)
        with torch.no_grad():
            target = self.teacher(feats[:n][rows]).float()
        term = distillation_loss(logits[:n][rows], target, self.temperature)
        self.last_distill = float(term.detach())
        return loss + self.weight * term
