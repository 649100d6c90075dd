"""A heat map drawn on the model input lands on the same strokes of the original image:
`PreparedImage.placement` maps every pipeline's crop/scale/paste back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.core.models import FASHION_SPEC, MNIST_SPEC, InputSpec
from app.core.overlay import explanation_sheet, input_overlay, overlay, source_overlay
from app.core.placement import Placement, warp_to_source
from app.core.preprocess import prepare
from tests.helpers.digits import draw_digit

PHOTO_SPEC = InputSpec(1, 64, (0.5,), (0.25,), "resize")


def _bbox(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)


@pytest.mark.parametrize("spec", [MNIST_SPEC, FASHION_SPEC, PHOTO_SPEC], ids=lambda s: s.mode)
@pytest.mark.parametrize(
    ("size", "box", "pen"),
    [
        ((280, 280), (40, 30, 150, 200), 18),  # the canvas
        ((1200, 900), (700, 100, 300, 420), 14),  # a digit off in a corner of a big scan
        ((300, 640), (20, 380, 200, 240), 12),  # a tall phone shot
    ],
)
def test_the_model_input_maps_back_onto_the_ink(spec, size, box, pen):
    img = draw_digit(2, size, box=box, pen=pen)
    prepared = prepare(img, spec)
    assert prepared.placement is not None and prepared.placement.source_size == size
    px = prepared.pixels.astype(np.float32) / 255
    if spec.mode == "resize":
        px = 1 - px  # photos keep dark ink on white
    back = warp_to_source(px, prepared.placement)
    ink = np.asarray(img.convert("L")) < 128
    x0, y0, x1, y1 = prepared.placement.source_box(spec.size)  # photos: the centre crop
    ys, xs = np.mgrid[: ink.shape[0], : ink.shape[1]]
    ink &= (xs + 0.5 > x0) & (xs + 0.5 < x1) & (ys + 0.5 > y0) & (ys + 0.5 < y1)
    err = np.abs(_bbox(back > 0.5 * back.max()) - _bbox(ink))
    scale = np.array(prepared.placement.scale * 2)  # source px -> model px
    # within 1.5 model pixels (digit mode thickens thin strokes by about a pixel)
    assert (err * scale).max() < 1.5, (err * scale, prepared.placement)


def test_placement_round_trips_and_composes():
    p = Placement.identity(200, 100).shifted(-50, -10).scaled(0.2, 0.25).shifted(3, 4)
    u, v = p.to_model(60, 30)
    assert (u, v) == pytest.approx(((60 - 50) * 0.2 + 3, (30 - 10) * 0.25 + 4))
    assert p.to_source(u, v) == pytest.approx((60, 30))
    x0, y0, x1, y1 = p.source_box(28)
    assert p.to_model(x0, y0) == pytest.approx((0, 0)) and p.to_model(x1, y1) == pytest.approx((28, 28))


def test_warping_a_downscaled_display_copy_keeps_the_spot():
    p = Placement.identity(1000, 500).shifted(-400, -100).scaled(28 / 200, 28 / 200)
    heat = np.zeros((28, 28), np.float32)
    heat[10:12, 20:22] = 1  # model px 20..22 -> source x 400 + 20 * 200/28 ~ 543..557
    full = warp_to_source(heat, p)
    small = warp_to_source(heat, p, (250, 125))
    fy, fx = np.unravel_index(full.argmax(), full.shape)
    sy, sx = np.unravel_index(small.argmax(), small.shape)
    assert abs(fx / 4 - sx) <= 1 and abs(fy / 4 - sy) <= 1
    assert full[:, :400].max() == 0 and full[:, 600:].max() == 0  # outside the crop: nothing


def test_blank_images_have_no_placement():
    assert prepare(np.full((40, 40), 255, np.uint8)).placement is None


def test_overlays_colour_the_hot_spot_and_leave_cold_pixels_gray():
    base = np.full((28, 28), 100, np.uint8)
    heat = np.zeros((28, 28), np.float32)
    heat[5, 7] = 2.0
    out = overlay(base, heat)
    assert out.shape == (28, 28, 3) and tuple(out[0, 0]) == (100, 100, 100)
    r, g, b = out[5, 7].astype(int)
    assert r > 200 and r > b + 100  # hot: red-yellow
    signed = overlay(base, -heat, signed=True)
    r, g, b = signed[5, 7].astype(int)
    assert b > r + 100  # evidence against: blue
    with pytest.raises(ValueError, match="differ in size"):
        overlay(base, np.zeros((10, 10)))
    assert input_overlay(base, heat).size == (280, 280)
    src = Image.new("RGB", (1200, 800), (255, 255, 255))
    p = Placement.identity(1200, 800).shifted(-100, -100).scaled(0.05, 0.05)
    shown = source_overlay(src, heat, p)
    assert shown.size == (560, 373)


def test_the_sheet_shows_input_and_original_side_by_side():
    from app.core.explain import Explanation

    img = draw_digit(7, 400)
    prepared = prepare(img)
    heat = prepared.pixels.astype(np.float32) / 255
    probs = np.full(10, 0.01, np.float32)
    probs[7] = 0.91
    e = Explanation("gradcam", 1, 7, probs, heat, heat, "net.layers.5", "logit of class 1")
    sheet = explanation_sheet(e, prepared.pixels, [str(i) for i in range(10)], img, prepared.placement)
    assert sheet.height > 280 and sheet.width > 2 * 280  # two panels
    alone = explanation_sheet(e, prepared.pixels, [str(i) for i in range(10)])
    assert alone.width < sheet.width
