"""Distributed data-parallel training: PyTorch's own engine (torch.distributed + DDP),
started by torchrun (`python -m app train --nproc N`, or `torchrun ... -m app train`).

What N processes share, so that they train the network one process would train at the
same global batch (same recipe, same lr, same accuracy):
- every process holds the whole training set on its device; each epoch's seeded
  permutation is cut into global batches as in a single-process run, and process r
  trains on rows r, r+N, r+2N, ... of each global batch (its shard, re-drawn each epoch);
- the loss is weighted by each share's size and DDP averages the gradients; augmentation
  draws for the global batch and keeps the share's rows. Batch norm normalises each
  process's share with that share's statistics (rank 0's running statistics are
  broadcast each step), as torchvision's reference scripts do by default; with
  `sync_bn` (`--sync-bn`) it computes them over the global batch (`syncbn`), so the update
  is exactly the single-process one, at about half the speed on CPUs (one all-reduce a BN
  layer forward and backward; bench/distributed.py);
- evaluation is sharded and summed, so every process sees the same metrics and picks
  the same best epoch; pause and stop are agreed between steps (a stop asked of one
  process, e.g. by Ctrl-C, stops all of them at the same step);
- only rank 0 writes: checkpoints, the model file, the progress. A checkpoint holds no
  trace of the number of processes, so a run resumes with any number of them.
"""

from __future__ import annotations

import datetime
import inspect
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from app.core.config import TrainingError
from app.core.devices import resolve_device
from app.core.evaluation import evaluate
from app.core.events import Event, StateEvent, TrainState
from app.core.precision import Choice
from app.core.syncbn import sync_batchnorm
from app.core.training import Trainer, _EpochStats, _Plan

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# A peer that stops answering (a dead node, a hung GPU) fails the run after this long
# instead of hanging it for torch's default 30 minutes.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class DistContext:
    """This process's place in a distributed run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str  # "gloo" (CPU) or "nccl" (CUDA)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and reports progress."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True in a process started by torchrun (its environment names rank and world)."""
    return all(v in os.environ for v in TORCHRUN_VARS)


def init_from_env(device: str = "auto") -> DistContext:
    """Joins the process group torchrun set up: gloo on the CPU, nccl on CUDA, where
    each process of a node takes GPU LOCAL_RANK.

    Raises:
        TrainingError: not started by torchrun, or the device cannot be used.
    """
    if not launched_by_torchrun():
        missing = [v for v in TORCHRUN_VARS if v not in os.environ]
        raise TrainingError(f"not started by torchrun (no {', '.join(missing)} in the environment)")
    try:
        rank, world, local = (int(os.environ[v]) for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError as e:
        raise TrainingError(f"torchrun's environment is not understood: {e}") from None
    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise TrainingError(str(e)) from None
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise TrainingError(
                f"process {local} of this node has no GPU: the node has {torch.cuda.device_count()}; "
                "start at most one process per GPU (--nproc-per-node)"
            )
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend = "nccl"
    elif dev.type == "cpu":
        backend = "gloo"
    else:
        raise TrainingError(f"distributed training runs on CUDA GPUs or the CPU, not {dev.type}")
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT, device_id=dev if dev.type == "cuda" else None)
    return DistContext(rank, world, local, dev, backend)


def shutdown() -> None:
    """Leaves the process group (at the end of a run, also after an error)."""
    if dist.is_initialized():
        dist.destroy_process_group()


