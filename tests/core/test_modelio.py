"""Model files: what is saved is what is loaded, nothing a user hands us is unpickled,
and a broken or mismatched file is refused with a message naming it."""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from app.core import fileio, modelio
from app.core.images import ImageLoadError
from app.core.modelio import (
    ModelFileError,
    card_path,
    load_model,
    read_card,
    save_model,
)
from app.core.models import InputSpec
from app.core.predictor import Prediction, Predictor
from app.core.preprocess import prepare
from tests.helpers.digits import draw_digit
from tests.helpers.models import random_model, write_model


@pytest.fixture
def model_file(tmp_path):
    return write_model(tmp_path / "digits.safetensors")


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fails the test if anything tries to unpickle."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a user's file was unpickled")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)


def load_error(path) -> str:
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    return str(info.value)


DIGITS = [draw_digit(d, 120) for d in range(10)]


# --- round trip --------------------------------------------------------------------------------


def test_saved_model_loads_with_identical_weights_and_predictions(tmp_path, no_unpickling):
    original = random_model(seed=1)
    card = modelio.ModelCard(
        name="",
        arch="resnet-mnist-small",
        classes=list("0123456789"),
        input=original.spec,
        metrics={"test_accuracy": 0.5},
    )
    path = save_model(tmp_path / "m", original, card)
    assert path == tmp_path / "m.safetensors" and card_path(path).is_file()
    model, loaded = load_model(path)
    for k, v in original.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert loaded.arch == "resnet-mnist-small" and loaded.classes == list("0123456789")
    assert loaded.input == original.spec and loaded.metrics == {"test_accuracy": 0.5}
    assert loaded.name == "m" and loaded.parameters > 0 and loaded.created
    before = Predictor(original, card).predict_many(DIGITS)
    after = Predictor(model, loaded).predict_many(DIGITS)
    assert [p.label for p in before] == [p.label for p in after]
    np.testing.assert_allclose(
        [p.probabilities for p in before], [p.probabilities for p in after], atol=1e-6
    )


def test_a_different_model_gives_different_predictions(tmp_path):
    # Guards the round-trip test: random models really do disagree.
    a = Predictor.load(write_model(tmp_path / "a", seed=1)).predict_many(DIGITS)
    b = Predictor.load(write_model(tmp_path / "b", seed=2)).predict_many(DIGITS)
    assert [p.probabilities for p in a] != [p.probabilities for p in b]


def test_model_can_be_named_by_weights_card_or_stem(model_file):
    for name in (model_file, model_file.with_suffix(".json"), model_file.with_suffix("")):
        assert load_model(name)[1].arch == "resnet-mnist-small"


def test_saved_files_are_readable_by_others(model_file):
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    assert model_file.stat().st_mode & 0o644 == 0o644
    assert card_path(model_file).stat().st_mode & 0o644 == 0o644


def test_three_channel_model_round_trips(tmp_path):
    spec = InputSpec(3, 32, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3), "resize")
    path = write_model(tmp_path / "rgb", arch="resnet-mnist", classes=["cat", "dog"], spec=spec)
    model, card = load_model(path)
    assert card.input == spec and card.classes == ["cat", "dog"]
    pred = Predictor(model, card).predict(Image.radial_gradient("L").convert("RGB"))
    assert pred.label in ("cat", "dog") and pred.model_input.shape == (32, 32, 3)


# --- bad files ---------------------------------------------------------------------------------


def test_missing_weights_file(tmp_path):
    write_model(tmp_path / "m").unlink()
    assert "not found" in load_error(tmp_path / "m.safetensors")


def test_a_folder_named_like_the_weights(model_file):
    model_file.unlink()
    model_file.mkdir()
    assert "is a folder" in load_error(model_file)


def test_missing_card_says_both_files_are_needed(model_file):
    card_path(model_file).unlink()
    msg = load_error(model_file)
    assert "model card missing" in msg and "digits.json" in msg


