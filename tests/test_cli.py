"""`python -m app classify|train|evaluate|export|info`: what a user types and sees.

Most tests call `main()` in-process (fast); those about the process itself (no
traceback, a kill mid-training) run `python -m app` in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from app.cli import main
from app.core.models import InputSpec
from app.core.resources import default_model_path
from tests.helpers.digits import MNIST_DIR, MNIST_MISSING, draw_digit
from tests.helpers.models import write_model

torch.set_num_threads(1)  # see tests/core/conftest.py
REPO = Path(__file__).resolve().parents[1]
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=MNIST_MISSING)
needs_shipped = pytest.mark.skipif(
    not default_model_path().is_file(),
    reason=f"shipped model not built yet ({default_model_path()}; make model)",
)


def run_app(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="default")
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def model_file(tmp_path):
    return write_model(tmp_path / "model" / "digits.safetensors")


def digit_folder(root: Path) -> dict[str, str]:
    """Digits as people hand them over: dark ink on white paper at 60..1200 px, off
    centre, transparent PNGs, a JPEG, in subfolders. Returns {relative path: digit}."""
    truth = {}
    sizes = [60, 90, 140, 200, 280, 400, 560, 800, 1000, 1200]
    for d in range(10):
        size = sizes[d]
        side = 0.5 * size
        box = (
            (d % 3) * 0.2 * size + 0.02 * size,
            ((d + 1) % 3) * 0.2 * size + 0.02 * size,
            side * 0.9,
            side,
        )
        plain = draw_digit(d, size, box=box, pen=max(2, side / 12))
        name = f"paper/{d}-{size}px.png"
        truth[name] = str(d)
        transparent = draw_digit(d, size, ink=(20, 20, 120, 255), paper=None, mode="RGBA")
        truth[f"alpha/{d}.png"] = str(d)
        (root / "paper").mkdir(parents=True, exist_ok=True)
        (root / "alpha").mkdir(parents=True, exist_ok=True)
        plain.save(root / name)
        transparent.save(root / f"alpha/{d}.png")
    draw_digit(4, 500).convert("RGB").save(root / "photo.jpg", quality=85)
    truth["photo.jpg"] = "4"
    return truth


# --- classify ----------------------------------------------------------------------------------


def test_classify_json_gives_one_object_per_file_and_fails_on_a_corrupt_one(
    model_file, tmp_path, capsys
):
    truth = digit_folder(tmp_path / "in")
    (tmp_path / "in" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    Image.new("L", (100, 100), 255).save(tmp_path / "in" / "blank.png")
    rc = main(["classify", "--json", "--model", str(model_file), str(tmp_path / "in")])
    out = json_lines(capsys.readouterr().out)
    assert rc == 1  # one file failed
    by_name = {Path(o["path"]).relative_to(tmp_path / "in").as_posix(): o for o in out}
    assert set(by_name) == set(truth) | {"corrupt.png", "blank.png"}
    assert set(by_name["corrupt.png"]) == {"path", "error"} and by_name["corrupt.png"]["error"]
    assert (
        by_name["blank.png"]["label"] is None
        and "nothing to classify" in by_name["blank.png"]["message"]
    )
    for name in truth:
        o = by_name[name]
        # Digit models read files through the photo front end: the JSON says where the
        # digit was found (x0, y0, x1, y1 in the file's pixels).
        assert {"path", "label", "confidence", "top_k", "region", "verdict", "calibrated"} <= set(o)
        assert set(o) <= {"path", "label", "confidence", "top_k", "region", "verdict", "calibrated", "verdict_message"}
        assert o["calibrated"] is False  # this card was never calibrated: raw softmax
        x0, y0, x1, y1 = o["region"]
        assert 0 <= x0 < x1 and 0 <= y0 < y1
        assert o["label"] in [str(i) for i in range(10)] and 0 < o["confidence"] <= 1
        assert len(o["top_k"]) == 3 and o["top_k"][0] == [o["label"], o["confidence"]]


def test_classify_text_output_and_exit_zero_when_all_files_are_fine(model_file, tmp_path, capsys):
    draw_digit(3, 200).save(tmp_path / "three.png")
    assert main(["classify", "--model", str(model_file), str(tmp_path / "three.png")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'three.png'}: ") and "%" in line and "then" in line


def _set_calibration(path: Path, temperature: float, **rule) -> None:
    card = json.loads(path.with_suffix(".json").read_text())
    card["temperature"] = temperature
    card["abstain"] = {"score": "energy", "threshold": 0.0, "unsure_ratio": 0.5, **rule}
    path.with_suffix(".json").write_text(json.dumps(card))


def test_classify_says_not_sure_and_does_not_look_like_in_words_and_json(model_file, tmp_path, capsys):
    draw_digit(3, 200).save(tmp_path / "three.png")
    _set_calibration(model_file, 0.5, unsure_ratio=0.0)  # every answer has a close runner-up
    assert main(["classify", "--model", str(model_file), str(tmp_path / "three.png")]) == 0
    line = capsys.readouterr().out.strip()
    assert ": not sure: " in line and "?" in line and "%" in line
    _set_calibration(model_file, 0.5, threshold=-1e30)  # nothing looks like these classes
    assert main(["classify", "--json", "--model", str(model_file), str(tmp_path / "three.png")]) == 0
    o = json_lines(capsys.readouterr().out)[0]
    assert o["verdict"] == "foreign" and o["calibrated"] is True
    assert o["verdict_message"] == "this does not look like a digit"
    assert main(["classify", "--model", str(model_file), str(tmp_path / "three.png")]) == 0
    assert "this does not look like a digit (closest: " in capsys.readouterr().out


def test_classify_an_empty_folder_or_a_bad_model_is_a_clear_error(model_file, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["classify", "--model", str(model_file), str(tmp_path / "empty")]) == 1
    assert "no image files found" in capsys.readouterr().err
    assert main(["classify", "--model", str(tmp_path / "none.safetensors"), str(tmp_path)]) == 1
    assert "model card missing" in capsys.readouterr().err


@needs_shipped
def test_shipped_model_reads_real_world_digit_files(tmp_path, capsys):
    truth = digit_folder(tmp_path / "in")
    (tmp_path / "in" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    rc = main(["classify", "--json", str(tmp_path / "in")])
    out = {
        Path(o["path"]).relative_to(tmp_path / "in").as_posix(): o
        for o in json_lines(capsys.readouterr().out)
    }
    assert rc == 1 and "error" in out["corrupt.jpg"]
    right = [name for name, digit in truth.items() if out[name].get("label") == digit]
    wrong = {name: out[name].get("label") for name in truth if name not in right}
    assert len(right) >= 0.9 * len(truth), f"misread: {wrong}"


RGB64 = InputSpec(3, 64, (0.5,) * 3, (0.25,) * 3, "resize")


def strict_json(text: str) -> list[dict]:
    """Parses JSON lines as a strict parser would: NaN and Infinity are not JSON."""

    def refuse(name):
        raise ValueError(f"{name} is not valid JSON")

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines() if line.strip()]


def test_classify_never_prints_nan_even_when_the_model_overflows(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    path = write_model(tmp_path / "m" / "loud.safetensors")
    state = load_file(str(path))
    state["net.fc.weight"].fill_(3e38)  # finite, but the logits overflow: inf - inf = NaN
    save_file(state, str(path))
    draw_digit(3, 100).save(tmp_path / "three.png")
    assert main(["classify", "--json", "--model", str(path), str(tmp_path / "three.png")]) == 1
    (line,) = strict_json(capsys.readouterr().out)
    assert set(line) == {"path", "error"} and "not a number" in line["error"]
    assert main(["classify", "--model", str(path), str(tmp_path / "three.png")]) == 1
    assert "error: the model's output is not a number" in capsys.readouterr().out


def test_classify_prints_file_names_that_are_not_utf8_on_a_strict_terminal(model_file, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    draw_digit(3, 100).save(os.fsdecode(os.fsencode(folder) + b"/caf\xe9-latin1.png"))
    draw_digit(5, 100).save(folder / "ziffer-fünf.png")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8:strict")
    proc = subprocess.run(
        [sys.executable, "-m", "app", "classify", "--model", str(model_file), str(folder)],
        cwd=REPO, env=env, capture_output=True, timeout=300,
    )  # fmt: skip
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert proc.returncode == 0
    lines = proc.stdout.decode("utf-8").splitlines()  # valid UTF-8, strictly
    assert len(lines) == 2
    assert lines[0].startswith(f"{folder}/caf\\xe9-latin1.png: ")
    assert lines[1].startswith(f"{folder}/ziffer-fünf.png: ")


def test_classify_reports_an_unreadable_subfolder_and_classifies_the_rest(
    model_file, tmp_path, capsys, monkeypatch
):
    for rel in ("a/1.png", "locked/2.png", "z/3.png"):
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        draw_digit(int(rel[-5]), 80).save(tmp_path / "in" / rel)
    locked = tmp_path / "in" / "locked"
    real_scandir = os.scandir

    def scandir(path="."):  # chmod 000 as a user sees it (tests run as root)
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert main(["classify", "--json", "--model", str(model_file), str(tmp_path / "in")]) == 1
    out = strict_json(capsys.readouterr().out)
    assert [Path(o["path"]).name for o in out] == ["1.png", "locked", "3.png"]
    assert "permission denied" in out[1]["error"] and "label" in out[0] and "label" in out[2]


def test_info_lists_a_model_with_a_broken_card_as_unusable_and_goes_on(tmp_path, capsys):
    from app.core.resources import user_models_dir

    path = write_model(user_models_dir() / "odd.safetensors")
    card = json.loads(path.with_suffix(".json").read_text())
    card["metrics"] = {"test_accuracy": "99%"}
    path.with_suffix(".json").write_text(json.dumps(card))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"{path}: unusable: " in out and "metrics.test_accuracy must be a number" in out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmHWM from Linux /proc")
def test_small_files_of_any_shape_stay_under_1_gb_in_classify_and_folder_loading(tmp_path):
    """The issue's strips (1x50000, 1x400000 px: 2.5 GB before, or a MemoryError) and a
    49 MP transparent PNG of 200 KB (3.2 GB before), in a resize-mode model's classify
    and in loading a training folder, both in one fresh process."""
    write_model(tmp_path / "rgb.safetensors", classes=["a", "b"], spec=RGB64)
    data = tmp_path / "data"
    for cls in ("a", "b"):
        (data / cls).mkdir(parents=True)
        draw_digit(3 if cls == "a" else 7, 120).convert("RGB").save(data / cls / "ok.png")
    for width in (50_000, 400_000):
        strip = Image.new("RGB", (width, 1), "black")
        strip.paste((255, 255, 255), (width // 2, 0, width, 1))
        strip.save(data / "a" / f"strip-{width}.png")
    big = Image.new("RGBA", (7000, 7000), (0, 0, 0, 0))
    ImageDraw.Draw(big).ellipse((2000, 2000, 5000, 5000), outline=(0, 0, 0, 255), width=200)
    big.save(data / "b" / "big.png")
    sizes = {p.name: p.stat().st_size for p in data.rglob("*.png")}
    assert max(sizes.values()) < 1_000_000, sizes
    script = (
        "import json, sys\n"
        "from app.cli import main\n"
        "from app.core.data import load_image_folder\n"
        "from app.core.models import InputSpec\n"
        f"rc = main(['classify', '--json', '--model', {str(tmp_path / 'rgb.safetensors')!r}, {str(data)!r}])\n"
        f"ds = load_image_folder({str(data)!r}, InputSpec(3, 64, (0.5,) * 3, (0.25,) * 3, 'resize'))\n"
        # VmHWM: this process's own peak. ru_maxrss would also count the parent's
        # memory at fork time (Linux keeps it across exec), i.e. pytest's.
        "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "print(json.dumps({'rc': rc, 'n': len(ds), 'skipped': ds.skipped,\n"
        "    'peak_kb': int(status)}), file=sys.stderr)\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    by_name = {Path(o["path"]).name: o for o in strict_json(proc.stdout)}
    assert report["rc"] == 1 and set(by_name) == set(sizes)
    for width in (50_000, 400_000):
        assert "extreme aspect ratio" in by_name[f"strip-{width}.png"]["error"]
    assert by_name["big.png"]["label"] in ("a", "b") and by_name["ok.png"]["label"] in ("a", "b")
    assert report["n"] == 3 and len(report["skipped"]) == 2
    peak_mb = report["peak_kb"] / 1024
    assert peak_mb < 1000, f"peak {peak_mb:.0f} MB"


# --- evaluate ----------------------------------------------------------------------------------


@needs_shipped
@needs_mnist
@pytest.mark.slow
def test_shipped_model_is_over_99_percent_on_the_mnist_test_split(capsys):
    assert main(["evaluate", "--json", "--data-dir", str(MNIST_DIR)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 10000
    assert result["accuracy"] >= 0.99
    assert min(result["per_class"].values()) >= 0.97


@needs_mnist
def test_evaluate_reports_calibration_and_draws_a_reliability_diagram(model_file, tmp_path, capsys):
    png = tmp_path / "out" / "reliability.png"
    png.parent.mkdir()
    argv = ["evaluate", "--model", str(model_file), "--data-dir", str(MNIST_DIR), "--split", "train", "--json"]
    assert main([*argv, "--reliability", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["ece"] <= 1 and result["nll"] > 0 and result["calibrated"] is False
    assert Image.open(png).size[0] >= 400
    (tmp_path / "a-file").write_text("not a folder")
    assert main([*argv, "--reliability", str(tmp_path / "a-file" / "r.png")]) == 1
    assert "cannot write the reliability diagram" in capsys.readouterr().err


@needs_mnist
def test_evaluate_a_model_with_other_classes_is_refused(tmp_path, capsys):
    path = write_model(tmp_path / "pets", classes=["cat", "dog"])
    assert main(["evaluate", "--model", str(path), "--data-dir", str(MNIST_DIR)]) == 1
    assert "differ from the model" in capsys.readouterr().err


# --- calibrate ---------------------------------------------------------------------------------


@needs_mnist
def test_calibrate_fits_on_the_models_own_validation_digits_and_rewrites_its_card(tmp_path, capsys):
    path = write_model(tmp_path / "digits.safetensors")
    card = json.loads(path.with_suffix(".json").read_text())
    card.update(dataset="mnist (somewhere else)", recipe={"limit": 200, "val_fraction": 0.1, "seed": 0})
    path.with_suffix(".json").write_text(json.dumps(card))
    assert main(["calibrate", "--model", str(path), "--data-dir", str(MNIST_DIR)]) == 0
    out = capsys.readouterr().out
    assert "fitted on 20 validation images" in out and "card rewritten" in out
    saved = json.loads(path.with_suffix(".json").read_text())
    assert 0.05 <= saved["temperature"] <= 20 and saved["abstain"]["score"] == "energy"
    assert "test_ece" not in saved["metrics"]  # the test split is only read with --eval-test


def test_calibrate_a_model_whose_training_data_is_unknown_says_what_to_pass(model_file, capsys):
    assert main(["calibrate", "--model", str(model_file)]) == 1
    assert "pass --dataset" in capsys.readouterr().err


# --- explain -----------------------------------------------------------------------------------


def test_explain_writes_one_picture_per_image_and_reports_bad_files(model_file, tmp_path, capsys):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    draw_digit(3, 200).save(tmp_path / "in" / "three.png")
    draw_digit(5, (600, 300)).save(tmp_path / "in" / "sub" / "three.png")  # same name, other folder
    (tmp_path / "in" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    Image.new("L", (100, 100), 255).save(tmp_path / "in" / "blank.png")
    rc = main(["explain", "--model", str(model_file), "--out", str(tmp_path / "out"), str(tmp_path / "in")])
    out = capsys.readouterr().out
    assert rc == 1  # one file could not be read
    lines = {Path(line.split(": ")[0]).name: line for line in out.splitlines()}
    assert "error:" in lines["corrupt.png"] and "nothing to classify" in lines["blank.png"]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["three-gradcam-2.png", "three-gradcam.png"]  # nothing overwritten
    for name in written:
        assert f"-> {tmp_path / 'out' / name}" in out
        with Image.open(tmp_path / "out" / name) as im:
            assert im.format == "PNG" and im.width > 2 * 280  # model input + original image


def test_explain_rejects_an_unknown_class_and_an_unusable_output_folder(model_file, tmp_path, capsys):
    draw_digit(3, 200).save(tmp_path / "three.png")
    rc = main(["explain", "--model", str(model_file), "--out", str(tmp_path / "o"), "--class", "cat", str(tmp_path / "three.png")])
    assert rc == 2 and "'cat' is not one of the model's: 0, 1, 2" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    rc = main(["explain", "--model", str(model_file), "--out", str(tmp_path / "file"), str(tmp_path / "three.png")])
    assert rc == 1 and "cannot write to the output folder" in capsys.readouterr().err


@needs_shipped
def test_explain_why_not_another_class_with_integrated_gradients(tmp_path, capsys):
    draw_digit(4, 300).save(tmp_path / "four.png")
    rc = main(["explain", "--method", "ig", "--class", "9", "--out", str(tmp_path / "o"), str(tmp_path / "four.png")])
    assert rc == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'four.png'}: 4 ({_confidence(tmp_path / 'four.png')}) -> {tmp_path / 'o' / 'four-ig.png'}"
    assert (tmp_path / "o" / "four-ig.png").stat().st_size > 1000


def _confidence(path: Path) -> str:
    from app.core.predictor import Predictor

    p = Predictor.load().predict(Image.open(path))
    return f"{p.confidence:.1%}"


# --- train and export --------------------------------------------------------------------------


@needs_mnist
@pytest.mark.slow
def test_train_on_a_tiny_subset_writes_a_usable_model(tmp_path, capsys):
    out = tmp_path / "tiny.safetensors"
    rc = main([
        "train", "--data-dir", str(MNIST_DIR), "--arch", "resnet-mnist-small", "--limit", "256",
        "--epochs", "2", "--batch-size", "64", "--threads", "1", "--out", str(out), "--json",
    ])  # fmt: skip
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 0, err
    assert "completed: 2 epochs" in err and f"model saved: {out}" in err
    # --json: the same run as events on stdout, one object a line, the human lines apart
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [e["event"] for e in events] == ["epoch", "epoch", "finished"]
    assert [e["epoch"] for e in events[:2]] == [1, 2] and events[0]["epochs"] == 2
    assert 0.0 <= events[1]["train_acc"] <= 1.0 and events[1]["val_acc"] is not None
    done = events[-1]
    assert done["status"] == "completed" and done["model"] == str(out) and done["epochs_done"] == 2
    assert done["best_epoch"] in (1, 2) and done["temperature"] > 0
    assert re.search(r"precision (fp32|bf16): .*(here \((measured|measured before)\)|no native 16-bit)", err)
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["arch"] == "resnet-mnist-small" and card["train_samples"] == 230
    assert "--limit 256" in card["command"]
    assert main(["classify", "--model", str(out), "--json", str(REPO / "resources")]) in (0, 1)


@needs_mnist
@pytest.mark.slow
def test_train_with_a_named_recipe_records_it_and_the_model_uses_flip_tta(tmp_path, capsys):
    out = tmp_path / "objects.safetensors"
    rc = main([
        "train", "--data-dir", str(MNIST_DIR), "--recipe", "objects", "--limit", "256",
        "--epochs", "1", "--threads", "1", "--out", str(out),
    ])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["arch"] == "resnet-mnist-small"  # the recipe's architecture
    assert card["recipe"]["hflip"] and card["recipe"]["elastic"] == 0
    assert card["recipe"]["batch_size"] == 128 and card["recipe"]["epochs"] == 1
    from app.core.predictor import Predictor

    assert Predictor.load(out).tta_flip


def test_train_json_reports_a_refused_run_as_an_error_event(tmp_path, capsys):
    rc = main(["train", "--dataset", str(tmp_path / "nowhere"), "--init", str(tmp_path / "m.safetensors"), "--json"])
    captured = capsys.readouterr()
    assert rc == 1
    (event,) = [json.loads(line) for line in captured.out.splitlines()]
    assert event["event"] == "error" and "nowhere" in event["error"]
    assert f"error: {event['error']}" in captured.err


def test_train_start_from_a_model_that_does_not_fit_is_refused_with_the_fix(tmp_path, capsys):
    folder = tmp_path / "shapes"
    for name in ("circle", "square"):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            im = Image.new("L", (28, 28), 0)
            box = (4 + i, 4, 22, 22 - i)
            (ImageDraw.Draw(im).ellipse if name == "circle" else ImageDraw.Draw(im).rectangle)(box, outline=255, width=2)
            im.save(folder / name / f"{i}.png")
    base = write_model(tmp_path / "digits.safetensors")  # ten digit classes
    rc = main(["train", "--dataset", str(folder), "--size", "28", "--channels", "1",
               "--arch", "resnet-mnist-small", "--start-from", str(base), "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 1 and "start from digits.safetensors: it knows the classes" in captured.err
    assert json.loads(captured.out.splitlines()[-1])["event"] == "error"
    assert main(["train", "--dataset", str(folder), "--start-from", str(base), "--init", str(base)]) == 1
    assert "choose one" in capsys.readouterr().err


def test_export_torchscript_from_the_command_line(model_file, tmp_path, capsys):
    out = tmp_path / "digits.pt"
    assert (
        main(["export", "--model", str(model_file), "--format", "torchscript", "--out", str(out)])
        == 0
    )
    assert f"exported {out}" in capsys.readouterr().out and out.is_file()


def test_export_onnx_works_or_says_what_is_missing(model_file, tmp_path, capsys):
    import importlib.util

    rc = main(
        [
            "export",
            "--model",
            str(model_file),
            "--format",
            "onnx",
            "--out",
            str(tmp_path / "m.onnx"),
        ]
    )
    if importlib.util.find_spec("onnx") is None:
        assert rc == 1 and "pip install onnx" in capsys.readouterr().err
    else:
        assert rc == 0 and (tmp_path / "m.onnx").is_file()


# --- info and bad arguments --------------------------------------------------------------------


def test_info_lists_versions_devices_and_models(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ResNet Studio ")
    assert f"torch {torch.__version__}" in out
    assert "devices:" in out and "cpu" in out
    assert str(default_model_path()) in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], "epochs must be 1..1000"),
        (["train", "--lr", "100"], "learning rate"),
        (["train", "--arch", "vgg"], "unknown architecture"),
        (["train", "--device", "tpu"], "unknown device"),
        (["train", "--threads", "-1"], "threads must be 0 (torch's default) to 1024, not -1"),
        (
            ["train", "--seed", "1180591620717411303424"],
            "seed must be a whole number from 0 to 4294967295, not 1180591620717411303424",
        ),
        (["train", "--seed", "-3"], "seed must be a whole number"),
        (["train", "--dataset", "/no/such/folder"], "folder not found"),
        (["evaluate", "--model", "/no/such/model.safetensors"], "model card missing"),
        (
            [
                "export",
                "--model",
                "/no/such/model",
                "--format",
                "torchscript",
                "--out",
                "/tmp/x.pt",
            ],
            "model card missing",
        ),
    ],
)
def test_bad_settings_give_one_error_line_and_exit_1(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


@pytest.mark.parametrize(
    "argv",
    [
        ["classify"],
        ["train", "--epochs", "many"],
        ["export", "--format", "tflite", "--out", "x"],
        ["train", "--recipe", "cats"],
        ["frobnicate"],
    ],
)
def test_malformed_command_lines_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.slow
def test_errors_reach_the_user_without_a_traceback(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    for args, code in (
        (["train", "--batch-size", "0"], 1),
        (["classify", "--model", str(tmp_path / "m.safetensors"), str(tmp_path)], 1),
        (["train", "--epochs", "x"], 2),
    ):
        proc = run_app(*args)
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr and "error" in proc.stderr


# --- a kill mid-training -----------------------------------------------------------------------


@needs_mnist
@pytest.mark.slow
def test_sigkill_mid_training_then_resume_gives_the_uninterrupted_model(tmp_path):
    args = [
        "train", "--data-dir", str(MNIST_DIR), "--arch", "resnet-mnist-small", "--limit", "512",
        "--epochs", "4", "--batch-size", "32", "--seed", "3", "--threads", "1",
    ]  # fmt: skip
    straight = run_app(*args, "--out", str(tmp_path / "straight.safetensors"))
    assert straight.returncode == 0, straight.stderr

    out, ckpt = tmp_path / "killed.safetensors", tmp_path / "killed.ckpt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", *args, "--out", str(out)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # polling for a file, not timing anything
        assert ckpt.exists(), "no checkpoint after the first epoch"
        proc.send_signal(signal.SIGKILL)  # first epoch saved, second under way
    finally:
        proc.kill()
        stderr = proc.communicate()[1]
    assert proc.returncode == -signal.SIGKILL, stderr
    assert not out.exists(), "the run finished before it could be killed"
    saved_epoch = torch.load(ckpt, weights_only=True)["epoch"]
    assert 1 <= saved_epoch < 4

    resumed = run_app(*args, "--out", str(out), "--resume", str(ckpt))
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(str(tmp_path / "straight.safetensors")), load_file(str(out))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=0, msg=k)
