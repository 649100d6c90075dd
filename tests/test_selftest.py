"""`--self-test`: the check every bundle build runs, exercised from source."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app import selftest
from app.core.resources import bundle_root, default_model_path


@pytest.mark.slow
def test_self_test_passes_from_source():
    if not default_model_path().exists():
        pytest.skip(f"the shipped model is not trained yet ({default_model_path()})")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--self-test"],
        cwd=bundle_root(), env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("self-test passed"), proc.stdout
    assert "10/10 sample digits correct" in lines[-1]
    assert "main window" in lines[-1]
    assert "training step" in lines[-1]


def test_failed_check_gives_non_zero_exit_and_reason(monkeypatch, capsys):
    def broken() -> str:
        raise selftest.SelfTestError("the model file is truncated")

    monkeypatch.setattr(selftest, "CHECKS", [("ok", lambda: "fine"), ("model", broken)])
    assert selftest.run_self_test() == 1
    err = capsys.readouterr().err
    assert "self-test FAILED model: the model file is truncated" in err
    assert "1 of 2 checks failed" in err


def test_unexpected_exception_is_a_failure_not_a_crash(monkeypatch, capsys):
    def crash() -> str:
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(selftest, "CHECKS", [("torch", crash)])
    assert selftest.run_self_test() == 1
    assert "torch: RuntimeError: operator torchvision::nms does not exist" in capsys.readouterr().err


def test_all_passed_prints_one_summary_line(monkeypatch, capsys):
    monkeypatch.setattr(selftest, "CHECKS", [("a", lambda: "alpha"), ("b", lambda: "beta")])
    assert selftest.run_self_test() == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("self-test passed") and out[0].endswith("alpha; beta")