@pytest.mark.parametrize(
    "card, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"classes": ["a", "b"], "input": {}}', "lacks the field 'arch'"),
        (
            '{"arch": "resnet-mnist-small", "classes": ["a"], "input": {"channels": 1, "size": 28, "mean": [0], "std": [1]}}',
            "at least 2 classes",
        ),
        (
            '{"arch": "alexnet", "classes": ["a", "b"], "input": {"channels": 1, "size": 28, "mean": [0], "std": [1]}}',
            "unknown architecture 'alexnet'",
        ),
        (
            '{"arch": "resnet-mnist-small", "classes": ["a", "b"], "input": {"channels": 5, "size": 28, "mean": [0], "std": [1]}}',
            "invalid model card",
        ),
    ],
    ids=["not-json", "list", "no-arch", "one-class", "unknown-arch", "bad-input"],
)
def test_broken_cards_are_refused(model_file, card, message):
    card_path(model_file).write_text(card)
    msg = load_error(model_file)
    assert message in msg and "digits.json" in msg


def test_card_with_the_wrong_architecture(model_file):
    card = json.loads(card_path(model_file).read_text())
    card["arch"] = "resnet-mnist"  # the weights are resnet-mnist-small
    card_path(model_file).write_text(json.dumps(card))
    msg = load_error(model_file)
    assert "do not match the card" in msg and "resnet-mnist" in msg and str(model_file) in msg


def test_card_with_the_wrong_class_count(model_file):
    card = json.loads(card_path(model_file).read_text())
    card["classes"] = ["a", "b", "c"]
    card_path(model_file).write_text(json.dumps(card))
    msg = load_error(model_file)
    assert "do not match the card" in msg and "3 classes" in msg and "shape mismatch" in msg


def edited_card(model_file, edit) -> str:
    """Applies edit(card dict) to the model's card, writes it back, returns load's error."""
    card = json.loads(card_path(model_file).read_text())
    edit(card)
    card_path(model_file).write_text(json.dumps(card))  # NaN and Infinity as Python writes them
    return load_error(model_file)


def set_field(path: str, value):
    def edit(card: dict) -> None:
        *parents, last = path.split(".")
        d = card
        for k in parents:
            d = d[k]
        d[last] = value

    return edit


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("train_samples", float("inf"), "train_samples must be a whole number, not inf"),
        ("train_samples", -5, "train_samples must be 0.."),
        ("train_samples", "many", "train_samples must be a whole number, not 'many'"),
        ("parameters", 1.5, "parameters must be a whole number"),
        ("metrics.test_accuracy", "99%", "metrics.test_accuracy must be a number in 0..1, not '99%'"),
        ("metrics.test_accuracy", 99, "metrics.test_accuracy must be a number in 0..1, not 99"),
        ("metrics.val_accuracy", float("nan"), "metrics.val_accuracy must be a number in 0..1, not nan"),
        ("metrics.test_loss", "low", "metrics.test_loss must be a number"),
        ("metrics.test_split", 3, "metrics.test_split must be a string"),
        ("metrics.test_per_class", [0.5, "x"], "metrics.test_per_class must be a list of numbers"),
        ("metrics", [0.99], "metrics must be an object, not [0.99]"),
        ("recipe", "fast", "recipe must be an object"),
        ("recipe.hflip", "false", "recipe.hflip must be true or false, not 'false'"),
        ("input.std", [float("nan")], "input.std values must be numbers in 0.001..1000, not [nan]"),
        ("input.std", [0], "input.std values must be numbers in 0.001..1000, not [0]"),
        ("input.std", [-0.3], "input.std values must be numbers"),
        ("input.std", [1e-30], "input.std values must be numbers"),
        ("input.std", 0.3, "input.std must be a list of numbers, not 0.3"),
        ("input.mean", [float("inf")], "input.mean values must be numbers in 0..1, not [inf]"),
        ("input.mean", [0.1, 0.2], "one value per channel"),
        ("input.channels", True, "input.channels must be a whole number, not True"),
        ("input.channels", 1.0, "input.channels must be a whole number, not 1.0"),
        ("input.channels", 3000, "input.channels must be 1..3, not 3,000"),
        ("input.size", 10**9, "input.size must be 8..512, not 1,000,000,000"),
        ("input.size", "28", "input.size must be a whole number, not '28'"),
        ("input.mode", ["digit"], "input.mode must be a string"),
        ("input.mode", "zoom", "mode must be one of"),
        ("input", [1, 28], "input must be an object"),
        ("classes", "abcdefghij", "classes must be a list of names, not 'abcdefghij'"),
        ("classes", list(range(10)), "classes must be non-empty strings, not 0"),
        ("classes", ["0", "1", "2", "3", "4", "5", "6", "7", "8", "8"], "'8' appears twice"),
        ("classes", ["0", "1", "2", "3", "4", "5", "6", "7", "8", " "], "non-empty strings, not ' '"),
        ("classes", [str(i) for i in range(200_000)], "at most 100,000, found 200,000"),
        ("arch", 5, "arch must be a string, not 5"),
        ("name", {"a": 1}, "name must be a string"),
        ("format", 2, "format 2 is newer than this version of ResNet Studio reads"),
        ("temperature", 0, "temperature must be a number in 0.05..20, not 0"),
        ("temperature", "cool", "temperature must be a number in 0.05..20, not 'cool'"),
        ("temperature", float("nan"), "temperature must be a number in 0.05..20, not nan"),
        ("abstain", [1], "abstain must be an object or null, not [1]"),
        ("abstain", {"score": "mahalanobis", "threshold": 1.0}, "abstain.score must be one of msp, maxlogit, energy"),
        ("abstain", {"score": "energy", "threshold": "high"}, "abstain.threshold must be a number"),
        ("abstain", {"score": "energy", "threshold": float("inf")}, "abstain.threshold must be a number"),
        ("abstain", {"score": "energy", "threshold": -3.0, "unsure_ratio": 2}, "abstain.unsure_ratio must be a number in 0..1"),
    ],
)
def test_every_card_field_is_checked_for_type_and_range(model_file, field, value, message):
    msg = edited_card(model_file, set_field(field, value))
    assert "invalid model card" in msg and message in msg and "digits.json" in msg


