"""Temperature scaling, ECE, NLL, Brier score and the reliability diagram."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.core import calibration as cal


def _sampled(n: int, temperature: float, seed: int = 0, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits / temperature): softmax(logits / T) is
    then perfectly calibrated, by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, k))
    p = cal.softmax(logits, temperature)
    labels = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    return logits, np.minimum(labels, k - 1)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_recovers_a_known_temperature(true_t):
    logits, labels = _sampled(20_000, true_t)
    fit = cal.fit_temperature(logits, labels)
    assert fit.temperature == pytest.approx(true_t, rel=0.05)
    assert fit.nll_after <= fit.nll_before + 1e-12
    assert not fit.at_bound and not fit.smoothed


def test_fit_is_deterministic_and_accepts_tensors():
    logits, labels = _sampled(2_000, 0.7, seed=3)
    a = cal.fit_temperature(logits, labels)
    b = cal.fit_temperature(torch.from_numpy(logits).float(), torch.from_numpy(labels))
    assert a.temperature == cal.fit_temperature(logits, labels).temperature
    assert b.temperature == pytest.approx(a.temperature, rel=1e-5)


def test_ece_of_perfectly_calibrated_data_is_near_zero_and_of_overconfident_data_is_not():
    logits, labels = _sampled(50_000, 1.0, seed=1)
    assert cal.ece(cal.softmax(logits), labels) < 0.01
    # The same labels read with a temperature of 1/2: far too sure of itself.
    assert cal.ece(cal.softmax(logits, 0.5), labels) > 0.05


def test_temperature_fixes_an_under_confident_model_without_changing_its_answers():
    """A label-smoothed model's logits are too small: here truth follows logits / 0.5."""
    logits, labels = _sampled(20_000, 0.5, seed=2)
    before = cal.calibration_report(logits, labels)
    fit = cal.fit_temperature(logits[:5_000], labels[:5_000])  # held-out part
    after = cal.calibration_report(logits[5_000:], labels[5_000:], fit.temperature)
    assert before.ece > 0.1 and after.ece < 0.02
    assert after.mean_confidence > before.mean_confidence
    assert (cal.softmax(logits, fit.temperature).argmax(1) == logits.argmax(1)).all()


def test_nll_and_brier_of_known_cases():
    sure = np.array([[20.0, 0.0], [0.0, 20.0]])
    assert cal.nll(sure, [0, 1]) == pytest.approx(0.0, abs=1e-6)
    assert cal.brier(cal.softmax(sure), [0, 1]) == pytest.approx(0.0, abs=1e-9)
    flat = np.zeros((4, 4))
    assert cal.nll(flat, [0, 1, 2, 3]) == pytest.approx(np.log(4))
    assert cal.brier(cal.softmax(flat), [0, 1, 2, 3]) == pytest.approx(0.75)


def test_degenerate_inputs_give_a_sensible_temperature_not_an_error():
    assert cal.fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)).temperature == 1.0
    assert cal.fit_temperature(np.ones((5, 3)), [0, 1, 2, 0, 1]).temperature == 1.0
    # Right on every sample with a wide margin: no finite optimum; add-one smoothing
    # gives a finite, strong sharpening instead of running off to T -> 0.
    logits = np.eye(3)[[0, 1, 2, 0, 1, 2]] * 2.0
    fit = cal.fit_temperature(logits, [0, 1, 2, 0, 1, 2])
    assert fit.smoothed and cal.T_MIN <= fit.temperature < 1.0
    # Always wrong: the flattest allowed temperature.
    fit = cal.fit_temperature(logits, [1, 2, 0, 1, 2, 0])
    assert fit.temperature == pytest.approx(cal.T_MAX) and fit.at_bound


@pytest.mark.parametrize(
    "logits, labels",
    [(np.zeros((3, 2)), [0, 1]), (np.zeros(3), [0, 1, 0]), (np.zeros((2, 2)), [0, 2]),
     (np.array([[np.nan, 0.0]]), [0])],
)  # fmt: skip
def test_malformed_input_is_a_clear_error(logits, labels):
    with pytest.raises(ValueError):
        cal.fit_temperature(logits, labels)


def test_reliability_bins_split_confidence_into_equal_width_bins():
    probs = np.array([[0.95, 0.05], [0.55, 0.45], [0.52, 0.48], [1.0, 0.0]])
    b = cal.reliability_bins(probs, [0, 1, 0, 0], bins=10)
    assert b.count.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert b.accuracy[5] == pytest.approx(0.5) and b.accuracy[9] == 1.0
    assert b.ece == pytest.approx((2 * abs(0.5 - 0.535) + 2 * abs(1.0 - 0.975)) / 4)


def test_reliability_diagram_shows_the_gap_of_a_miscalibrated_model(tmp_path):
    logits, labels = _sampled(5_000, 1.0, seed=4)
    good = cal.calibration_report(logits, labels, 1.0)
    bad = cal.calibration_report(logits, labels, 0.4)
    path = cal.save_reliability_diagram(bad, tmp_path / "r.png", "test model")
    img = Image.open(path)
    assert img.format == "PNG" and img.width >= 400

    def pink(report) -> int:  # the shaded gap between confidence and accuracy
        a = np.asarray(cal.reliability_diagram(report).convert("RGB")).astype(int)
        return int(((abs(a[..., 0] - 0xF2) < 8) & (abs(a[..., 1] - 0xB8) < 8) & (abs(a[..., 2] - 0xB5) < 8)).sum())

    def blue(report) -> int:  # accuracy bars
        a = np.asarray(cal.reliability_diagram(report).convert("RGB")).astype(int)
        return int(((abs(a[..., 0] - 0x4A) < 8) & (abs(a[..., 1] - 0x7F) < 8) & (abs(a[..., 2] - 0xC1) < 8)).sum())

    assert pink(bad) > 3 * pink(good)
    assert blue(good) > 2000


def test_reliability_diagram_of_no_data_still_draws():
    report = cal.calibration_report(np.zeros((0, 3)), np.zeros(0, dtype=int))
    assert cal.reliability_diagram(report).size[0] > 0
