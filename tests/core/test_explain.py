"""Saliency maps: the same on the plain model and the Predictor's fused copy, the model
left exactly as it was, usable from the inference thread, per-architecture layers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from app.core.explain import (
    explain,
    explain_prepared,
    grad_cam,
    gradcam_layer,
    integrated_gradients,
    stages,
)
from app.core.models import InputSpec, build_model
from app.core.predictor import Predictor, _fused_for_inference
from app.core.preprocess import prepare
from tests.helpers.data import drawn_digits
from tests.helpers.digits import draw_digit
from tests.helpers.models import random_model


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return drawn_digits(per_class=2).images  # 20 prepared 28x28 digits, uint8


@pytest.fixture(scope="module")
def shipped(request):
    from app.core.resources import default_model_path

    if not default_model_path().is_file():
        pytest.skip("the shipped model has not been trained yet (make model)")
    return Predictor.load(default_model_path())


def _snapshot(model: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("tta_flip", [False, True])
def test_fused_channels_last_copy_explains_like_the_plain_model(digits, tta_flip):
    model = random_model("resnet-mnist").to(memory_format=torch.channels_last)  # random BN stats
    fused = _fused_for_inference(model)
    digits = digits[:10]
    targets = torch.arange(len(digits))  # also classes the model does not predict
    cam_a, logits_a = grad_cam(model, digits, targets, tta_flip=tta_flip)
    cam_b, logits_b = grad_cam(fused, digits, targets, tta_flip=tta_flip)
    ig_a, _ = integrated_gradients(model, digits, targets, tta_flip=tta_flip, precision="fp32")
    ig_b, _ = integrated_gradients(fused, digits, targets, tta_flip=tta_flip, precision="fp32")
    torch.testing.assert_close(logits_a, logits_b, rtol=1e-4, atol=1e-4)
    assert float(cam_a.amax()) > 0
    assert float((cam_a - cam_b).abs().max()) <= 1e-4 * float(cam_a.abs().max())
    # 16 path points, each summed in another order by the fused convs: float noise only
    assert float((ig_a - ig_b).abs().max()) <= 1e-2 * float(ig_a.abs().max())


def test_the_model_is_left_exactly_as_it_was(digits):
    model = random_model("resnet-mnist-small")
    before = _snapshot(model)
    flags = [p.requires_grad for p in model.parameters()]
    for method in ("gradcam", "ig"):
        explain(model, digits[:4], method=method)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(not m._forward_hooks for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_failure_mid_explanation_leaves_no_hook_behind(digits):
    model = random_model("resnet-mnist-small")
    with pytest.raises(ValueError, match="out of range"):
        grad_cam(model, digits[:2], targets=[3, 10])  # raised after the hooked forward pass
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="eval mode"):
        explain(model.train(), digits[:2])
    assert model.training  # refused, not switched behind the caller's back
    with pytest.raises(ValueError, match="unknown explanation method"):
        explain(model.eval(), digits[:2], method="lime")


def test_runs_where_the_inference_thread_runs_it_under_inference_mode(digits):
    model = random_model("resnet-mnist-small")
    expected = grad_cam(model, digits[:3])[0]
    with torch.inference_mode():
        x = digits[:3].float() / 255  # an inference tensor, as the Predictor makes them
        got = grad_cam(model, x)[0]
        assert torch.is_inference_mode_enabled()  # the caller's mode is back
    torch.testing.assert_close(got, expected)


def test_two_threads_explaining_with_one_model_get_their_own_maps(digits):
    model = random_model("resnet-mnist-small")
    alone = [grad_cam(model, digits[i : i + 1])[0] for i in range(8)]
    start = threading.Barrier(2)

    def work(offset: int) -> list[torch.Tensor]:
        start.wait()
        return [grad_cam(model, digits[i : i + 1])[0] for i in range(offset, 8, 2) for _ in range(3)][::3]

    with ThreadPoolExecutor(2) as pool:
        evens, odds = pool.map(work, (0, 1))
    for i, got in zip(range(0, 8, 2), evens):
        torch.testing.assert_close(got, alone[i])
    for i, got in zip(range(1, 8, 2), odds):
        torch.testing.assert_close(got, alone[i])


def test_flip_tta_explains_the_averaged_logit_so_mirrored_input_gives_mirrored_maps(digits):
    model = random_model("resnet-mnist-small")
    x = digits[:4]
    target = 5
    for method in ("gradcam", "ig"):
        a = explain(model, x, target, method, tta_flip=True)
        b = explain(model, x.flip(-1), target, method, tta_flip=True)
        for ea, eb in zip(a, b):
            np.testing.assert_allclose(eb.attribution, ea.attribution[:, ::-1], atol=1e-4 * np.abs(ea.attribution).max())
            assert "mirror" in ea.explained
    plain = explain(model, x, target, "gradcam")[0]
    assert "mirror" not in plain.explained


def test_integrated_gradients_add_up_to_the_change_of_the_logit(shipped):
    """Completeness: attributions sum to logit(image) - logit(black). 16 path steps get
    within ~5% (median); 8 would be off by ~25%. bf16 passes change the maps little."""
    x = torch.from_numpy(np.stack([prepare(draw_digit(d, 200)).pixels for d in range(10)]))
    attr, logits = integrated_gradients(shipped.model, x, precision="fp32")
    with torch.no_grad():
        black = shipped.model(torch.zeros(1, 1, 28, 28))[0]
    t = logits.argmax(1)
    change = logits.gather(1, t[:, None])[:, 0] - black[t]
    rel = ((attr.sum((1, 2)) - change).abs() / change.abs()).numpy()
    assert np.median(rel) < 0.1 and rel.max() < 0.35, rel
    bf16, logits_bf16 = integrated_gradients(shipped.model, x, precision="bf16")
    torch.testing.assert_close(logits_bf16, logits)  # the answer itself stays fp32
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(attr.numpy(), bf16.numpy())]
    assert min(corr) > 0.99, corr


def test_why_not_another_class_points_elsewhere_than_why_this_one(shipped):
    """A 4 explained as 4 and as 9: the maps differ, and the 9's probability is low."""
    prepared = prepare(draw_digit(4, 280))
    why = explain_prepared(shipped.model, prepared, None, "ig")
    why_not = explain_prepared(shipped.model, prepared, 9, "ig")
    assert why.predicted == why.target == 4 and why_not.target == 9 and why_not.predicted == 4
    assert why_not.probabilities[9] < 0.2
    corr = np.corrcoef(why.attribution.ravel(), why_not.attribution.ravel())[0, 1]
    assert corr < 0.8
    assert why.heatmap.max() == pytest.approx(1.0) and why.heatmap.min() >= 0.0
    assert why.attribution.shape == why.heatmap.shape == (28, 28)


