"""prepare(): whatever the user hands us, the model gets a digit that looks like MNIST.

The measurements a person would check: the ink is light on black, its longest side is
20 px, its centre of mass sits at the centre, and the same digit drawn differently
(size, position, file mode, polarity) ends up as the same 28x28 picture.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.core.images import load_image
from app.core.models import FASHION_SPEC, InputSpec
from app.core.preprocess import DIGIT_BOX, prepare, prepare_file, stroke_width
from app.core.resources import default_model_path
from tests.helpers.digits import (
    MNIST_DIR,
    MNIST_MISSING,
    centre_of_mass,
    draw_digit,
    ink_bbox,
    save_with_exif_orientation,
    similarity,
)

SAME = 0.9  # similarity() of two renderings a person would call identical


def reference(digit: int | str):
    return prepare(draw_digit(digit, 280)).pixels


# --- the MNIST look ------------------------------------------------------------------------


@pytest.mark.parametrize("digit", range(10))
def test_dark_ink_on_white_paper_becomes_a_centred_mnist_digit(digit):
    p = prepare(draw_digit(digit, 300))
    assert not p.blank
    assert p.pixels.shape == (28, 28) and p.pixels.dtype == np.uint8
    # Inverted: black background, ink at full intensity.
    assert p.pixels[0].max() == 0 and p.pixels[:, 0].max() == 0
    assert p.pixels.max() == 255
    top, bottom, left, right = ink_bbox(p.pixels)
    assert max(bottom - top, right - left) in (DIGIT_BOX - 1, DIGIT_BOX, DIGIT_BOX + 1)
    cy, cx = centre_of_mass(p.pixels)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0


def test_light_ink_on_black_is_not_inverted():
    light = draw_digit(3, 300, ink=255, paper=0)
    assert similarity(prepare(light).pixels, reference(3)) > SAME


def test_aspect_ratio_is_kept():
    # A 0 squeezed to a third of its height in width must stay narrow.
    img = draw_digit(0, (400, 400), box=(150, 50, 100, 300), pen=12)
    p = prepare(img).pixels
    top, bottom, left, right = ink_bbox(p)
    assert bottom - top == pytest.approx(DIGIT_BOX, abs=1)
    src_top, src_bottom, src_left, src_right = ink_bbox(255 - np.asarray(img))
    src_ratio = (src_right - src_left) / (src_bottom - src_top)
    assert (right - left) / (bottom - top) == pytest.approx(src_ratio, abs=0.1)


def test_off_centre_digit_is_moved_to_the_centre():
    corner = draw_digit(5, (600, 500), box=(400, 10, 150, 150), pen=11)
    p = prepare(corner).pixels
    cy, cx = centre_of_mass(p)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0
    assert similarity(p, reference(5)) > SAME


@pytest.mark.parametrize("size", [28, 60, 1200])
def test_the_same_digit_at_any_canvas_size_gives_the_same_input(size):
    for digit in (2, 4, 7):
        p = prepare(draw_digit(digit, size))
        assert not p.blank, f"{digit} at {size} px"
        sim = similarity(p.pixels, reference(digit))
        assert sim > 0.7, f"{digit} at {size} px: similarity {sim:.2f}"


def test_a_tiny_10px_image_is_scaled_up_to_the_digit_box():
    p = prepare(draw_digit(4, 10, pen=2))
    assert not p.blank
    top, bottom, left, right = ink_bbox(p.pixels)
    assert max(bottom - top, right - left) == pytest.approx(DIGIT_BOX, abs=1)


def test_thin_pen_on_a_huge_photo_is_thickened_and_still_recognisable():
    huge = draw_digit(4, (4000, 3000), pen=6)  # 6 px pen on a ~2100 px digit
    p = prepare(huge).pixels
    # Shrunk naively, a 6 px stroke would be 0.06 px wide, a faint dust of grey.
    assert stroke_width(p > 127) >= 1.5
    assert p.max() == 255
    assert similarity(p, reference(4)) > 0.75


@pytest.mark.skipif(not default_model_path().is_file(), reason="shipped model not built yet (make model)")
def test_shipped_model_reads_thin_pen_digits_on_huge_photos():
    from app.core.predictor import Predictor

    predictor = Predictor.load()
    for digit in (2, 5, 8):
        pred = predictor.predict(draw_digit(digit, (4000, 3000), pen=6))
        assert pred.label == str(digit), f"{digit} read as {pred.label} ({pred.confidence:.0%})"


def test_strokes_running_off_the_edge_do_not_crash_and_stay_in_frame():
    img = draw_digit(7, (300, 300), box=(-80, -60, 300, 300), pen=25)
    p = prepare(img)
    assert not p.blank
    top, bottom, left, right = ink_bbox(p.pixels)
    assert max(bottom - top, right - left) == pytest.approx(DIGIT_BOX, abs=1)


def test_a_page_full_of_scribble_gives_some_input_without_crashing():
    rng = np.random.default_rng(0)
    img = Image.new("L", (400, 300), 255)
    draw = ImageDraw.Draw(img)
    for _ in range(300):
        draw.line(list(map(tuple, rng.uniform(0, 400, (2, 2)))), fill=0, width=9)
    p = prepare(img)
    assert p.pixels.shape == (28, 28) and p.pixels.dtype == np.uint8


# --- nothing to classify -----------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 0), np.uint8),
        np.zeros((5, 0), np.uint8),
        np.zeros((0, 7, 3), np.uint8),
        Image.new("L", (280, 280), 255),  # blank paper
        Image.new("L", (280, 280), 0),  # empty canvas
        Image.new("RGB", (64, 48), (120, 160, 90)),  # flat colour
        Image.new("RGBA", (50, 50), (0, 0, 0, 0)),  # fully transparent
        np.full((40, 40), 0.5, np.float32),
    ],
    ids=["0x0", "5x0", "0x7x3", "white", "black", "flat-colour", "transparent", "flat-float"],
)
def test_empty_and_flat_images_are_blank_with_a_reason(image):
    p = prepare(image)
    assert p.blank
    assert p.reason.startswith("nothing to classify")
    assert p.pixels.shape == (28, 28) and not p.pixels.any()


def test_faint_paper_texture_is_blank_not_a_digit():
    rng = np.random.default_rng(1)
    paper = (235 + rng.integers(-8, 8, (300, 300))).astype(np.uint8)
    assert prepare(paper).blank


@pytest.mark.parametrize("diameter", [1, 2, 6, 20])
def test_a_single_dot_is_not_blown_up_into_a_digit(diameter):
    img = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(img).ellipse((130, 130, 130 + diameter, 130 + diameter), fill=0)
    p = prepare(img)
    assert p.blank
    assert "speck" in p.reason or "dot" in p.reason


# --- file modes and formats --------------------------------------------------------------


def _via_file(img: Image.Image, tmp_path, name: str, **save_kw):
    path = tmp_path / name
    img.save(path, **save_kw)
    return prepare_file(path).pixels


@pytest.mark.parametrize(
    "ink", [(0, 0, 0, 255), (255, 255, 255, 255), (200, 30, 30, 255)], ids=["dark", "white", "red"]
)
def test_transparent_png_with_any_ink_colour_gives_the_digit(tmp_path, ink):
    img = draw_digit(6, 280, ink=ink, paper=None, mode="RGBA")
    assert similarity(_via_file(img, tmp_path, "t.png"), reference(6)) > SAME


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "CMYK", "1", "I", "F"])
def test_every_pil_mode_gives_the_same_digit(mode):
    img = draw_digit(2, 280).convert(mode)
    assert similarity(prepare(img).pixels, reference(2)) > SAME


@pytest.mark.parametrize(
    "mode, name, kw",
    [("LA", "la.png", {}), ("P", "p.png", {}), ("P", "p.gif", {}), ("CMYK", "c.tiff", {}),
     ("CMYK", "c.jpg", {"quality": 95}), ("RGB", "x.webp", {"lossless": True}), ("L", "x.bmp", {})],
)  # fmt: skip
def test_every_file_mode_gives_the_same_digit(tmp_path, mode, name, kw):
    img = draw_digit(2, 280).convert(mode)
    assert similarity(_via_file(img, tmp_path, name, **kw), reference(2)) > SAME


def test_16_bit_grayscale_png_gives_the_same_digit(tmp_path):
    a16 = np.asarray(draw_digit(9, 280), dtype=np.uint16) * 257
    Image.fromarray(a16).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png").mode.startswith("I")
    assert similarity(prepare_file(tmp_path / "deep.png").pixels, reference(9)) > SAME
    # A 16-bit array straight from a scanner library, too.
    assert similarity(prepare(a16).pixels, reference(9)) > SAME


def test_exif_rotated_phone_photo_is_turned_upright(tmp_path):
    upright = draw_digit(7, (300, 200), box=(100, 30, 140, 140)).convert("RGB")
    # The camera stored it lying on its side and tagged "rotate 90 clockwise to display".
    save_with_exif_orientation(upright.transpose(Image.Transpose.ROTATE_90), tmp_path / "p.jpg", 6)
    got = prepare_file(tmp_path / "p.jpg").pixels
    want = prepare(upright).pixels
    assert similarity(got, want) > SAME
    sideways = prepare(upright.transpose(Image.Transpose.ROTATE_90)).pixels
    assert similarity(got, sideways) < 0.7  # the tag made a difference


def test_animated_gif_uses_the_first_frame(tmp_path):
    frames = [draw_digit(1, 200).convert("P"), draw_digit(8, 200).convert("P")]
    frames[0].save(
        tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0
    )
    got = prepare_file(tmp_path / "a.gif").pixels
    assert similarity(got, reference(1)) > SAME
    assert similarity(got, reference(8)) < 0.7


@pytest.mark.parametrize(
    "array",
    [
        np.asarray(draw_digit(3, 100), dtype=np.float32) / 255.0,
        np.asarray(draw_digit(3, 100), dtype=np.float64) * 4.0,  # unnormalised floats
        np.asarray(draw_digit(3, 100)) < 128,  # a boolean mask of the ink
        np.asarray(draw_digit(3, 100).convert("RGB")),
        np.asarray(draw_digit(3, 100).convert("RGB"))[..., :1],
    ],
    ids=["float01", "float-big", "bool", "rgb-uint8", "hxwx1"],
)
def test_arrays_of_any_dtype_give_the_same_digit(array):
    assert similarity(prepare(array).pixels, reference(3)) > SAME


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_missing_values_in_a_float_array_are_background_not_ink(bad):
    a = np.asarray(draw_digit(3, 100), dtype=np.float32) / 255.0
    a[:5, :5] = bad
    assert similarity(prepare(a).pixels, reference(3)) > SAME
    assert prepare(np.full((9, 9), np.nan)).blank


# --- other specs ---------------------------------------------------------------------------


def test_three_channel_digit_models_get_three_equal_channels():
    spec = InputSpec(3, 28, (0.1,) * 3, (0.3,) * 3, "digit")
    p = prepare(draw_digit(3, 200), spec).pixels
    assert p.shape == (28, 28, 3)
    assert (p[..., 0] == p[..., 1]).all() and (p[..., 1] == p[..., 2]).all()
    assert prepare(Image.new("L", (20, 20), 255), spec).pixels.shape == (28, 28, 3)


def test_fit_mode_fills_the_frame_with_the_object():
    shoe = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(shoe).rectangle((60, 80, 240, 150), fill=30)
    p = prepare(shoe, FASHION_SPEC).pixels
    top, bottom, left, right = ink_bbox(p)
    assert right - left == 28  # the longer side touches both edges
    assert 8 <= bottom - top <= 14  # aspect kept (180 x 70)
    assert prepare(Image.new("L", (30, 30), 255), FASHION_SPEC).blank


def test_resize_mode_keeps_colour_and_crops_the_centre():
    spec = InputSpec(3, 64, (0.5,) * 3, (0.25,) * 3, "resize")
    photo = Image.new("RGB", (400, 200), (255, 0, 0))
    ImageDraw.Draw(photo).rectangle((150, 0, 250, 200), fill=(0, 0, 255))
    p = prepare(photo, spec).pixels
    assert p.shape == (64, 64, 3)
    assert tuple(p[32, 32]) == (0, 0, 255)  # the centre stays the centre
    assert p[32, 0, 0] > 200  # red sides survive the crop
    gray = prepare(photo, InputSpec(1, 32, (0.5,), (0.25,), "resize")).pixels
    assert gray.shape == (32, 32)
    assert prepare(Image.new("RGB", (80, 80), (9, 9, 9)), spec).blank


RGB64 = InputSpec(3, 64, (0.5,) * 3, (0.25,) * 3, "resize")


def numpy_peak_mb(fn) -> tuple[object, float]:
    """fn() and the peak of memory allocated meanwhile (numpy arrays included), in MB."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def test_resize_mode_sees_only_the_centre_square_whatever_the_shape():
    rng = np.random.default_rng(0)
    for h, w in [(40, 4000), (4000, 40), (300, 200), (57, 57)]:
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        alone = a[y0 : y0 + side, x0 : x0 + side]
        for image, square in ((a, alone), (Image.fromarray(a), Image.fromarray(alone))):
            assert np.array_equal(prepare(image, RGB64).pixels, prepare(square, RGB64).pixels)


