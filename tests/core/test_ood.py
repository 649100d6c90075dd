"""The "not sure" / "does not look like" rule, its scores and the non-digit test set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.core import ood
from app.core.models import MNIST_SPEC, build_model
from tests.helpers.ood import FAMILIES, contact_sheet, missing_families, ood_images

CLASSES = ["cat", "dog", "bird"]


def _confident_logits(n: int, k: int, seed: int = 0, margin: float = 8.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, (n, k))
    z[np.arange(n), rng.integers(0, k, n)] += margin
    return z


@pytest.mark.parametrize("score", ["msp", "maxlogit", "energy"])
@pytest.mark.parametrize("n", [7, 100, 500, 2_000])
def test_threshold_flags_at_most_the_budget_of_held_out_images(score, n):
    val = _confident_logits(n, 10, seed=n)
    val[: n // 50] = np.random.default_rng(1).normal(0, 1, (n // 50, 10))  # a few hard ones
    rule = ood.fit_abstain_rule(val, score, temperature=0.5, budget=0.01)
    flagged = rule.flags(val)
    assert flagged.sum() <= int(0.01 * n)
    assert rule.flagged_val == pytest.approx(flagged.mean())


def test_confidence_bound_keeps_new_images_within_the_budget():
    """The threshold is read off 500 held-out scores; how often does it flag more than
    1% of all future images? With the plain 1% quantile about half the time; with the
    95% bound in at most ~5% of the fits."""
    from math import erfc, sqrt

    assert ood.allowed_flags(500, 0.01) == 5 and ood.allowed_flags(500, 0.01, 0.95) == 1
    assert ood.allowed_flags(100, 0.01, 0.95) == 0 and ood.allowed_flags(60_000, 0.01, 0.95) > 550
    rng = np.random.default_rng(5)
    over = {None: 0, 0.95: 0}
    fits = 400
    for _ in range(fits):
        val = rng.normal(0, 1, 500)
        for conf in over:
            thr = ood.threshold_for_budget(val, ood.allowed_flags(500, 0.01, conf))
            true_rate = 0.5 * erfc(thr / sqrt(2))  # P(N(0, 1) > thr)
            over[conf] += true_rate > 0.01
    assert over[0.95] / fits < 0.08
    assert over[None] / fits > 0.3


def test_budget_holds_with_tied_scores_and_with_unsure_images():
    val = np.tile([[5.0, 0.0, 0.0]], (300, 1))  # every score equal
    val[:2] = [[1.0, 1.0, 0.0]]  # two coin flips between class 0 and 1: unsure
    rule = ood.fit_abstain_rule(val, "maxlogit", budget=0.01)
    assert rule.flags(val).sum() <= 3
    assert ood.threshold_for_budget(np.ones(100), 1) >= 1.0  # ties are never split


def test_rule_separates_foreign_from_familiar_and_ambiguous():
    val = _confident_logits(1_000, 3, seed=1)
    rule = ood.fit_abstain_rule(val, "energy", temperature=1.0)
    verdicts = rule.judge(
        np.array([[9.0, 0.0, 0.0], [10.0, 10.0, 0.0], [0.1, 0.0, 0.05]]), CLASSES
    )
    assert [v.kind for v in verdicts] == ["ok", "unsure", "foreign"]
    assert verdicts[1].message in ("not sure: cat or dog?", "not sure: dog or cat?")
    assert verdicts[2].message == "this does not look like cat, dog or bird"
    assert all("digit" not in v.message for v in verdicts)
    assert verdicts[0].to_json()["kind"] == "ok"


def test_messages_name_the_classes_of_any_model():
    assert ood.describe_classes([str(i) for i in range(10)]) == "0\u20139"
    assert ood.describe_classes(["yes", "no"]) == "yes or no"
    many = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal"]
    assert ood.describe_classes(many) == "T-shirt/top, Trouser, Pullover, \u2026 (6 classes)"
    assert ood.kind_of([str(i) for i in range(10)]) == ood.kind_of(["3", "5", "8"]) == "a digit"
    assert ood.kind_of(list("ABC")) == "a letter"
    assert ood.kind_of(["cat", "dog"]) == "cat or dog" and ood.kind_of(["1", "2", "10"]) == "1, 2 or 10"


def test_a_weak_model_does_not_spend_the_whole_budget_on_unsure():
    rng = np.random.default_rng(2)
    val = rng.normal(0, 0.3, (400, 4))  # nearly flat: almost everything "unsure" at 0.5
    rule = ood.fit_abstain_rule(val, "msp", budget=0.01)
    assert rule.unsure_ratio > ood.UNSURE_RATIO
    assert rule.flags(val).sum() <= 4


def test_no_held_out_data_means_nothing_is_flagged_foreign():
    rule = ood.fit_abstain_rule(np.zeros((0, 3)), "msp")
    assert rule.threshold == float("inf")
    assert [v.kind for v in rule.judge(np.array([[0.0, 0.0, 0.0]]), CLASSES)] == ["unsure"]


def test_mahalanobis_needs_its_gaussian_and_finds_the_odd_one_out():
    rng = np.random.default_rng(3)
    means = rng.normal(0, 5, (3, 16))
    y = rng.integers(0, 3, 600)
    feats = means[y] + rng.normal(0, 1, (600, 16))
    g = ood.fit_feature_gaussian(feats, y, 3)
    assert g.nbytes == (3 + 16) * 16 * 4
    assert g.distances(means).max() < 1.0
    far = ood.outlier_scores("mahalanobis", np.zeros((1, 3)), features=means[:1] + 30, gaussian=g)
    assert far[0] > np.quantile(g.distances(feats), 0.999)
    with pytest.raises(ValueError):
        ood.outlier_scores("mahalanobis", np.zeros((1, 3)))
    with pytest.raises(ValueError):
        ood.AbstainRule.from_dict({"score": "mahalanobis", "threshold": 1.0})


def test_gaussian_of_fewer_samples_than_features_is_still_usable():
    rng = np.random.default_rng(4)
    feats, y = rng.normal(0, 1, (12, 64)), np.arange(12) % 3
    g = ood.fit_feature_gaussian(feats, y, 3)
    assert np.isfinite(g.distances(feats)).all()
    with pytest.raises(ValueError):
        ood.fit_feature_gaussian(feats, np.zeros(12, dtype=int), 3)  # classes 1, 2 empty


def test_rule_round_trips_through_a_card_dict():
    rule = ood.fit_abstain_rule(_confident_logits(200, 3), "energy", temperature=0.6)
    again = ood.AbstainRule.from_dict(rule.to_dict())
    z = _confident_logits(50, 3, seed=9)
    assert again == rule
    assert (again.flags(z) == rule.flags(z)).all()
    with pytest.raises(ValueError):
        ood.AbstainRule.from_dict({"score": "vibes", "threshold": 0})


@pytest.mark.parametrize("arch", ["resnet-mnist-small", "resnet18"])
def test_features_come_from_any_app_resnet(arch):
    torch.manual_seed(0)
    model = build_model(arch, 4, MNIST_SPEC).eval()
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    z, f = ood.logits_and_features(model, x, batch_size=2)
    with torch.no_grad():
        ref = model(x.float() / 255)
    assert torch.allclose(z, ref, atol=1e-5)
    assert f.shape == (5, model.net.fc.in_features)
    assert torch.allclose(f @ model.net.fc.weight.T + model.net.fc.bias, z, atol=1e-4)
    zf, _ = ood.logits_and_features(model, x, tta_flip=True)
    with torch.no_grad():
        mirrored = (ref + model(x.flip(-1).float() / 255)) / 2
    assert torch.allclose(zf, mirrored, atol=1e-5)


# --- the non-digit test set --------------------------------------------------------------------


def test_non_digit_set_is_reproducible_and_prepared_like_user_images():
    a = ood_images(3, seed=7)
    b = ood_images(3, seed=7)
    present = [f for f in FAMILIES if f not in missing_families()]
    assert sorted({it.family for it in a}) == sorted(present)
    assert all((x.pixels == y.pixels).all() and x.name == y.name for x, y in zip(a, b))
    assert all(it.pixels.shape == (28, 28) and it.pixels.dtype == np.uint8 for it in a)
    assert any((x.pixels != y.pixels).any() for x, y in zip(a, ood_images(3, seed=8)))
    sheet = contact_sheet(a, columns=7, note=lambda it: it.name)
    assert sheet.width == 7 * (28 * 2 + 6)


def test_digit_lookalikes_are_marked_not_hidden():
    items = ood_images(60, seed=0, families=("font_letters", "shapes"))
    marked = {it.name: it.lookalike for it in items if it.lookalike}
    assert marked, "the set has look-alikes, and they are marked"
    assert all(v in "0123456789" for v in marked.values())
    assert not any(it.lookalike for it in items if it.name in ("A", "K", "x", "star", "arrow right"))
