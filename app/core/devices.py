"""Which devices can run the models, and how to talk about them."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceInfo:
    """One choice for the device switch; unavailable ones carry the reason."""

    id: str  # "cpu", "cuda:0", "mps"
    name: str  # human label
    available: bool
    reason: str = ""


def list_devices() -> list[DeviceInfo]:
    """CPU, each CUDA GPU, and MPS; missing accelerators are listed with the reason."""
    out = [DeviceInfo("cpu", f"CPU ({torch.get_num_threads()} threads)", True)]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append(DeviceInfo(f"cuda:{i}", f"GPU {i}: {torch.cuda.get_device_name(i)}", True))
    else:
        flavor = os.environ.get("RESNET_STUDIO_BUILD_FLAVOR", "")
        if "CPU only" in flavor:
            reason = "this is the CPU-only build of ResNet Studio"
        elif torch.version.cuda is None:
            reason = "this torch build has no CUDA support"
        else:
            reason = "no NVIDIA GPU or driver found"
        out.append(DeviceInfo("cuda:0", "NVIDIA GPU (CUDA)", False, reason))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(DeviceInfo("mps", "Apple GPU (MPS)", True))
    return out


def selector_id(device: str) -> str:
    """The device list's id of a torch device name: torch prints `cuda` for the current
    GPU; the list has `cuda:0`."""
    return "cuda:0" if device == "cuda" else device


def resolve_device(name: str | None) -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU. Raises ValueError for unusable devices."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("CUDA is not available on this machine (no GPU or driver)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"no GPU {dev.index}: this machine has {torch.cuda.device_count()}")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("MPS (Apple GPU) is not available on this machine")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device type {dev.type!r}")
    return dev


@functools.cache
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_has_fast_bf16() -> bool:
    """Whether the CPU has native bf16 dot products (AVX512-BF16, AMX; Arm's BF16). Having
    them does not make bf16 faster (an AVX512-BF16 Xeon without AMX trains slower in
    bf16): `app.core.precision` measures; this only rules bf16 out where it is emulated."""
    info = _cpuinfo()
    arm_flags = " ".join(ln for ln in info.splitlines() if ln.lower().startswith("features"))
    return "avx512_bf16" in info or "amx_bf16" in info or " bf16" in f" {arm_flags} "


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC 9354P ..."), for keying per-machine measurements."""
    for line in _cpuinfo().splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cuda_bf16_native() -> bool:
    """bf16 on the current GPU in hardware; emulated bf16 (pre-Ampere) is slower than
    fp16 and does not count."""
    return torch.cuda.is_bf16_supported(including_emulation=False)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for a precision setting (`auto`, `fp32`, `bf16`), or None.

    A forced setting maps directly (bf16 on a GPU without native bf16 means fp16). `auto`
    here is a guess from the hardware; the trainer and the Predictor measure instead
    (`app.core.precision`)."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if cuda_bf16_native() else torch.float16  # fp16 steps use a GradScaler
    if device.type == "cpu":
        if precision == "bf16" or cpu_has_fast_bf16():
            return torch.bfloat16
        return None
    return None  # MPS: keep fp32


def is_device_failure(exc: BaseException) -> bool:
    """Out of memory or a GPU that went away: recoverable by switching device."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        s in msg for s in ("out of memory", "cuda error", "device-side assert", "no cuda gpus", "mps backend")
    )
