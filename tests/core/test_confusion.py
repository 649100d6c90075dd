"""Confusion matrices for many classes: sparse beyond 1,000 classes, never a dense
10,000 x 10,000 matrix (800 MB), and a capped view of the classes with the most mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from app.core.confusion import MAX_SHOWN_CLASSES, confusion_counts, row_totals_and_diagonal, shown
from app.core.evaluation import evaluate, per_class_accuracy


def _hwm_mb() -> int:
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024


class Fixed(nn.Module):
    """Predicts a given class for each image (its first pixel says which)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = (x[:, 0, 0, 0] * 255).round().long() * 40 + (x[:, 0, 0, 1] * 255).round().long()
        return torch.nn.functional.one_hot(idx, self.k).float() * 10 + self.w


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures with Linux /proc")
def test_a_10000_class_evaluation_stays_sparse_and_small():
    k, n = 10_000, 2_000
    y = torch.arange(n) * 5 % k
    pred = y.clone()
    pred[:300] = (y[:300] + 1) % k  # 300 mistakes
    images = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = (pred // 40).to(torch.uint8), (pred % 40).to(torch.uint8)
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM from here
    before = _hwm_mb()
    loss, acc, conf = evaluate(Fixed(k), images, y, k, channels_last=False)
    assert _hwm_mb() - before < 200  # a dense matrix alone is 800 MB, its bincount another 800
    assert conf.is_sparse and conf.shape == (k, k)
    assert acc == (n - 300) / n
    per_class = per_class_accuracy(conf)
    assert len(per_class) == k and per_class[int(y[0])] == 0.0 and per_class[int(y[-1])] == 1.0
    index, drawn = shown(conf)
    assert len(index) == len(drawn) == MAX_SHOWN_CLASSES and index == sorted(index)
    # The shown classes are ones with mistakes, and their cells hold the right counts.
    wrong = set(y[:300].tolist()) | set(pred[:300].tolist())
    assert set(index) <= wrong
    a, b = int(y[0]), int(pred[0])
    if a in index and b in index:
        assert drawn[index.index(a)][index.index(b)] == 1


def test_few_classes_stay_dense_and_whole():
    y = torch.tensor([0, 1, 2, 2, 1])
    p = torch.tensor([0, 2, 2, 2, 1])
    conf = confusion_counts(y, p, 3)
    assert not conf.is_sparse
    assert shown(conf) == (None, [[1, 0, 0], [0, 1, 1], [0, 0, 2]])
    totals, diag = row_totals_and_diagonal(conf)
    assert totals.tolist() == [1, 2, 2] and diag.tolist() == [1, 1, 2]
    sparse = confusion_counts(y, p, 3).to_sparse()
    assert shown(sparse, cap=2)[0] == [1, 2]  # the classes with mistakes