def test_a_card_with_1e999_and_nan_written_by_hand_is_refused(model_file):
    text = card_path(model_file).read_text()
    card_path(model_file).write_text(text.replace('"train_samples": 0', '"train_samples": 1e999'))
    assert "train_samples must be a whole number, not inf" in load_error(model_file)
    card_path(model_file).write_text(text.replace('"std": [\n      0.3081', '"std": [\n      NaN'))
    assert "input.std values must be numbers" in load_error(model_file)


def test_a_card_from_before_calibration_loads_uncalibrated_and_a_calibrated_one_round_trips(model_file):
    card = json.loads(card_path(model_file).read_text())
    for key in ("temperature", "abstain"):
        card.pop(key, None)
    card_path(model_file).write_text(json.dumps(card))
    old = load_model(model_file)[1]
    assert old.temperature is None and old.abstain is None
    rule = {"format": 1, "score": "energy", "threshold": -2.5, "unsure_ratio": 0.5, "budget": 0.01,
            "flagged_val": 0.01, "n_val": 300, "temperature": 7.0}  # fmt: skip
    card.update(temperature=0.55, abstain=rule)
    card_path(model_file).write_text(json.dumps(card))
    new = load_model(model_file)[1]
    assert new.temperature == 0.55
    assert new.abstain["threshold"] == -2.5 and "temperature" not in new.abstain  # one T: the card's


def test_unknown_card_fields_and_metrics_are_kept_out_of_the_way(model_file):
    card = json.loads(card_path(model_file).read_text())
    card["future_field"] = {"x": [1, 2]}
    card["metrics"] = {"test_accuracy": None, "my_note": "anything", "f1": [0.1, "x"]}
    card_path(model_file).write_text(json.dumps(card))
    loaded = load_model(model_file)[1]
    assert loaded.metrics["my_note"] == "anything" and loaded.summary().startswith("digits (")


def read_card_within(path, seconds: float = 20) -> str:
    """read_card's error, in a thread, so a read that blocks fails instead of hanging."""
    import threading

    out: list[str] = []

    def read() -> None:
        try:
            read_card(path)
        except ModelFileError as e:
            out.append(str(e))

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"reading {path} blocked"
    assert out, "no ModelFileError"
    return out[0]


