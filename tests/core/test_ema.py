"""The weights EMA: the warmed-up average the trainer judges and saves."""

from __future__ import annotations

import torch
from torch import nn

from app.core.ema import WeightEMA


def test_the_ema_follows_the_warmed_up_formula_for_weights_and_bn_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    expected = {k: v.clone().double() for k, v in model.state_dict().items()}
    ema = WeightEMA(model, decay=0.9)
    for t in range(30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(2, 1, 5, 5))  # moves the BN statistics and its batch counter
        ema.update_parameters(model)
        d = min(0.9, (1 + t) / (10 + t))  # 0.1 at the first step: the init barely counts
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                expected[k] = d * expected[k] + (1 - d) * v.double()
            else:
                expected[k] = v.clone()
    got = ema.module.state_dict()
    for k, v in expected.items():
        if v.is_floating_point():
            torch.testing.assert_close(got[k].double(), v, rtol=1e-5, atol=1e-6, msg=k)
        else:
            assert torch.equal(got[k], v), k  # counters are copied, not averaged
    assert int(got["1.num_batches_tracked"]) == 30


def test_restoring_a_saved_average_continues_the_warm_up():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    straight = WeightEMA(model, 0.99)
    for _ in range(5):
        with torch.no_grad():
            model.weight.add_(1.0)
        straight.update_parameters(model)
    saved = {k: v.clone() for k, v in straight.module.state_dict().items()}
    resumed = WeightEMA(model, 0.99)
    resumed.restore(saved, steps_done=5)
    with torch.no_grad():
        model.weight.add_(1.0)
    straight.update_parameters(model)
    resumed.update_parameters(model)  # step 6 of the warm-up for both, not step 1
    assert torch.equal(straight.module.weight, resumed.module.weight)
