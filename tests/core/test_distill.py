"""Learning without Forgetting in fine-tunes: the loss is the hand-computed softened KL,
the teacher's tail reproduces the base, and a fine-tune that distils on its replayed
images keeps the base's answers on them closer than one that does not."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.nn import functional as F

from app.core.distill import DistilledLoss, distillation_loss, entry_block, teacher_tail
from app.core.finetune import FineTuner
from app.core.recipes import default_config
from app.core.replay import relabel, split_flags
from tests.helpers.data import drawn_digits
from tests.helpers.models import random_model, write_model

torch.set_num_threads(1)


def test_the_loss_is_the_softened_kl_times_t_squared_on_the_old_classes_only():
    student = torch.tensor([[2.0, 0.0, -1.0, 9.0], [0.5, 0.5, 3.0, -9.0]])  # last column: a new class
    teacher = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    t = 2.0
    expected = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        ps = [math.exp(v / t) for v in s_row[:3]]
        pt = [math.exp(v / t) for v in t_row]
        ps = [v / sum(ps) for v in ps]
        pt = [v / sum(pt) for v in pt]
        expected += sum(q * math.log(q / p) for q, p in zip(pt, ps))
    expected = expected / 2 * t * t
    assert float(distillation_loss(student, teacher, t)) == pytest.approx(expected, rel=1e-5)
    assert float(distillation_loss(teacher, teacher, t)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("arch, last", [("resnet-mnist-small", 1), ("resnet-mnist-small", 2), ("resnet-mnist-small", 0), ("resnet18", 1)])
def test_the_teacher_tail_on_the_entry_features_is_the_base(arch, last):
    base = random_model(arch)
    x = drawn_digits(1).images[:2].float() / 255
    captured = []
    handle = entry_block(base, last).register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    with torch.no_grad():
        want = base(x)
    handle.remove()
    with torch.no_grad():
        got = teacher_tail(base, last)(captured[0])
    assert torch.allclose(got, want, atol=1e-5)
    assert not any(p.requires_grad for p in teacher_tail(base, last).parameters())


def test_the_criterion_adds_the_term_on_the_marked_rows_only():
    base = random_model()
    loss = DistilledLoss(torch.nn.CrossEntropyLoss(), teacher_tail(base, 1), weight=3.0, temperature=2.0)
    student = copy.deepcopy(base)  # the base's frozen prefix, its own last stage and head
    with torch.no_grad():
        for p in [*student.net.layers[6:].parameters(), *student.net.fc.parameters()]:
            p.add_(torch.randn_like(p) * 0.1)
    x = drawn_digits(1).images[:4].float() / 255
    y = torch.tensor([0, 1, 2, 3])
    rows = torch.tensor([True, False, True, False])
    with loss.watching(entry_block(student, 1), rows):
        out = student(x)
        total = float(loss(out, y).detach())
    out = out.detach()
    with torch.no_grad():
        want = F.cross_entropy(out, y) + 3.0 * distillation_loss(out[rows], base(x[rows]), 2.0)
    assert total == pytest.approx(float(want), rel=1e-5)
    assert float(want) > float(F.cross_entropy(out, y)) + 0.01  # the term is there
    assert float(loss(out, y)) == pytest.approx(float(F.cross_entropy(out, y)))  # outside a step: plain


def test_the_replayed_rows_follow_the_trainers_split():
    data = relabel(drawn_digits(4), [str(i) for i in range(10)])
    flags = torch.arange(len(data)) < 13
    config = default_config("mnist", finetune=True, val_fraction=0.25)
    marked = split_flags(data, flags, config)
    assert len(marked) == 30 and 0 < int(marked.sum()) < 13  # some of the 13 went to validation
    limited = split_flags(data, flags, default_config("mnist", finetune=True, limit=20))
    assert len(limited) == 19


def _drift(tmp_path, weight: float) -> float:
    """Mean KL of the fine-tuned model's answers from the base's on the replayed images,
    after a fine-tune on examples labelled against the base's answers."""
    base_path = write_model(tmp_path / f"base{weight}.safetensors")
    replay = drawn_digits(6, seed=5)
    personal = relabel(drawn_digits(2, seed=9), [str(i) for i in range(10)])
    personal.labels = (personal.labels + 1) % 10  # examples that disagree with everything
    config = default_config(
        "mnist", finetune=True, arch="resnet-mnist-small", epochs=2, batch_size=16, lr=0.05,
        channels_last=False, precision="fp32", replay_size=60, personal_share=0.25, distill_weight=weight,
    )  # fmt: skip
    tuner = FineTuner(config, base_path, personal, replay=replay)
    list(tuner.run())
    if weight > 0:
        assert tuner._distill is not None and tuner._distill.last_distill > 0
    x = replay.images.float() / 255
    with torch.no_grad():
        base, new = tuner.base.eval()(x), tuner.model.eval()(x)
    return float(F.kl_div(F.log_softmax(new, 1), F.log_softmax(base, 1), reduction="batchmean", log_target=True))


def test_distilling_on_the_replay_keeps_the_base_answers_there(tmp_path):
    plain, distilled = _drift(tmp_path, 0.0), _drift(tmp_path, 5.0)
    assert distilled < 0.5 * plain, (plain, distilled)