def test_a_card_that_is_a_device_a_pipe_or_huge_is_refused_without_reading_it(model_file):
    cpath = card_path(model_file)
    cpath.unlink()
    # /dev/null, not /dev/zero: a regression must fail this test, not fill the memory.
    cpath.symlink_to("/dev/null")
    assert "cannot read model card: a device, not a model card" in read_card_within(model_file)
    cpath.unlink()
    if hasattr(os, "mkfifo"):
        os.mkfifo(cpath)  # nobody writes to it
        assert "not a regular file (a named pipe)" in read_card_within(model_file)
        cpath.unlink()
    with open(cpath, "wb") as f:  # sparse: 1 GB on paper, nothing on disk
        f.truncate(2**30)
    msg = read_card_within(model_file)
    assert "file too large (1,074 MB; the limit is 16 MB)" in msg and "digits.json" in msg


def test_weights_holding_nan_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    path = write_model(tmp_path / "m.safetensors")
    state = load_file(str(path))
    state["net.fc.weight"][0, 0] = float("nan")
    save_file(state, str(path))
    msg = load_error(path)
    assert "damaged weights: net.fc.weight holds NaN or infinite values" in msg


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_weights_file(model_file, keep, no_unpickling):
    data = model_file.read_bytes()
    model_file.write_bytes(data[: int(len(data) * keep)])
    assert "truncated" in load_error(model_file)


def test_tiny_and_garbage_weights_files(model_file, no_unpickling):
    model_file.write_bytes(b"\x01\x02")
    assert "not a safetensors file" in load_error(model_file)
    model_file.write_bytes(struct.pack("<Q", 5) + b"nope!")
    assert "header is not JSON" in load_error(model_file)


@pytest.mark.parametrize(
    "header",
    [
        b"[1, 2, 3]",
        b'{"x": 1}',
        b'{"x": {"dtype": "F32"}}',
        b'{"x": {"data_offsets": "ab"}}',
        b'"str"',
    ],
)
def test_weights_with_a_malformed_json_header(model_file, header, no_unpickling):
    model_file.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 64)
    assert str(model_file) in load_error(model_file)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_pytorch_pickle_renamed_safetensors_is_never_unpickled(
    model_file, zip_format, no_unpickling
):
    buf = io.BytesIO()
    torch.save(random_model().state_dict(), buf, _use_new_zipfile_serialization=zip_format)
    model_file.write_bytes(buf.getvalue())
    msg = load_error(model_file)
    assert "pickle" in msg and "never loaded" in msg


def test_a_plain_pickle_renamed_safetensors_is_never_unpickled(model_file, no_unpickling):
    model_file.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    assert str(model_file) in load_error(model_file)


def test_a_valid_file_whose_header_length_starts_with_the_pickle_byte_loads(model_file, no_unpickling):
    # Byte 0 of a safetensors file is the header length mod 256; 128 (0x80) is also the
    # first byte of every pickle. The format allows padding the JSON header with spaces.
    raw = model_file.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header, body = raw[8 : 8 + n].rstrip(b" "), raw[8 + n :]
    pad = (128 - len(header)) % 256
    header += b" " * pad
    assert len(header) % 256 == 128 and len(header) % 8 == 0
    model_file.write_bytes(struct.pack("<Q", len(header)) + header + body)
    assert model_file.read_bytes()[:1] == b"\x80"
    model, _ = load_model(model_file)
    expected = load_file_weights(raw)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())


def test_a_plain_pickle_is_named_as_a_pickle(model_file, no_unpickling):
    model_file.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    msg = load_error(model_file)
    assert "pickle" in msg and "never loaded" in msg


