"""Letters and symbols from the Hershey fonts as outliers for a digit model."""

from __future__ import annotations

import numpy as np
import pytest

from app.core import glyph_outliers as go
from app.core import outliers
from app.core.models import MNIST_SPEC
from app.core.outliers import synthetic_outliers
from tests.helpers.data import drawn_digits
from tests.helpers.digits import centre_of_mass, ink_bbox
from tests.helpers.ood import LOOKALIKES as TEST_LOOKALIKES

DIGITS = [str(d) for d in range(10)]
pytestmark = pytest.mark.skipif(not go.available(), reason="Hershey-Fonts is not installed")


def test_no_digit_and_no_lookalike_is_ever_drawn():
    chars = {c for _, c, _ in go.glyphs()}
    assert len(go.glyphs()) > 500 and len(chars) > 100  # many glyphs in many styles
    assert not chars & set("0123456789")
    assert not chars & {k for k in TEST_LOOKALIKES if len(k) == 1}  # the test set's list, same shapes
    assert not chars & set("ΟοΙιΖΒ○◯.,:;'")
    assert {"A", "k", "#", "@", "λ", "Ω", "□"} <= chars


def test_letters_only_for_a_model_of_the_ten_digits():
    assert go.usable_for(DIGITS) and go.usable_for(list("9876543210"))
    assert not go.usable_for(None)
    assert not go.usable_for([*DIGITS, "+"])  # a personalised model: "+" may be a class
    assert not go.usable_for(list("ABCDEFGHIJ"))


def test_a_written_glyph_is_ink_on_black_and_varies_with_the_seed():
    strokes = next(s for _, c, s in go.glyphs() if c == "A")
    a = go.draw_glyph(strokes, np.random.default_rng(0), 96)
    assert a.shape == (96, 96) and a.dtype == np.uint8
    assert a.max() == 255 and 0.03 < (a > 127).mean() < 0.4
    assert (a == go.draw_glyph(strokes, np.random.default_rng(0), 96)).all()
    assert (a != go.draw_glyph(strokes, np.random.default_rng(1), 96)).any()


def test_digit_pools_hold_letters_prepared_like_user_input(monkeypatch):
    digits = drawn_digits(4, 0)
    x, y = digits.images.numpy(), digits.labels.numpy()
    monkeypatch.setattr(outliers, "MIX", {**dict.fromkeys(outliers.MIX, 0.0), "letters": 1.0})
    out = synthetic_outliers(20, MNIST_SPEC, np.random.default_rng(0), x, y, DIGITS)
    inked = [img[0] for img in out if img.max() > 0]
    assert len(inked) == 20
    for img in inked:  # the MNIST normalization, as for the other kinds
        top, bottom, left, right = ink_bbox(img)
        assert max(bottom - top, right - left) <= 22
        cy, cx = centre_of_mass(img)
        assert abs(cy - 14) < 3.5 and abs(cx - 14) < 3.5


@pytest.mark.parametrize("classes, drawn", [(DIGITS, True), ([*DIGITS, "+"], False), (None, False)])
def test_letters_are_drawn_for_digit_models_only(monkeypatch, classes, drawn):
    calls = []
    real = go.letter_outlier
    monkeypatch.setattr(go, "letter_outlier", lambda rng, size: calls.append(1) or real(rng, size))
    digits = drawn_digits(4, 0)
    synthetic_outliers(40, MNIST_SPEC, np.random.default_rng(0), digits.images.numpy(), digits.labels.numpy(), classes)
    assert (len(calls) > 4) == drawn and (len(calls) == 0) != drawn  # ~30% of the pool when drawn


def test_without_the_package_the_kind_is_left_out(monkeypatch):
    monkeypatch.setattr(go, "HersheyFonts", None)
    go.glyphs.cache_clear()
    try:
        assert go.glyphs() == () and not go.usable_for(DIGITS)
        digits = drawn_digits(4, 0)
        out = synthetic_outliers(10, MNIST_SPEC, np.random.default_rng(0), digits.images.numpy(), None, DIGITS)
        assert out.shape == (10, 1, 28, 28)
    finally:
        go.glyphs.cache_clear()
