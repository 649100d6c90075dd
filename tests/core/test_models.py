"""Every architecture a user can pick builds, runs, and keeps its normalization inside."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from app.core.models import (
    ARCHITECTURES,
    FASHION_SPEC,
    MNIST_SPEC,
    BasicBlock,
    InputSpec,
    build_model,
    count_parameters,
)

RGB64 = InputSpec(3, 64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "resize")


# torchvision ResNets take seconds each to initialise and run on a CPU.
ARCH_PARAMS = [
    pytest.param(a, marks=[pytest.mark.slow] if a.startswith("resnet") and "mnist" not in a else [])
    for a in sorted(ARCHITECTURES)
]


@pytest.mark.parametrize("arch", ARCH_PARAMS)
@pytest.mark.parametrize("spec", [MNIST_SPEC, RGB64], ids=["1x28x28", "3x64x64"])
def test_every_architecture_builds_and_gives_one_logit_per_class(arch, spec):
    model = build_model(arch, 7, spec).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, spec.channels, spec.size, spec.size))
    assert out.shape == (1, 7)
    assert torch.isfinite(out).all()
    assert model.arch == arch and model.num_classes == 7 and model.spec == spec


def test_shipped_architecture_is_small_enough_to_bundle():
    model = build_model("resnet-mnist", 10, MNIST_SPEC)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert size < 5_000_000, f"resnet-mnist weights are {size / 1e6:.1f} MB"
    assert 500_000 < count_parameters(model) < 1_000_000  # what the picker describes (~0.7 M)


def test_small_architecture_is_smaller_than_the_default():
    small = count_parameters(build_model("resnet-mnist-small", 10, MNIST_SPEC))
    default = count_parameters(build_model("resnet-mnist", 10, MNIST_SPEC))
    assert small < default


def test_basic_block_projects_the_shortcut_only_when_the_shape_changes():
    same = BasicBlock(16, 16, 1)
    assert isinstance(same.shortcut, nn.Identity)
    for block in (BasicBlock(16, 32, 1), BasicBlock(16, 16, 2), BasicBlock(16, 32, 2)):
        conv = block.shortcut[0]
        assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1)
    block = BasicBlock(16, 32, 2).eval()
    with torch.inference_mode():
        assert block(torch.rand(1, 16, 14, 14)).shape == (1, 32, 7, 7)


def test_normalization_lives_in_the_model_and_is_not_saved_with_the_weights():
    model = build_model("resnet-mnist-small", 10, FASHION_SPEC)
    assert torch.allclose(model.normalize.mean.flatten(), torch.tensor(FASHION_SPEC.mean))
    assert not any(k.startswith("normalize.") for k in model.state_dict())


def test_unknown_architecture_and_single_class_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="resnet-mnist"):
        build_model("vgg16", 10, MNIST_SPEC)
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_model("resnet-mnist", 1, MNIST_SPEC)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": 2, "mean": (0.1, 0.1), "std": (0.3, 0.3)}, "channels"),
        ({"size": 4}, "input size"),
        ({"mean": (0.1, 0.2)}, "one value per channel"),
        ({"std": (0.0,)}, "positive"),
        ({"mode": "stretch"}, "mode"),
    ],
)
def test_invalid_input_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InputSpec(**kwargs)


def test_input_spec_round_trips_through_its_card_form():
    assert InputSpec.from_dict(RGB64.to_dict()) == RGB64