class DistributedTrainer(Trainer):
    """A `Trainer` for one process of a torchrun run; see the module docstring.

    Args:
        ctx: from `init_from_env()`.
        sync_bn: batch norm over the global batch (exact single-process parity, slower).
        The other arguments are the Trainer's; `out` and `checkpoint` are written by
        rank 0 only, `resume` is read by every rank.
    """

    def __init__(self, ctx: DistContext, *args, sync_bn: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ctx = ctx
        self.sync_bn = sync_bn
        self.device = ctx.device
        if not ctx.is_main:  # rank 0 alone writes
            self.out = None
            self.checkpoint = None
        self._stop_request = threading.Event()

    # --- the hooks of Trainer --------------------------------------------------------------

    def _wrap(self, model: nn.Module) -> nn.Module:
        """Synchronized batch norm if asked, then DDP (which checks that all ranks start
        alike)."""
        if self.sync_bn:
            model = sync_batchnorm(model, self.device)
        ids = [self.device.index] if self.device.type == "cuda" else None
        # Buffers are the BN statistics. Synchronized, they are equal on every rank already
        # and broadcasting them each step would only cost time; per share, rank 0's are
        # broadcast so every rank evaluates and saves the same model. (torch 2.14 renamed
        # the switch; older versions know only the first name.)
        params = inspect.signature(DistributedDataParallel).parameters
        switch = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
        return DistributedDataParallel(model, device_ids=ids, **{switch: not self.sync_bn})

    def _batch(self, perm: torch.Tensor, step: int, plan: _Plan) -> tuple[torch.Tensor, slice]:
        rows = slice(self.ctx.rank, plan.batch_size, self.ctx.world_size)
        return perm[step * plan.batch_size : (step + 1) * plan.batch_size][rows], rows

    def _loss_weight(self, n: int, plan: _Plan) -> float:
        # DDP averages the ranks' gradients: weighting each rank's mean loss by its share
        # of the global batch makes that average the gradient of the global batch's mean
        # loss, also when the batch does not split evenly.
        return n * self.ctx.world_size / plan.batch_size

    def _reduce_stats(self, stats: _EpochStats) -> _EpochStats:
        t = torch.tensor([stats.loss, stats.correct, stats.n], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t)
        return _EpochStats(float(t[0]), int(t[1]), int(t[2]))

    def _evaluate(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int, **opts
    ) -> tuple[float, float, torch.Tensor]:
        """Each rank judges its share of the images; the sums make everyone's result."""
        r, w = self.ctx.rank, self.ctx.world_size
        loss, _, confusion = evaluate(model, images[r::w], labels[r::w], num_classes, **opts)
        n_local = len(images[r::w])
        t = torch.cat([torch.tensor([loss * n_local], dtype=torch.float64), confusion.flatten().double()])
        t = t.to(self._comm_device)
        dist.all_reduce(t)
        t = t.cpu()
        confusion = t[1:].round().long().view(num_classes, num_classes)
        n = max(len(images), 1)
        return float(t[0]) / n, int(confusion.diag().sum()) / n, confusion

    def _device_problem(self, e: RuntimeError, epoch: int, step: int) -> StateEvent:
        # One rank cannot pause alone while the others wait in a collective: the run stops
        # (the last checkpoint stands; resume it on another device or with a smaller batch).
        raise TrainingError(
            f"{self.device} failed at epoch {epoch + 1}, step {step + 1} on rank {self.ctx.rank}: "
            f"{str(e)[:200]}. Resume from the last checkpoint with a smaller batch or another device."
        ) from e

    def _choose_precision(self, device: torch.device) -> Choice:
        """Rank 0 measures (or reads its cache) and every rank uses its choice: ranks timing
        steps at once would disturb each other, and could pick differently."""
        mine = super()._choose_precision(device) if self.ctx.is_main else None
        shared = [mine]
        dist.broadcast_object_list(shared, src=0)
        return shared[0]

    # --- controls: agreed between ranks ----------------------------------------------------

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.ctx.backend == "nccl" else torch.device("cpu")

    def cancel(self) -> None:
        """Asks every rank to stop after the current step (safe from a signal handler)."""
        self._stop_request.set()
        self._pause.clear()

    def set_device(self, device: str) -> None:
        raise ValueError("a distributed run stays on its devices; stop it and resume with another --device")

    def _agree(self) -> tuple[bool, bool]:
        """(stop, pause) as any rank asked: one tiny all-reduce."""
        t = torch.tensor(
            [self._stop_request.is_set(), self._pause.is_set()], dtype=torch.float32, device=self._comm_device
        )
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        stop, pause = bool(t[0]), bool(t[1])
        if stop:
            self._cancel.set()  # the same step on every rank: the same epoch is the last
        return stop, pause

    def _poll_controls(self) -> Iterator[Event]:
        stop, pause = self._agree()
        if pause and not stop:
            yield StateEvent(TrainState.PAUSED, "training paused (all processes)", str(self.device))
            while pause and not stop:
                self._stop_request.wait(0.05)
                stop, pause = self._agree()
            if not stop:
                yield StateEvent(TrainState.RESUMED, "training resumed", str(self.device))
