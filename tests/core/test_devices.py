"""The device switch: what is offered, what is refused and why."""

from __future__ import annotations

import pytest
import torch

from app.core import devices
from app.core.devices import autocast_dtype, is_device_failure, list_devices, resolve_device


def test_cpu_is_always_offered_first_and_usable():
    listed = list_devices()
    assert listed[0].id == "cpu" and listed[0].available
    assert all(d.available or d.reason for d in listed), "an unavailable device must say why"


def test_cuda_is_listed_with_a_reason_when_missing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cuda = [d for d in list_devices() if d.id.startswith("cuda")]
    assert len(cuda) == 1 and not cuda[0].available and cuda[0].reason


def test_auto_falls_back_to_cpu_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize(
    "name, message",
    [("tpu", "unknown device"), ("banana", "unknown device"), ("meta", "unsupported")],
)
def test_unknown_devices_are_refused_with_the_choices(name, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(name)


def test_missing_gpu_is_refused_with_a_reason(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:1")


def test_gpu_index_beyond_the_installed_ones_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="no GPU 3"):
        resolve_device("cuda:3")


def test_fp32_never_autocasts_and_bf16_is_used_on_cpus_that_have_it(monkeypatch):
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert autocast_dtype(cpu, "auto") is None
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert autocast_dtype(cpu, "auto") == torch.bfloat16


def test_device_failures_are_told_apart_from_bugs():
    assert is_device_failure(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert is_device_failure(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not is_device_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_device_failure(ValueError("out of memory"))
