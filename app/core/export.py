"""Exporting a model for use outside the app (ONNX, TorchScript). The exported model
takes float images in [0, 1] shaped (N, C, H, W) prepared by `app.core.preprocess.prepare`
(normalization is inside the model); the card is copied beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from app.core.modelio import load_model


class ExportError(Exception):
    pass


def export_model(model_path: str | os.PathLike, out: str | os.PathLike, fmt: str = "onnx") -> Path:
    model, card = load_model(model_path)
    model.eval()
    out = Path(out)
    example = torch.zeros(1, card.input.channels, card.input.size, card.input.size)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if fmt == "torchscript":
            traced = torch.jit.trace(model, example)
            traced.save(str(out))
        elif fmt == "onnx":
            torch.onnx.export(
                model, (example,), str(out), input_names=["image"], output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
            )  # fmt: skip
        else:
            raise ExportError(f"unknown export format {fmt!r}; use onnx or torchscript")
    except ExportError:
        raise
    except ImportError as e:
        raise ExportError(f"{fmt} export needs an extra package: {e}") from None
    except (OSError, RuntimeError) as e:
        raise ExportError(f"cannot export to {out}: {e}") from None
    card_out = out.with_suffix(out.suffix + ".json")
    meta = card.to_dict()
    meta["export"] = {"format": fmt, "input": "float32 (N, C, H, W) in [0, 1], prepared like MNIST"}
    card_out.write_text(json.dumps(meta, indent=2) + "\n")
    return out