def load_file_weights(raw: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(raw)


def test_default_model_missing_names_where_it_was_looked_for(tmp_path, monkeypatch):
    from app.core import resources

    monkeypatch.setattr(resources, "weights_dir", lambda: tmp_path)
    with pytest.raises(ModelFileError, match="mnist-resnet.json"):
        Predictor.load()


# --- saving faults -----------------------------------------------------------------------------


def _fail_nth_fsync(monkeypatch, n: int, err: int):
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(err, os.strerror(err))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("failing_write", [1, 2], ids=["weights", "card"])
def test_disk_full_while_saving_keeps_the_previous_model(tmp_path, monkeypatch, failing_write):
    path = write_model(tmp_path / "m", seed=1)
    before = path.read_bytes(), card_path(path).read_bytes()
    _fail_nth_fsync(monkeypatch, failing_write, errno.ENOSPC)
    with pytest.raises(ModelFileError, match="No space left on device") as info:
        write_model(tmp_path / "m", seed=2)
    assert str(path) in str(info.value)
    assert (path.read_bytes(), card_path(path).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.json",
        "m.safetensors",
    ]  # no temp files left
    monkeypatch.undo()
    load_model(path)


def test_read_only_folder_is_reported_and_nothing_is_written(tmp_path, monkeypatch):
    path = write_model(tmp_path / "m", seed=1)
    before = path.read_bytes()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(fileio.tempfile, "mkstemp", read_only)
    with pytest.raises(ModelFileError, match="Read-only file system"):
        write_model(tmp_path / "m", seed=2)
    with pytest.raises(ModelFileError, match="cannot save model"):
        write_model(tmp_path / "new" / "m2", seed=2)
    assert path.read_bytes() == before


# --- inference ---------------------------------------------------------------------------------


def test_blank_image_gives_a_blank_prediction_with_a_message(model_file):
    pred = Predictor.load(model_file).predict(Image.new("L", (280, 280), 255))
    assert pred.blank and pred.label is None and pred.index is None
    assert pred.message.startswith("nothing to classify")
    assert pred.to_json() == {
        "label": None,
        "confidence": 0.0,
        "top_k": [],
        "message": pred.message,
    }


def test_prediction_reports_top_k_and_the_exact_model_input(model_file):
    predictor = Predictor.load(model_file)
    pred = predictor.predict(DIGITS[3], top_k=3)
    assert isinstance(pred, Prediction) and not pred.blank
    assert len(pred.top_k) == 3 and pred.top_k[0] == (pred.label, pred.confidence)
    assert [p for _, p in pred.top_k] == sorted((p for _, p in pred.top_k), reverse=True)
    assert sum(pred.probabilities) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(pred.model_input, prepare(DIGITS[3]).pixels)
    assert len(predictor.predict(DIGITS[3], top_k=50).top_k) == 10
    assert json.loads(json.dumps(pred.to_json()))["label"] == pred.label


def test_batch_and_single_predictions_agree(model_file):
    predictor = Predictor.load(model_file)
    many = predictor.predict_many(DIGITS + [Image.new("L", (9, 9), 0)])
    assert many[-1].blank
    for img, batched in zip(DIGITS, many):
        single = predictor.predict(img)
        assert single.label == batched.label
        assert single.confidence == pytest.approx(batched.confidence, abs=1e-5)


def test_predict_paths_reports_a_bad_file_and_goes_on(model_file, tmp_path):
    files = []
    for i, d in enumerate((1, 2, 3)):
        files.append(tmp_path / f"{i}.png")
        DIGITS[d].save(files[-1])
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    order = [files[0], bad, files[1], tmp_path / "missing.png", files[2]]
    results = list(Predictor.load(model_file).predict_paths(order, batch_size=2))
    assert [p for p, _ in results] == order
    kinds = [type(r).__name__ for _, r in results]
    assert kinds == ["Prediction", "ImageLoadError", "Prediction", "ImageLoadError", "Prediction"]
    assert isinstance(results[1][1], ImageLoadError) and "text file" in results[1][1].problem


def test_read_card_alone_does_not_need_the_weights(model_file):
    model_file.unlink()
    assert read_card(model_file).arch == "resnet-mnist-small"


# --- anything at all -------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.one_of(
        st.binary(max_size=200), st.from_regex(rb'\{"[a-z]{1,3}": \{.{0,60}\}\}', fullmatch=True)
    ),
    tail=st.binary(max_size=300),
)
def test_any_weights_file_gives_a_model_or_a_model_file_error(tmp_path, header, tail):
    path = tmp_path / "m.safetensors"
    if not path.exists():
        write_model(path)
    path.write_bytes(struct.pack("<Q", len(header)) + header + tail)
    with pytest.raises(ModelFileError):
        load_model(path)