def test_resize_mode_never_blows_a_thin_strip_up():
    # Shorter side to 64 px first would make this a 64 x 3,200,000 image (600 MB).
    strip = np.zeros((1, 50_000, 3), np.uint8)
    strip[:, 25_000:] = 255
    prepared, peak = numpy_peak_mb(lambda: prepare(strip, RGB64))
    assert peak < 20, f"{peak:.0f} MB for a 150 KB strip"
    assert prepared.blank and "flat colour" in prepared.reason  # its centre square is 1 px


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L", "P", "I;16", "F"])
def test_resize_mode_converts_large_images_a_band_at_a_time_with_the_same_result(
    mode, monkeypatch
):
    from app.core import resize_mode

    rng = np.random.default_rng(1)
    base = Image.new("RGBA", (1283, 1037), (250, 240, 230, 255))
    draw = ImageDraw.Draw(base)
    for _ in range(40):
        x, y = rng.integers(0, 1283), rng.integers(0, 1037)
        colour = tuple(int(c) for c in rng.integers(0, 256, 4))
        draw.ellipse((x, y, x + rng.integers(20, 400), y + rng.integers(20, 400)), fill=colour)
    image = (
        Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 16)  # 12-bit scan
        if mode == "I;16"
        else Image.fromarray(np.asarray(base.convert("L")).astype(np.float32) * 3.0, "F")
        if mode == "F"
        else base.convert(mode)
    )
    for spec in (RGB64, InputSpec(1, 32, (0.5,), (0.25,), "resize")):
        whole = prepare(image, spec).pixels
        monkeypatch.setattr(resize_mode, "BAND_PIXELS", 20_000)  # ~20 bands
        banded = prepare(image, spec).pixels
        monkeypatch.undo()
        assert np.abs(whole.astype(int) - banded.astype(int)).max() <= 1, (mode, spec)
        assert whole.std() > 10  # a picture, not a flat field


