"""Pieces of `speedrun_lab.py`: the candidate's training run (the airbench toolbox as
options on the app's own ResNets, augmentation and EMA) and the seeds' recipe, both as
runs that advance one step at a time so the lab can interleave them in one process.

Every run keeps its own clocks (wall and CPU seconds of its steps only), image and step
counts; evaluations are not on the clock."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from app.core.augment import augment_batch, step_generator
from app.core.config import TrainConfig
from app.core.data import Dataset
from app.core.ema import WeightEMA
from app.core.models import BasicBlock, build_model, init_weights


@dataclass(frozen=True)
class Candidate:
    """One recipe under test; every field is an option the lab can switch (`--set k=v`)."""

    arch: str = "resnet-mnist-small"
    epochs: float = 4.0  # schedule length
    batch_size: int = 128
    lr: float = 0.2  # peak, SGD with Nesterov momentum 0.9
    weight_decay: float = 5e-4
    anneal: str = "cos"  # the trainer's one-cycle ramps (TrainConfig.anneal): cos | linear
    warmup: float = 0.15
    label_smoothing: float = 0.1
    bn_lr: float = 1.0  # lr multiplier of BN weights/biases (airbench raises the biases')
    ema: float = 0.0  # EMA decay of the judged weights; 0 = the live weights
    zero_res: bool = False  # last BN of each residual branch starts at 0 (block = identity)
    dirac: bool = False  # 3x3 convs with in == out start as identity (airbench's dirac init)
    whiten: bool = False  # stem conv: frozen patch-whitening filters from the training data
    small_px: int = 0  # progressive resizing: train at this size first (0 = off)
    small_until: float = 0.5  # ... for this fraction of the schedule
    tta: str = "auto"  # none | flip | shift | flip-shift; auto = flip for objects, none for digits
    altflip: bool = False  # objects only: each image mirrored on alternate epochs (airbench)
    erase: float = 0.0  # random erasing: share of the images given a noise rectangle (TrainConfig.erase)
    augment: str = "auto"  # digits | objects | none; auto from the dataset
    budget_s: float = 0.0  # budget-aware: the schedule spans this many CPU seconds (0 = epochs)

    @classmethod
    def parse(cls, base: Candidate, pairs: list[str]) -> Candidate:
        types = {f.name: f.type for f in fields(cls)}
        kw: dict = {}
        for p in pairs:
            k, _, v = p.partition("=")
            if k not in types:
                raise SystemExit(f"unknown option {k!r}; options: {', '.join(types)}")
            t = types[k]
            kw[k] = v.lower() in ("1", "true", "yes") if t == "bool" else float(v) if t == "float" else int(v) if t == "int" else v
        return replace(base, **kw)


AUGMENTS = {
    "digits": {},  # TrainConfig defaults: rotation, shear, zoom, shift, elastic warp
    "objects": dict(hflip=True, rotate_deg=0.0, shear_deg=0.0, scale=0.1, shift=0.1, elastic=0.0),
}


@dataclass
class Clocked:
    """What every run counts: images, steps, and wall/CPU seconds of its own steps."""

    images: int = 0
    steps: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    curve: list = field(default_factory=list)
    finished: bool = False

    def timed_step(self, fn) -> None:
        t, c = time.perf_counter(), time.process_time()
        n = fn()
        self.wall += time.perf_counter() - t
        self.cpu += time.process_time() - c
        self.images += n
        self.steps += 1


def _whiten_stem(conv: nn.Conv2d, x: torch.Tensor) -> None:
    """Patch whitening (airbench): filters are the eigenvectors of the covariance of the
    training images' k x k patches, scaled by 1/sqrt(eigenvalue), each with its negative;
    frozen. Channels beyond 2 x k^2 keep their random init, frozen too."""
    k = conv.kernel_size[0]
    patches = F.unfold(x, k, padding=k // 2).transpose(1, 2).reshape(-1, k * k)
    patches = patches[torch.randperm(len(patches), generator=torch.Generator().manual_seed(0))[:200_000]]
    cov = torch.cov(patches.T.double())
    vals, vecs = torch.linalg.eigh(cov)
    order = vals.argsort(descending=True)
    filt = (vecs[:, order] / torch.sqrt(vals[order] + 1e-2)).T.float().reshape(-1, 1, k, k)
    n = min(conv.out_channels // 2, len(filt))
    with torch.no_grad():
        conv.weight[:n] = filt[:n]
        conv.weight[n : 2 * n] = -filt[:n]
    conv.weight.requires_grad_(False)


class LabRun(Clocked):
    """The candidate: the app's model and augmentation, the lab's optimizer options."""

    def __init__(self, cand: Candidate, train: Dataset, objects: bool, seed: int = 0) -> None:
        super().__init__()
        self.cand, self.seed, self.objects = cand, seed, objects
        self.x, self.y = train.images, train.labels
        model = build_model(cand.arch, len(train.classes), train.spec)
        init_weights(model, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, BasicBlock):
                    if cand.zero_res:
                        m.bn2.weight.zero_()
                    if cand.dirac:
                        for conv in (m.conv1, m.conv2):
                            if conv.in_channels == conv.out_channels and conv.stride == (1, 1):
                                nn.init.dirac_(conv.weight)
        if cand.whiten:
            xs = model.normalize(self.x[:5000].float() / 255)
            _whiten_stem(model.net.stem[0], xs)
        self.model = model.to(memory_format=torch.channels_last)
        aug = cand.augment if cand.augment != "auto" else ("objects" if objects else "digits")
        self.aug_cfg = TrainConfig(**AUGMENTS[aug], erase=cand.erase, seed=seed) if aug != "none" else None
        if cand.altflip and self.aug_cfg is not None:
            self.aug_cfg = replace(self.aug_cfg, hflip=False)
        self.altflip_base = torch.rand(len(self.y), generator=torch.Generator().manual_seed(seed + 7)) < 0.5
        self.tta = cand.tta if cand.tta != "auto" else ("flip" if objects else "none")
        decay, bn = [], []
        for p in model.parameters():
            if p.requires_grad:
                (bn if p.ndim <= 1 else decay).append(p)
        self.opt = torch.optim.SGD(
            [{"params": decay, "weight_decay": cand.weight_decay, "mult": 1.0},
             {"params": bn, "weight_decay": 0.0, "mult": cand.bn_lr}],
            lr=cand.lr, momentum=0.9, nesterov=True,
        )  # fmt: skip
        self.crit = nn.CrossEntropyLoss(label_smoothing=cand.label_smoothing)
        self.ema = WeightEMA(self.model, cand.ema) if cand.ema > 0 else None
        self.bs = min(cand.batch_size, len(self.y))
        self.per_epoch = len(self.y) // self.bs
        self.total = max(1, round(cand.epochs * self.per_epoch))
        self.perm = torch.empty(0, dtype=torch.long)

    def progress(self) -> float:
        if self.cand.budget_s > 0:
            return min(1.0, self.cpu / self.cand.budget_s)
        return min(1.0, self.steps / self.total)

    def lr_factor(self, p: float) -> float:
        """The trainer's OneCycleLR(div_factor=20, final_div_factor=200) at progress p."""
        w, lo, end = self.cand.warmup, 1 / 20, 1 / 20 / 200
        up, t = (True, p / w) if p < w else (False, (p - w) / (1 - w))
        ramp = t if self.cand.anneal == "linear" else (1 - math.cos(math.pi * t)) / 2
        return lo + (1 - lo) * ramp if up else 1 - (1 - end) * ramp

    def step(self) -> None:
        if self.progress() >= 1.0:
            self.finished = True
            return
        self.timed_step(self._step)
        if self.progress() >= 1.0:
            self.finished = True

    def _step(self) -> int:
        epoch, k = divmod(self.steps, self.per_epoch)
        if k == 0:
            self.perm = torch.randperm(len(self.y), generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
        idx = self.perm[k * self.bs : (k + 1) * self.bs]
        xb = self.x[idx].float().div_(255)
        yb = self.y[idx]
        if self.aug_cfg is not None:
            xb = augment_batch(xb, self.aug_cfg, step_generator(self.seed, epoch, k))
        if self.cand.altflip:
            flip = self.altflip_base[idx] ^ bool(epoch % 2)
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
        p = self.progress()
        if self.cand.small_px and p < self.cand.small_until:
            s = self.cand.small_px
            xb = F.interpolate(xb, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        xb = xb.contiguous(memory_format=torch.channels_last)
        f = self.lr_factor(p)
        for g in self.opt.param_groups:
            g["lr"] = self.cand.lr * g["mult"] * f
        self.model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = self.crit(self.model(xb).float(), yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if not math.isfinite(loss.item()):
            raise SystemExit(f"diverged at step {self.steps} ({self.cand})")
        return len(idx)

    @torch.inference_mode()
    def accuracy(self, data: Dataset) -> float:
        model = self.ema.module if self.ema is not None else self.model
        model.eval()
        correct = 0
        for s in range(0, len(data), 1000):
            xb = (data.images[s : s + 1000].float() / 255).contiguous(memory_format=torch.channels_last)
            views = [xb]
            if "flip" in self.tta:
                views.append(xb.flip(-1))
            if "shift" in self.tta:
                views += [torch.roll(xb, 1, -1), torch.roll(xb, -1, -1)]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = sum(model(v).float().softmax(1) for v in views)
            correct += int((out.argmax(1) == data.labels[s : s + 1000]).sum())
        return correct / max(len(data), 1)


class SeedsRun(Clocked):
    """The seed project's recipe: ResNet-20-style `resnet-mnist-small` with PyTorch's
    default init, Adam 1e-3, StepLR(3 epochs, 0.1), batch 64, per-sample PIL ->
    ToTensor + Normalize through a DataLoader, fp32, all of the training data."""

    def __init__(self, train: Dataset, max_epochs: int, seed: int = 0, max_steps: int = 0) -> None:
        super().__init__()
        from torchvision import transforms
        from train_throughput import PilDataset

        spec = train.spec
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(spec.mean, spec.std)])
        ds = PilDataset(train.images[:, 0].numpy(), train.labels.numpy(), tf)
        g = torch.Generator().manual_seed(seed)
        self.loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, generator=g)
        torch.manual_seed(seed)
        self.model = build_model("resnet-mnist-small", len(train.classes), spec).net
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=3, gamma=0.1)
        self.mean, self.std = spec.mean[0], spec.std[0]
        self.max_epochs, self.max_steps, self.epoch = max_epochs, max_steps, 0
        self.it = iter(self.loader)

    def step(self) -> None:
        self.timed_step(self._step)
        if self.epoch >= self.max_epochs or self.steps == self.max_steps:
            self.finished = True

    def _step(self) -> int:
        try:
            x, y = next(self.it)
        except StopIteration:
            self.sched.step()
            self.epoch += 1
            self.it = iter(self.loader)
            if self.epoch >= self.max_epochs:
                return 0
            x, y = next(self.it)
        self.model.train()
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        loss.item()
        return len(y)

    @torch.inference_mode()
    def accuracy(self, data: Dataset) -> float:
        self.model.eval()
        correct = 0
        for s in range(0, len(data), 1000):
            xb = (data.images[s : s + 1000].float() / 255 - self.mean) / self.std
            correct += int((self.model(xb).argmax(1) == data.labels[s : s + 1000]).sum())
        return correct / max(len(data), 1)
