"""ResNet models by name, each with the input spec it expects.

A model takes float images in [0, 1] shaped (B, C, H, W); per-channel normalization
lives inside the model (`Normalize`) so the app, the CLI and an exported model can never
disagree on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from app.core import fields

PREPROCESS_MODES = ("digit", "fit", "resize")
STD_RANGE = (1e-3, 1e3)  # normalization std: real ones are ~0.2..0.5


@dataclass(frozen=True)
class InputSpec:
    """What a model expects and how raw images are turned into it.

    mode: "digit" normalizes like MNIST was made (crop ink, 20 px box, centre of mass);
          "fit" trims the background and fits the object (Fashion-MNIST style);
          "resize" resizes the shorter side and centre-crops (photos, custom folders).
    """

    channels: int = 1
    size: int = 28
    mean: tuple[float, ...] = (0.1307,)
    std: tuple[float, ...] = (0.3081,)
    mode: str = "digit"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {self.channels}")
        if not 8 <= self.size <= 512:
            raise ValueError(f"input size must be 8..512 px, not {self.size}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError("mean and std need one value per channel")
        # Pixels are in [0, 1], so is their mean. A std that is not positive, or tiny,
        # turns (x - mean) / std into inf or NaN: NaN confidences, never a prediction.
        if not all(math.isfinite(m) and 0.0 <= m <= 1.0 for m in self.mean):
            raise ValueError(f"mean values must be numbers in 0..1, not {list(self.mean)}")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"std values must be positive numbers, not {list(self.std)}")
        if not all(STD_RANGE[0] <= s <= STD_RANGE[1] for s in self.std):
            raise ValueError(
                f"std values must be {STD_RANGE[0]:g}..{STD_RANGE[1]:g}, not {list(self.std)}"
            )
        if self.mode not in PREPROCESS_MODES:
            raise ValueError(f"mode must be one of {PREPROCESS_MODES}, not {self.mode!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        """Reads a model card's "input" object, checking every field's type and range.

        Raises:
            KeyError: a required field is missing.
            ValueError: a field has the wrong type or value; the message names it.
        """
        if not isinstance(data, dict):
            raise fields.FieldError(f"input must be an object, not {fields.shown(data)}")
        w = "input."
        return cls(
            channels=fields.integer(data, "channels", 1, 3, where=w),
            size=fields.integer(data, "size", 8, 512, where=w),
            mean=fields.numbers(data, "mean", 0.0, 1.0, where=w),
            std=fields.numbers(data, "std", *STD_RANGE, where=w),
            mode=str(fields.text(data, "mode", "resize", where=w, max_len=20)),
        )


MNIST_SPEC = InputSpec(1, 28, (0.1307,), (0.3081,), "digit")
FASHION_SPEC = InputSpec(1, 28, (0.2860,), (0.3530,), "fit")


class Normalize(nn.Module):
    """(x - mean) / std with the spec's values; buffers are not saved in weight files
    (the card holds them) so a weights file stays the network alone."""

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Normalization + a ResNet; what every part of the app runs."""

    def __init__(self, net: nn.Module, spec: InputSpec, arch: str, num_classes: int) -> None:
        super().__init__()
        self.normalize = Normalize(spec)
        self.net = net
        self.spec = spec
        self.arch = arch
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


