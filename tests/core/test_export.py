"""Exported models give the app's answers outside the app."""

from __future__ import annotations

import errno
import importlib.util
import json
import warnings
from pathlib import Path

import pytest
import torch

from app.core.export import ExportError, export_model
from app.core.modelio import ModelFileError, load_model
from app.core.preprocess import prepare
from tests.helpers.digits import draw_digit
from tests.helpers.models import write_model

HAS_ONNX = importlib.util.find_spec("onnx") is not None


@pytest.fixture
def model_file(tmp_path):
    return write_model(tmp_path / "digits.safetensors")


def prepared_batch() -> torch.Tensor:
    px = [torch.from_numpy(prepare(draw_digit(d, 100)).pixels) for d in (0, 4, 7)]
    return torch.stack(px)[:, None].float() / 255


@pytest.mark.slow  # tracing and loading TorchScript take seconds on a busy CPU
def test_torchscript_export_gives_the_same_logits_and_carries_the_card(model_file, tmp_path):
    out = export_model(model_file, tmp_path / "export" / "digits.pt", "torchscript")
    assert out.is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit.load is deprecated in torch >= 2.9
        scripted = torch.jit.load(str(out))
    model, card = load_model(model_file)
    x = prepared_batch()  # normalization is inside both models
    with torch.inference_mode():
        torch.testing.assert_close(scripted(x), model(x), atol=1e-5, rtol=1e-5)
    meta = json.loads(Path(str(out) + ".json").read_text())
    assert meta["classes"] == card.classes and meta["export"]["format"] == "torchscript"
    assert meta["input"]["mean"] == list(card.input.mean)


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx package is not installed")
def test_onnx_export_writes_a_model(model_file, tmp_path):
    out = export_model(model_file, tmp_path / "digits.onnx", "onnx")
    import onnx

    onnx.checker.check_model(onnx.load(str(out)))


@pytest.mark.skipif(HAS_ONNX, reason="the onnx package is installed")
def test_onnx_export_without_the_package_says_what_to_install(model_file, tmp_path):
    with pytest.raises(ExportError, match="pip install onnx"):
        export_model(model_file, tmp_path / "digits.onnx", "onnx")
    assert not (tmp_path / "digits.onnx").exists()


def test_unknown_format_and_broken_model_are_refused(model_file, tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_model(model_file, tmp_path / "x", "tflite")
    with pytest.raises(ModelFileError, match="model card missing"):
        export_model(tmp_path / "missing.safetensors", tmp_path / "x.pt", "torchscript")


def test_unwritable_destination_is_an_export_error(model_file, tmp_path, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(ExportError, match="Read-only file system"):
        export_model(model_file, tmp_path / "ro" / "digits.pt", "torchscript")
