"""Exported models give the app's answers outside the app."""

from __future__ import annotations

import errno
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from app.core import export
from app.core.export import SAMPLES, ExportError, export_model
from app.core.modelio import ModelFileError, load_model
from app.core.preprocess import prepare
from tests.helpers.digits import draw_digit
from tests.helpers.models import write_model

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="the onnx and onnxruntime packages are not installed")


def leftovers(folder: Path) -> list[str]:
    """Every file in `folder` (temp files included: a failed export leaves none)."""
    return sorted(p.name for p in folder.iterdir() if p.is_file())


@pytest.fixture
def model_file(tmp_path):
    return write_model(tmp_path / "digits.safetensors")


def prepared_batch() -> torch.Tensor:
    px = [torch.from_numpy(prepare(draw_digit(d, 100)).pixels) for d in (0, 4, 7)]
    return torch.stack(px)[:, None].float() / 255


@pytest.mark.slow  # tracing and loading TorchScript take seconds on a busy CPU
def test_torchscript_export_gives_the_same_logits_and_carries_the_card(model_file, tmp_path):
    done = export_model(model_file, tmp_path / "export" / "digits.pt", "torchscript")
    out = done.path
    assert out.is_file() and done.parity.ok and done.parity.label_agreement == 1.0
    assert done.parity.max_abs_diff < 1e-4 and done.parity.n == SAMPLES
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
    assert meta["export"]["parity"]["label_agreement"] == 1.0
    assert leftovers(out.parent) == ["digits.pt", "digits.pt.json"]


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx and onnxruntime packages are not installed")
def test_onnx_export_runs_in_onnxruntime_like_the_app(model_file, tmp_path):
    import onnx
    import onnxruntime

    done = export_model(model_file, tmp_path / "out" / "digits.onnx", "onnx")
    onnx.checker.check_model(onnx.load(str(done.path)))
    assert done.parity.ok and done.parity.max_abs_diff < 1e-4
    session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    x = prepared_batch()
    got = session.run(["logits"], {"image": x.numpy()})[0]
    model, _ = load_model(model_file)
    with torch.inference_mode():
        torch.testing.assert_close(torch.from_numpy(got), model(x), atol=1e-4, rtol=1e-4)
    assert json.loads(Path(str(done.path) + ".json").read_text())["export"]["format"] == "onnx"
    assert leftovers(tmp_path / "out") == ["digits.onnx", "digits.onnx.json"]


@pytest.mark.parametrize("fmt", ["torchscript", pytest.param("onnx", marks=needs_onnx)])
def test_an_export_that_disagrees_is_refused_and_deleted(model_file, tmp_path, monkeypatch, fmt):
    runner = "_run_torchscript" if fmt == "torchscript" else "_run_onnx"
    real = getattr(export, runner)

    def off_by_a_bit(path, x):  # e.g. an operator the runtime computes differently
        out = torch.as_tensor(np.asarray(real(path, x)))
        out[:, 0] += 0.5
        return out

    monkeypatch.setattr(export, runner, off_by_a_bit)
    out = tmp_path / "out" / f"digits.{fmt}"
    out.parent.mkdir()
    out.write_bytes(b"the user's earlier export")
    with pytest.raises(ExportError, match=r"disagrees.*max \|logit difference\| 5\.00e-01.*not kept"):
        export_model(model_file, out, fmt)
    assert out.read_bytes() == b"the user's earlier export"  # untouched
    assert not Path(str(out) + ".json").exists() and leftovers(out.parent) == [out.name]


def test_a_full_disk_leaves_no_truncated_file_and_says_so(model_file, tmp_path, monkeypatch):
    def full(model, example, path):
        Path(path).write_bytes(b"half a mod")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "_write_torchscript", full)
    with pytest.raises(ExportError, match="No space left on device"):
        export_model(model_file, tmp_path / "out" / "digits.pt", "torchscript")
    assert leftovers(tmp_path / "out") == []


def test_parity_reports_the_largest_difference_and_label_agreement():
    ref = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    same = export.compare(ref, ref.numpy())
    assert same.ok and same.max_abs_diff == 0 and same.label_agreement == 1.0
    flipped = export.compare(ref, np.array([[2.0, 0.0], [1.2, 1.0], [3.0, 1.0]], np.float32))
    assert not flipped.ok and flipped.label_agreement == pytest.approx(2 / 3)
    assert "same label on 67% of 3 sample inputs" in str(flipped)
    assert not export.compare(ref, np.zeros((3, 3), np.float32)).ok  # wrong shape


@pytest.mark.skipif(HAS_ONNX, reason="the onnx packages are installed")
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