# ---------------------------------------------------------------------------------------
# Compact ResNet for 28x28 inputs (He et al. 2015, CIFAR-style: 3x3 stem, three stages)
# ---------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN; identity shortcut, or a 1x1 projection when shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CompactResNet(nn.Module):
    """ResNet for small images: 3x3 stem, stages of BasicBlocks, global average pool, FC."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: tuple[int, ...] = (32, 64, 128),
        blocks: tuple[int, ...] = (2, 2, 2),
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        in_ch = widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(in_ch, width, stride))
                in_ch = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def _torchvision_resnet(builder_name: str) -> Callable[[int, int, int], nn.Module]:
    def build(in_channels: int, num_classes: int, size: int) -> nn.Module:
        import torchvision.models as tvm

        net = getattr(tvm, builder_name)(weights=None, num_classes=num_classes)
        if size < 96:
            # Small inputs: a 7x7/2 stem and max-pool would shrink 28x28 to 7x7 before the
            # first block. Use a 3x3/1 stem and no pool, as for CIFAR.
            net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        return net

    return build


@dataclass(frozen=True)
class ArchInfo:
    name: str
    description: str
    build: Callable[[int, int, int], nn.Module]  # (in_channels, num_classes, size) -> net


ARCHITECTURES: dict[str, ArchInfo] = {
    "resnet-mnist": ArchInfo(
        "resnet-mnist",
        "compact ResNet for 28x28 (3 stages 32/64/128, 2 blocks each, ~0.7 M params)",
        lambda c, n, s: CompactResNet(c, n, (32, 64, 128), (2, 2, 2)),
    ),
    "resnet-mnist-small": ArchInfo(
        "resnet-mnist-small",
        "ResNet-20-style (3 stages 16/32/64, 3 blocks each, ~0.27 M params)",
        lambda c, n, s: CompactResNet(c, n, (16, 32, 64), (3, 3, 3)),
    ),
    # Shallower/narrower ResNets for time-to-accuracy on a CPU (bench/speedrun_lab.py):
    # same blocks, fewer of them; the cost of a training image scales with depth and width^2.
    "resnet-mnist-14": ArchInfo(
        "resnet-mnist-14",
        "ResNet-14 (3 stages 16/32/64, 2 blocks each, ~0.18 M params)",
        lambda c, n, s: CompactResNet(c, n, (16, 32, 64), (2, 2, 2)),
    ),
    "resnet-mnist-8": ArchInfo(
        "resnet-mnist-8",
        "ResNet-8 (3 stages 16/32/64, 1 block each, ~0.08 M params)",
        lambda c, n, s: CompactResNet(c, n, (16, 32, 64), (1, 1, 1)),
    ),
    "resnet-mnist-8-wide": ArchInfo(
        "resnet-mnist-8-wide",
        "ResNet-8, wider (3 stages 24/48/96, 1 block each, ~0.17 M params)",
        lambda c, n, s: CompactResNet(c, n, (24, 48, 96), (1, 1, 1)),
    ),
    "resnet18": ArchInfo("resnet18", "torchvision ResNet-18 (11 M params)", _torchvision_resnet("resnet18")),
    "resnet34": ArchInfo("resnet34", "torchvision ResNet-34 (21 M params)", _torchvision_resnet("resnet34")),
    "resnet50": ArchInfo(
        "resnet50", "torchvision ResNet-50, bottleneck blocks (24 M params)", _torchvision_resnet("resnet50")
    ),
}


def build_model(arch: str, num_classes: int, spec: InputSpec) -> Classifier:
    """Builds an untrained model of a registered architecture.

    Raises:
        ValueError: unknown architecture or class count below 2.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, not {num_classes}")
    net = ARCHITECTURES[arch].build(spec.channels, num_classes, spec.size)
    return Classifier(net, spec, arch, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Re-initialises every parameter from `generator`, with the schemes the builders use
    (torchvision's ResNet and CompactResNet): Kaiming normal (fan_out, ReLU) for convs,
    weight 1 / bias 0 for norms, PyTorch's default for Linear layers.

    A local generator makes a run's initial weights a function of its seed alone: the
    global RNG is shared with every other thread (a warm-up, another run), so seeding it
    would race.

    Raises:
        TypeError: a module with parameters this function does not know (a new layer
            type must get its scheme here, or runs stop being reproducible).
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):  # nn.Linear.reset_parameters, from `generator`
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    bound = 1 / math.sqrt(m.in_features) if m.in_features > 0 else 0
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif any(True for _ in m.parameters(recurse=False)):
                raise TypeError(f"init_weights: no seeded initialisation for {type(m).__name__}")