def test_app_predictions_match_the_plain_model_that_evaluation_and_export_run(model_file):
    # Inference may run an optimised copy (fused BN); it must agree with the model itself:
    # to float noise in fp32, and on every label (probabilities to bf16's ~3 digits) where
    # bf16 measured faster.
    predictor = Predictor.load(model_file, precision="fp32")
    preds = predictor.predict_many(DIGITS)
    x = torch.stack([torch.from_numpy(p.model_input) for p in preds])[:, None].float() / 255
    with torch.inference_mode():
        plain = torch.softmax(predictor.model(x).float(), 1).numpy()
    np.testing.assert_allclose([p.probabilities for p in preds], plain, atol=1e-5)
    bf16 = Predictor.load(model_file, precision="bf16").predict_many(DIGITS)
    assert [p.index for p in bf16] == [int(i) for i in plain.argmax(1)]
    np.testing.assert_allclose([p.probabilities for p in bf16], plain, atol=2e-2)


@pytest.mark.parametrize("arch", ["resnet-mnist", "resnet-mnist-small", "resnet18", "resnet50"])
def test_inference_copy_folds_every_batchnorm_and_gives_the_same_outputs(arch, monkeypatch):
    """The Predictor's fused copy must not use torch.fx tracing: tracing patches
    nn.Module.__call__ process-wide and broke a training step in another thread."""
    import torch
    import torch.fx

    from app.core.models import MNIST_SPEC, build_model
    from app.core.predictor import _fused_for_inference

    def no_tracing(*args, **kwargs):
        raise AssertionError("torch.fx tracing is not thread-safe; do not use it")

    monkeypatch.setattr(torch.fx.Tracer, "trace", no_tracing)
    torch.manual_seed(0)
    model = build_model(arch, 10, MNIST_SPEC).eval()
    for m in model.modules():  # non-trivial statistics, so a missed fold would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    fused = _fused_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(x), fused(x), atol=1e-4, rtol=1e-4)


def test_mirror_trained_models_average_each_image_with_its_mirror(tmp_path):
    """Flip TTA: a model trained with mirrored images (recipe hflip) is used on the image
    and its mirror, logits averaged; evaluation does the same; digit models never are."""
    from app.core.data import Dataset
    from app.core.evaluation import evaluate_model
    from app.core.models import FASHION_SPEC

    model = random_model(spec=FASHION_SPEC, seed=3)
    card = modelio.ModelCard(
        name="", arch="resnet-mnist-small", classes=list("abcdefghij"), input=FASHION_SPEC,
        recipe={"hflip": True, "augment": True},
    )  # fmt: skip
    tta = Predictor(model, card, precision="fp32")  # compared with fp32 logits below
    plain = Predictor(model, modelio.ModelCard(**{**card.__dict__, "recipe": {}}))
    assert tta.tta_flip and not plain.tta_flip
    no_aug = modelio.ModelCard(**{**card.__dict__, "recipe": {"hflip": True, "augment": False}})
    assert not Predictor(model, no_aug).tta_flip
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 3:12] = 255  # lopsided, so the mirror differs
    pred = tta.predict(img)
    x = torch.from_numpy(pred.model_input)[None, None].float() / 255
    with torch.inference_mode():
        both = (model(x).float() + model(x.flip(-1)).float()) / 2
    np.testing.assert_allclose(pred.probabilities, torch.softmax(both, 1)[0].numpy(), atol=1e-5)
    assert not torch.allclose(tta.logits(x), plain.logits(x))  # the mirror changed something
    data = Dataset(torch.from_numpy(np.stack([img, img[:, ::-1].copy()]))[:, None], torch.tensor([0, 1]),
                   list("abcdefghij"), FASHION_SPEC, "two")  # fmt: skip
    assert evaluate_model(tta, data).loss != evaluate_model(plain, data).loss
