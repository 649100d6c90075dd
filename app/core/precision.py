"""fp32 or a 16-bit autocast, chosen by measuring on this machine, not guessed from CPU
flags.

A CPU flag says an instruction exists, not that it is fast: an AVX512-BF16 Xeon without
AMX multiplies bf16 at ~half its fp32 rate, and bf16 training ran 0.78x fp32 there. So the
first time a combination (model architecture, batch size, device, threads, torch version,
CPU model) runs with precision `auto`, a few real steps of each candidate are timed in
alternating rounds on throwaway copies (the run's weights, optimizer and random draws are
not touched), the faster is kept, and the choice is cached per machine in
`user_cache_dir()/precision.json` (atomic JSON). A forced precision is never measured.
"""

from __future__ import annotations

import copy
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from app.core.devices import autocast_dtype, cpu_has_fast_bf16, cpu_model, cuda_bf16_native
from app.core.fileio import atomic_write_text
from app.core.step import StepPrecision

CACHE_NAME = "precision.json"
CACHE_FORMAT = 1
ROUNDS = 3  # timed rounds per candidate, after one untimed warm-up step each
_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
_DTYPES = {v: k for k, v in _NAMES.items()}
_lock = threading.Lock()  # one read-modify-write of the cache file at a time


@dataclass(frozen=True)
class Choice:
    """The autocast dtype to use (None: fp32) and the log line saying why."""

    dtype: torch.dtype | None
    note: str

    @property
    def name(self) -> str:
        return _NAMES[self.dtype]


def cache_path() -> Path:
    from app.core.resources import user_cache_dir

    return user_cache_dir() / CACHE_NAME


def candidates(device: torch.device) -> list[torch.dtype | None]:
    """fp32 and the 16-bit type worth timing on `device` (none where it is emulated)."""
    if device.type == "cuda":
        return [None, torch.bfloat16 if cuda_bf16_native() else torch.float16]
    if device.type == "cpu" and cpu_has_fast_bf16():
        return [None, torch.bfloat16]
    return [None]  # MPS, or a CPU without bf16 instructions


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu {cpu_model()}, {torch.get_num_threads()} threads"
    return device.type


def cache_key(kind: str, arch: str, batch: int, device: torch.device) -> str:
    """What a measurement depends on: the work, the hardware, the software."""
    return f"{kind} | {arch} | batch {batch} | {_device_label(device)} | torch {torch.__version__}"


def _read_cache() -> dict:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or damaged: measure again
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return {}
    return data.get("choices", {}) if isinstance(data.get("choices"), dict) else {}


def _remember(key: str, entry: dict) -> None:
    """Adds one measured choice to the cache; a cache that cannot be written (read-only
    home) only means measuring again next time."""
    with _lock:
        choices = _read_cache()
        choices[key] = entry
        text = json.dumps({"format": CACHE_FORMAT, "choices": choices}, indent=1, sort_keys=True)
        try:
            atomic_write_text(cache_path(), text + "\n")
        except OSError:
            pass


def _note(best: str, times: dict[str, float], how: str) -> str:
    """"fp32: bf16 is 0.80x here (measured)": the others' speed relative to the choice."""
    others = ", ".join(f"{n} is {times[best] / t:.2f}x" for n, t in times.items() if n != best)
    return f"{best}: {others} here ({how})"


def time_alternating(fns: dict[str, Callable[[], object]], rounds: int = ROUNDS) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternating rounds (so a change
    in machine load hits all alike) after one untimed warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {n: [] for n in fns}
    for _ in range(rounds):
        for n, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[n].append(time.perf_counter() - t)
    return {n: statistics.median(ts) for n, ts in times.items()}


def _choose(key: str, cands: list[torch.dtype | None], measure: Callable[[], dict[str, float]]) -> Choice:
    if len(cands) == 1:
        return Choice(cands[0], f"{_NAMES[cands[0]]}: no native 16-bit math to try on this device")
    cached = _read_cache().get(key)
    if isinstance(cached, dict) and cached.get("choice") in [_NAMES[c] for c in cands]:
        return Choice(_DTYPES[cached["choice"]], _note(cached["choice"], cached["seconds"], "measured before"))
    times = measure()
    best = min(times, key=times.__getitem__)
    _remember(key, {
        "choice": best, "seconds": times,
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })  # fmt: skip
    return Choice(_DTYPES[best], _note(best, times, "measured"))


def forced(precision: str, device: torch.device) -> Choice:
    """The choice for a forced precision (`fp32`, `bf16`)."""
    dtype = autocast_dtype(device, precision)
    return Choice(dtype, f"{_NAMES[dtype]}: set by the precision setting")


def choose_for_training(
    precision: str, model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, criterion: nn.Module,
    arch: str, device: torch.device,
) -> Choice:  # fmt: skip
    """The precision to train `model` with on batches like (`xb`, `yb`) on `device`.

    `auto` times real training steps (forward, backward, SGD step) of each candidate on
    copies of the model; others are forced."""
    if precision != "auto":
        return forced(precision, device)
    cands = candidates(device)

    def measure() -> dict[str, float]:
        steps = {}
        for dtype in cands:
            m = copy.deepcopy(model).train()
            opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
            amp = StepPrecision(device, dtype)
            steps[_NAMES[dtype]] = lambda m=m, opt=opt, amp=amp: amp.train_step(m, xb, yb, criterion, opt)
        return time_alternating(steps)

    return _choose(cache_key("train", arch, len(xb), device), cands, measure)


def choose_for_inference(precision: str, model: nn.Module, xb: torch.Tensor, arch: str) -> Choice:
    """The precision to run the eval-mode `model` with on batches like `xb`: measured
    forward passes under `torch.inference_mode` for `auto`."""
    device = xb.device
    if precision != "auto":
        return forced(precision, device)
    cands = candidates(device)

    def measure() -> dict[str, float]:
        def forward(dtype: torch.dtype | None) -> None:
            with torch.inference_mode(), StepPrecision(device, dtype).autocast():
                model(xb).float().sum().item()  # .item(): wait for an asynchronous device

        return time_alternating({_NAMES[d]: (lambda d=d: forward(d)) for d in cands}, rounds=5)

    return _choose(cache_key("infer", arch, len(xb), device), cands, measure)