def test_resize_mode_never_holds_a_large_photo_as_float_whole():
    photo = Image.new("RGBA", (4000, 3000), (255, 255, 255, 0))
    ImageDraw.Draw(photo).ellipse((1000, 500, 3000, 2500), fill=(200, 30, 30, 255))
    prepared, peak = numpy_peak_mb(lambda: prepare(photo, RGB64))
    assert peak < 100, f"{peak:.0f} MB (float32 RGBA of the whole photo: 192 MB)"
    assert tuple(prepared.pixels[32, 32]) == (200, 30, 30)


# --- the "same preprocessing" guarantee ----------------------------------------------------


@pytest.fixture(scope="module")
def mnist_test_digits():
    if not MNIST_DIR.is_dir():
        pytest.skip(MNIST_MISSING)
    from app.core.data import read_idx_images

    return read_idx_images(MNIST_DIR / "t10k-images-idx3-ubyte.gz")[:1000]


def test_mnist_digits_pass_through_prepare_nearly_unchanged(mnist_test_digits):
    """The app prepares a drawn digit the way MNIST itself was prepared: feeding MNIST
    through prepare() must give back (almost) the same pictures."""
    diffs, sims = [], []
    for a in mnist_test_digits:
        p = prepare(a)
        assert not p.blank
        diffs.append(np.abs(p.pixels.astype(np.float64) - a).mean())
    assert np.mean(diffs) < 5.0  # of 255
    assert np.median(diffs) < 3.5
    for a in mnist_test_digits[:100]:
        sims.append(similarity(prepare(a).pixels, a, max_shift=0))
    assert np.median(sims) > 0.95


