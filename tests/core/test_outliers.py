"""Synthetic outliers for outlier exposure: shaped like the model's input, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.models import FASHION_SPEC, MNIST_SPEC, InputSpec
from app.core.outliers import synthetic_outliers
from tests.helpers.data import drawn_digits
from tests.helpers.digits import centre_of_mass, ink_bbox


def test_digit_outliers_look_like_prepared_user_input_and_are_reproducible():
    digits = drawn_digits(4, 0)
    x, y = digits.images.numpy(), digits.labels.numpy()
    a = synthetic_outliers(40, MNIST_SPEC, np.random.default_rng(0), x, y)
    b = synthetic_outliers(40, MNIST_SPEC, np.random.default_rng(0), x, y)
    assert a.shape == (40, 1, 28, 28) and a.dtype == np.uint8
    assert (a == b).all()
    assert (a != synthetic_outliers(40, MNIST_SPEC, np.random.default_rng(1), x, y)).any()
    inked = [img[0] for img in a if img.max() > 0]
    # all but a few that prepare() finds blank: tiles of a small digit shuffled, or a
    # blob, can leave only a dot (4-11% of 200 outliers for seeds 0-2)
    assert len(inked) >= 34
    for img in inked:  # the MNIST normalization: ink box <= 20 px, centred on its mass
        top, bottom, left, right = ink_bbox(img)
        assert max(bottom - top, right - left) <= 22
        cy, cx = centre_of_mass(img)
        assert abs(cy - 14) < 3.5 and abs(cx - 14) < 3.5


def test_outliers_are_not_copies_of_the_training_images():
    digits = drawn_digits(4, 0)
    x = digits.images.numpy()
    out = synthetic_outliers(30, MNIST_SPEC, np.random.default_rng(2), x, digits.labels.numpy())
    flat = x.reshape(len(x), -1).astype(float)
    for img in out.reshape(len(out), -1).astype(float):
        assert np.abs(flat - img).mean(1).min() > 1.0


@pytest.mark.parametrize(
    "spec", [FASHION_SPEC, InputSpec(3, 32, (0.5,) * 3, (0.25,) * 3, "resize")], ids=["fit", "rgb"]
)
def test_outliers_for_other_kinds_of_model(spec):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (10, spec.channels, spec.size, spec.size), dtype=np.uint8)
    out = synthetic_outliers(12, spec, rng, images, np.arange(10) % 3)
    assert out.shape == (12, spec.channels, spec.size, spec.size) and out.dtype == np.uint8
    assert out.std() > 10  # images, not blank frames
    # Without training images: only drawn outliers, still the right shape.
    assert synthetic_outliers(3, spec, rng).shape == (3, spec.channels, spec.size, spec.size)