def test_a_blank_image_is_refused_with_the_reason():
    model = random_model("resnet-mnist-small")
    blank = prepare(np.full((50, 50), 255, np.uint8))
    with pytest.raises(ValueError, match="nothing to classify"):
        explain_prepared(model, blank)


@pytest.mark.parametrize(
    ("arch", "size", "layer", "side"),
    [
        ("resnet-mnist", 28, "net.layers.5", 7),
        ("resnet-mnist-small", 28, "net.layers.8", 7),
        ("resnet18", 28, "net.layer3", 7),  # layer4 is 4x4
        ("resnet34", 28, "net.layer3", 7),
        ("resnet50", 28, "net.layer3", 7),
        ("resnet18", 64, "net.layer4", 8),
        ("resnet18", 96, "net.layer2", 12),  # big-input stem (/4); layer3 would be 6x6
    ],
)
def test_gradcam_layer_is_the_deepest_stage_with_a_usable_grid(arch, size, layer, side):
    spec = InputSpec(1, size, (0.5,), (0.25,), "resize")
    model = build_model(arch, 3, spec).eval()
    found = dict(stages(model, size))
    shapes = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, o.shape[-1]))
        for n in found
    ]
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    for h in hooks:
        h.remove()
    assert shapes == found  # the computed sides are the real ones
    chosen = gradcam_layer(model)
    assert chosen == layer and found[chosen] == side
    cam, _ = grad_cam(model, torch.rand(2, 1, size, size))
    assert cam.shape == (2, size, size)


def test_a_colour_photo_model_explains_at_its_own_input_size():
    spec = InputSpec(3, 64, (0.5,) * 3, (0.25,) * 3, "resize")
    model = random_model("resnet-mnist-small", classes=3, spec=spec)
    photo = np.zeros((120, 200, 3), np.uint8)
    photo[30:90, 60:140] = (200, 40, 40)  # a red square on black
    prepared = prepare(photo, spec)
    for method in ("gradcam", "ig"):
        e = explain_prepared(model, prepared, 2, method)
        assert e.attribution.shape == e.heatmap.shape == (64, 64) and e.target == 2
        assert np.isfinite(e.attribution).all() and e.probabilities.shape == (3,)
