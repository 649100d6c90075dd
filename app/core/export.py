"""Exporting a model for use outside the app (ONNX, TorchScript). The exported model
takes float images in [0, 1] shaped (N, C, H, W) prepared by `app.core.preprocess.prepare`
(normalization is inside the model); the card is copied beside it."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import warnings
from pathlib import Path

import torch

from app.core.fileio import atomic_write_files
from app.core.modelio import load_model


class ExportError(Exception):
    pass


def export_model(model_path: str | os.PathLike, out: str | os.PathLike, fmt: str = "onnx") -> Path:
    """Writes the model at `model_path` as ONNX or TorchScript to `out`, with its card
    beside it (`OUT.json`).

    Raises:
        ModelFileError: the model cannot be loaded.
        ExportError: unknown format, a missing package, or `out` cannot be written.
    """
    if fmt not in ("onnx", "torchscript"):
        raise ExportError(f"unknown export format {fmt!r}; use onnx or torchscript")
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise ExportError(
            "ONNX export needs the onnx package (pip install onnx); --format torchscript works without it"
        )
    model, card = load_model(model_path)
    model.eval()
    out = Path(out)
    example = torch.zeros(1, card.input.channels, card.input.size, card.input.size)
    buf = io.BytesIO()  # written in memory, then atomically: never a half-written file
    try:
        if fmt == "torchscript":
            with warnings.catch_warnings():
                # torch >= 2.9 marks jit.trace deprecated; the file it writes still loads
                # everywhere, and the user cannot act on the warning.
                warnings.simplefilter("ignore", FutureWarning)
                traced = torch.jit.trace(model, example)
            buf.write(traced.save_to_buffer())
        else:
            torch.onnx.export(
                model, (example,), buf, input_names=["image"], output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
            )  # fmt: skip
        card_out = out.with_suffix(out.suffix + ".json")
        meta = card.to_dict()
        meta["export"] = {"format": fmt, "input": "float32 (N, C, H, W) in [0, 1], prepared like MNIST"}
        atomic_write_files([(out, buf.getvalue()), (card_out, (json.dumps(meta, indent=2) + "\n").encode())])
    except ImportError as e:
        raise ExportError(f"{fmt} export needs an extra package: {e}") from None
    except (OSError, RuntimeError) as e:
        raise ExportError(f"cannot export to {out}: {e}") from None
    return out