def test_mnist_digits_on_white_paper_give_the_same_pictures(mnist_test_digits):
    # The same digit as dark ink on white paper, scaled up 10x like a scan.
    sims = []
    for a in mnist_test_digits[:50]:
        paper = Image.fromarray(255 - a).resize((280, 280), Image.Resampling.BICUBIC)
        sims.append(similarity(prepare(paper).pixels, prepare(a).pixels))
    assert np.median(sims) > 0.95
    assert min(sims) > 0.65


def test_jpeg_compression_noise_does_not_change_the_digit():
    buf = io.BytesIO()
    draw_digit(5, 280).save(buf, "JPEG", quality=30)
    assert similarity(prepare(Image.open(buf)).pixels, reference(5)) > SAME


# --- anything at all -----------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shapes(channels):
    side = st.integers(0, 300)
    return st.tuples(side, side) if channels is None else st.tuples(side, side, st.just(channels))


@FAST
@given(
    data=st.data(),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.bool_]),
    channels=st.sampled_from([None, 1, 3, 4]),
)
def test_prepare_never_crashes_on_any_array(data, dtype, channels):
    shape = data.draw(_shapes(channels))
    if np.prod(shape) > 40_000:  # keep the examples small; size is covered above
        shape = (shape[0] % 200, shape[1] % 200) + shape[2:]
    a = data.draw(
        arrays(
            dtype,
            shape,
            elements=None
            if dtype != np.float64
            else st.one_of(st.floats(-1e3, 1e3), st.just(np.nan)),
        )
    )
    p = prepare(a)
    assert p.pixels.shape == (28, 28) and p.pixels.dtype == np.uint8
    assert p.blank == bool(p.reason)


@FAST
@given(
    mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "I;16", "F"]),
    w=st.integers(1, 300),
    h=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
    spec=st.sampled_from([None, FASHION_SPEC, InputSpec(3, 32, (0.5,) * 3, (0.2,) * 3, "resize")]),
)
def test_prepare_never_crashes_on_any_pil_image(mode, w, h, seed, spec):
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    p = prepare(img) if spec is None else prepare(img, spec)
    size = 28 if spec is None else spec.size
    assert p.pixels.shape[:2] == (size, size) and p.pixels.dtype == np.uint8


def test_a_12_bit_scan_in_a_16_bit_file_is_not_blank():
    """A 12-bit sensor stores 0..4095 in a 16-bit file: the ink must still be found."""
    import numpy as np
    from PIL import Image

    from app.core.preprocess import prepare

    a = np.full((200, 200), 4000, np.uint16)  # light paper, 12-bit scale
    a[40:160, 95:107] = 300  # a dark vertical stroke: a "1"
    img = Image.fromarray(a)
    assert img.mode.startswith("I;16")
    out = prepare(img)
    assert not out.blank
    assert out.pixels.max() == 255
