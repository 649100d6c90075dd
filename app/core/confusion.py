"""Confusion matrices that stay small whatever the class count: dense up to
`MAX_DENSE_CLASSES` classes, sparse (only the pairs that occur) beyond, and a capped view
of the classes with the most mistakes for drawing. A 10,000-class dataset's dense matrix
would be 800 MB (int64), and its bincount another 800 MB per batch."""

from __future__ import annotations

import torch

MAX_DENSE_CLASSES = 1000  # 8 MB of int64
MAX_SHOWN_CLASSES = 40  # a drawn matrix with more rows is unreadable anyway


def confusion_counts(true: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts [true, predicted] as a (K, K) int64 tensor on the CPU: dense for up to
    `MAX_DENSE_CLASSES` classes, else a coalesced sparse COO tensor."""
    codes = true.detach().cpu().to(torch.int64) * num_classes + predicted.detach().cpu().to(torch.int64)
    if num_classes <= MAX_DENSE_CLASSES:
        return torch.bincount(codes, minlength=num_classes * num_classes).view(num_classes, num_classes)
    pairs, counts = torch.unique(codes, return_counts=True)
    index = torch.stack([pairs // num_classes, pairs % num_classes])
    return torch.sparse_coo_tensor(index, counts, (num_classes, num_classes), check_invariants=True).coalesce()


def add_counts(a: torch.Tensor | None, b: torch.Tensor) -> torch.Tensor:
    """The sum of two `confusion_counts` results (a may be None: the first batch)."""
    if a is None:
        return b
    return (a + b).coalesce() if b.is_sparse else a + b


def row_totals_and_diagonal(confusion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(images of each true class, correct ones of each class), dense (K,) int64."""
    if not confusion.is_sparse:
        return confusion.sum(1), confusion.diag()
    c = confusion.coalesce()
    i, j = c.indices()
    v = c.values()
    k = c.shape[0]
    totals = torch.zeros(k, dtype=torch.int64).index_add_(0, i, v)
    on_diag = i == j
    diag = torch.zeros(k, dtype=torch.int64).index_add_(0, i[on_diag], v[on_diag])
    return totals, diag


def shown(confusion: torch.Tensor, cap: int = MAX_SHOWN_CLASSES) -> tuple[list[int] | None, list[list[int]]]:
    """What to draw: (None, the whole matrix) for up to `cap` classes; else the indices
    of the `cap` classes with the most mistakes (as true or predicted class, ascending)
    and their sub-matrix. Never builds the dense K x K matrix of a sparse one."""
    k = confusion.shape[0]
    if k <= cap and not confusion.is_sparse:
        return None, confusion.tolist()
    c = confusion.coalesce() if confusion.is_sparse else confusion.to_sparse().coalesce()
    i, j = c.indices()
    v = c.values()
    off = i != j
    mistakes = torch.zeros(k, dtype=torch.int64)
    mistakes.index_add_(0, i[off], v[off]).index_add_(0, j[off], v[off])
    if k <= cap:
        keep = torch.arange(k)
    else:
        keep = torch.sort(torch.topk(mistakes, cap, sorted=False).indices).values
    pos = torch.full((k,), -1, dtype=torch.int64)
    pos[keep] = torch.arange(len(keep))
    inside = (pos[i] >= 0) & (pos[j] >= 0)
    sub = torch.zeros(len(keep), len(keep), dtype=torch.int64)
    sub.index_put_((pos[i[inside]], pos[j[inside]]), v[inside], accumulate=True)
    return keep.tolist(), sub.tolist()


def column_totals(confusion: torch.Tensor) -> torch.Tensor:
    """How often each class was predicted, dense (K,) int64."""
    if not confusion.is_sparse:
        return confusion.sum(0)
    c = confusion.coalesce()
    return torch.zeros(c.shape[1], dtype=torch.int64).index_add_(0, c.indices()[1], c.values())


def worst_cell(confusion: torch.Tensor, true: int | None = None) -> tuple[int, int] | None:
    """The most frequent confusion off the diagonal (in row `true` if given), or None."""
    c = confusion.coalesce() if confusion.is_sparse else confusion.to_sparse().coalesce()
    i, j = c.indices()
    v = c.values()
    keep = (i != j) if true is None else (i == true) & (j != true)
    if not bool(keep.any()):
        return None
    best = int(torch.argmax(torch.where(keep, v, torch.zeros_like(v))))
    return int(i[best]), int(j[best])
