"""Exporting a model for use outside the app (ONNX, TorchScript), checked before it is
kept. The exported model takes float images in [0, 1] shaped (N, C, H, W) prepared by
`app.core.preprocess.prepare` (normalization is inside the model); the card is copied
beside it.

The file is written to a temp file in the target folder, loaded back with the runtime a
user would use (onnxruntime, `torch.jit.load`) and run on sample inputs next to the torch
model: the largest logit difference and the label agreement are reported, and a file that
disagrees is deleted, never left behind. Only a checked file replaces the target, so a
full disk or a failed check leaves no truncated or wrong file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from app.core.fileio import atomic_write_bytes, staged_path
from app.core.modelio import load_model

FORMATS = ("onnx", "torchscript")
TOLERANCE = 1e-3  # largest |logit difference| allowed, relative to the logits' scale (>= 1)
SAMPLES = 16


class ExportError(Exception):
    pass


@dataclass(frozen=True)
class Parity:
    """How the exported file agrees with the torch model on `n` sample inputs."""

    max_abs_diff: float  # largest |logit difference|
    label_agreement: float  # share of samples with the same top class
    n: int
    tolerance: float  # the largest difference allowed for these logits

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.label_agreement == 1.0

    def __str__(self) -> str:
        return (
            f"max |logit difference| {self.max_abs_diff:.2e} (allowed {self.tolerance:.0e}), "
            f"same label on {self.label_agreement:.0%} of {self.n} sample inputs"
        )


@dataclass(frozen=True)
class Exported:
    """A written, checked export."""

    path: Path
    card: Path
    parity: Parity


def sample_inputs(channels: int, size: int, n: int = SAMPLES) -> torch.Tensor:
    """Seeded inputs that exercise the whole model: noise, blank, full and smooth blobs."""
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(n - 4, channels, size, size, generator=g)
    blobs = torch.nn.functional.avg_pool2d(torch.rand(2, channels, size, size, generator=g), 5, 1, 2)
    edges = torch.stack([torch.zeros(channels, size, size), torch.ones(channels, size, size)])
    return torch.cat([noise, blobs, edges])


def compare(reference: torch.Tensor, exported: np.ndarray | torch.Tensor) -> Parity:
    """Parity of exported logits with the torch model's `reference` logits."""
    ref = reference.detach().float().cpu()
    got = torch.as_tensor(np.asarray(exported), dtype=torch.float32)
    if got.shape != ref.shape:
        return Parity(float("inf"), 0.0, len(ref), 0.0)
    diff = float((got - ref).abs().max()) if got.numel() else 0.0
    agree = float((got.argmax(1) == ref.argmax(1)).float().mean()) if len(ref) else 1.0
    return Parity(diff, agree, len(ref), TOLERANCE * max(1.0, float(ref.abs().max())))


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        # torch >= 2.9 marks jit.trace deprecated; the file it writes still loads
        # everywhere, and the user cannot act on the warning.
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, example)
    traced.save(str(path))


def _run_torchscript(path: Path, x: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit.load is deprecated in torch >= 2.9
        scripted = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return scripted(x)


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        model, (example,), str(path), input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
    )  # fmt: skip


def _run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"image": x.numpy()})[0]


def _needs(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use onnx or torchscript")
    if fmt == "onnx":
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise ExportError(
                f"ONNX export needs {' and '.join(missing)} (pip install {' '.join(missing)}); "
                "--format torchscript works without them"
            )


def export_model(model_path: str | os.PathLike, out: str | os.PathLike, fmt: str = "onnx") -> Exported:
    """Writes the model at `model_path` as ONNX or TorchScript to `out`, with its card
    beside it (`OUT.json`), after checking the written file against the torch model.

    Raises:
        ModelFileError: the model cannot be loaded.
        ExportError: unknown format, a missing package, `out` cannot be written (full
            disk, no permission), or the exported file disagrees with the model (the
            message gives the numbers); `out` is then left as it was.
    """
    _needs(fmt)
    model, card = load_model(model_path)
    model.eval()
    out = Path(out)
    spec = card.input
    x = sample_inputs(spec.channels, spec.size)
    with torch.inference_mode():
        reference = model(x)
    card_out = out.with_suffix(out.suffix + ".json")
    try:
        with staged_path(out) as tmp:
            if fmt == "torchscript":
                _write_torchscript(model, x[:1], tmp)
                parity = compare(reference, _run_torchscript(tmp, x))
            else:
                _write_onnx(model, x[:1], tmp)
                parity = compare(reference, _run_onnx(tmp, x))
            if not parity.ok:
                raise ExportError(f"the exported {fmt} model disagrees with the app's model ({parity}); not kept")
            meta = card.to_dict()
            meta["export"] = {
                "format": fmt,
                "input": "float32 (N, C, H, W) in [0, 1], prepared like MNIST",
                "parity": {"max_abs_diff": parity.max_abs_diff, "label_agreement": parity.label_agreement,
                           "samples": parity.n},
            }  # fmt: skip
            atomic_write_bytes(card_out, (json.dumps(meta, indent=2) + "\n").encode())
    except ImportError as e:
        raise ExportError(f"{fmt} export needs an extra package: {e}") from None
    except (OSError, RuntimeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ExportError(f"cannot export to {out}: {reason}") from None
    return Exported(out, card_out, parity)
