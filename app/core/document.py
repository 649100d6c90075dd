"""The document-image front end: finds the handwritten digit on a photo or a scan.

What people drop into a digit classifier is mostly a photo of a digit written on
something: notebook or squared paper, a page under a lamp, a whiteboard, a blackboard.
`find_digit` turns such an image into the digit's ink, ready for the MNIST normalization
in `app.core.preprocess`:

1. work on a copy at most DETECT_SIZE px long (a 12 MP photo is reduced in C, by Pillow);
2. flatten the illumination: the paper (or board) is estimated at a large scale with a
   grey morphological opening, which removes strokes but keeps shadows, vignetting and
   the table, and divided out, so ink becomes "how much darker than the paper here";
3. rulings: long thin straight structures (horizontal or vertical, a few degrees of tilt
   tolerated) are found by shape with a long line opening, and removed when they are
   light and coloured (blue lines, red margin) or light, neutral and repeated (a grid);
   ink crossing them survives, as only the line's own darkness is taken away;
4. large dark regions (the table beside the sheet) are dropped;
5. a local threshold of the Sauvola family, with a floor above the paper's noise, so faint
   pencil and thin fineliner survive and paper texture does not;
6. connected components of ink, grouped into digits (strokes close to each other), and
   the biggest digit-like group not cut by the frame is chosen.

The image library is scipy.ndimage (docs/performance.md: opencv-python-headless is faster
but adds 134 MB to the bundle, over its 100 MB budget; scikit-image adds 99 MB and runs
its filters through scipy.ndimage, slower than calling it directly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from app.core.images import reduced, to_array

DETECT_SIZE = 1024  # long side of the working copy, px: 12 MP -> ~0.75 MP, ~4x less work
SMALL_IMAGE = 64  # below this (px, shorter side) an image is a crop: no illumination model
BACKGROUND_SIZE = 192  # long side at which the paper is estimated (smooth: low res suffices)
BACKGROUND_WINDOW = 0.25  # opening size, as a share of the shorter side: wider than strokes
DARK_REGION = 0.3  # paper under this share of the brightest paper's light: a table, not a shadow
LINE_WINDOW = 1 / 10  # a ruling is straight over this share of the frame ...
LINE_SPAN = 0.4  # ... and spans at least this share of it
LINE_TILT_PX = 3  # rows (or columns) a ruling may drift over one line window
LINE_THICK = 0.025  # a ruling is thinner than this share of the frame (markers are not)
RULING_EXTRA = 1.6  # how much more than a ruling's measured darkness is taken away
RULING_COLOUR = 0.1  # chroma (max - min of RGB) of printed blue/red rulings ...
RULING_COLOURED_MAX = 0.6  # ... which are lighter than writing ink (darkness in 0..1)
RULING_NEUTRAL_MAX = 0.45  # grey rulings: lighter still, and two or more of them
SAUVOLA_K = 0.15  # Sauvola's k: the ink must be this much darker than the local mean
STRONG_INK = 0.3  # darker than this is ink wherever it is (after rulings are gone)
NOISE_SIGMAS = 4.0  # ... and this many noise sigmas above the paper
MIN_INK = 0.06  # ... and at least this dark (fraction of the paper's brightness)
GHOST = 0.4  # ink fainter than this share of the strongest stroke is a ghost or smudge
GROUP_GAP = 0.3  # strokes closer than this share of the digit's height are one digit
SAME_SIZE = 0.35  # another digit counts when at least this share of the chosen one's height
MAX_ASPECT = 3.0  # wider than this times the height: a dash, a line, not a digit
MARGIN = 0.12  # crop margin around the digit, share of its size


@dataclass(frozen=True)
class FoundDigit:
    """The outcome of `find_digit`.

    ink: float32 (h, w), ink bright (1) on black (0), cropped around the chosen digit with
        a margin; None when no handwriting was found.
    region: (x0, y0, x1, y1) of the digit in source-image pixels; None when not found.
    count: how many digit-sized pieces of writing the image holds (the biggest is chosen).
    frame: the long side of the working copy, in the pixels of `ink`.
    source_size: (width, height) of the image given.
    """

    ink: np.ndarray | None
    region: tuple[int, int, int, int] | None
    count: int
    frame: int = 0
    source_size: tuple[int, int] = (0, 0)


NOT_FOUND = FoundDigit(None, None, 0)


def working_copy(image: Image.Image | np.ndarray) -> tuple[np.ndarray, float]:
    """The image as float32 in [0, 1], (h, w) or (h, w, 3|4), at most DETECT_SIZE px long,
    and how many source pixels one of its pixels spans."""
    if isinstance(image, Image.Image):
        w, h = image.size
        k = math.ceil(max(w, h) / DETECT_SIZE)
        if k > 1:  # box average in C, in bands: no aliasing, no full-size copy
            image = reduced(image, k)
        a = to_array(image)
        return a, w / a.shape[1]
    a = np.asarray(image, dtype=np.float32)
    h, w = a.shape[:2]
    k = math.ceil(max(w, h) / DETECT_SIZE)
    if k > 1:
        hh, ww = h // k * k, w // k * k
        a = a[:hh, :ww].reshape(hh // k, k, ww // k, k, *a.shape[2:]).mean(axis=(1, 3))
    return a, w / a.shape[1]


def _odd(n: float) -> int:
    return max(3, int(n) | 1)


def _backgrounds(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The paper under dark ink (a grey closing) and the board under light ink (a grey
    opening), at a scale wider than any stroke, computed small and scaled back up; and
    how many pixels the scaling blurs."""
    h, w = gray.shape
    if min(h, w) < SMALL_IMAGE:
        flat = np.full_like(gray, float(np.median(gray)))
        return flat, flat, 1
    f = max(1, math.ceil(max(h, w) / BACKGROUND_SIZE))
    small = np.asarray(Image.fromarray(gray, mode="F").reduce(f)) if f > 1 else gray
    size = _odd(min(small.shape) * BACKGROUND_WINDOW)
    # No smoothing after the morphology: it keeps the edges of shadows and of the table
    # where they are, and smoothing would smear them into stroke-like ramps.
    out = []
    for op in (ndi.grey_closing, ndi.grey_opening):
        bg = op(small, size=(size, size), mode="nearest")
        if f > 1:
            bg = np.asarray(Image.fromarray(bg, mode="F").resize((w, h), Image.Resampling.BILINEAR))
        out.append(bg)
    return out[0], out[1], f


def _dark_ink(gray: np.ndarray, bg_dark: np.ndarray, bg_light: np.ndarray) -> bool:
    """Polarity: is the ink darker than the paper (pen) or lighter (chalk, MNIST)?

    The background is most of the image: paper is bright next to the brightest thing in
    the image, a board dark next to its chalk, even under a shadow. Only when that is
    unclear does the ink's own contrast decide: the polarity whose strokes stand out
    clearly more from their background.
    """
    sample = gray[:: max(1, gray.shape[0] // 256), :: max(1, gray.shape[1] // 256)]
    med, top = np.percentile(sample, [50, 99.5])
    ratio = float(med / max(top, 1e-6))
    if ratio > 0.55 or ratio < 0.35:
        return ratio > 0.55
    below = _top(np.clip(bg_dark - gray, 0, 1))
    above = _top(np.clip(gray - bg_light, 0, 1))
    if max(below, above) > 1.5 * min(below, above):
        return below > above
    return ratio > 0.45


def _top(values: np.ndarray, share: float = 0.002) -> float:
    """Mean of the largest `share` of the values (the ink's typical strength)."""
    flat = values.ravel()
    k = max(1, int(flat.size * share))
    return float(np.partition(flat, flat.size - k)[flat.size - k :].mean())


def _rulings(d: np.ndarray, chroma: np.ndarray | None, floor: float) -> np.ndarray:
    """`_long_lines`, on big images at half size: a 2x2 maximum keeps one-pixel lines
    at full strength, and the search costs a quarter."""
    h, w = d.shape
    if min(h, w) < 400:
        return _long_lines(d, chroma, floor)
    hh, ww = h // 2 * 2, w // 2 * 2

    def pool(a: np.ndarray) -> np.ndarray:
        return np.maximum(np.maximum(a[0:hh:2, 0:ww:2], a[1:hh:2, 0:ww:2]), np.maximum(a[0:hh:2, 1:ww:2], a[1:hh:2, 1:ww:2]))

    small = _long_lines(pool(d), None if chroma is None else pool(chroma), floor)
    out = np.zeros_like(d)
    out[:hh, :ww] = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    return out


def _long_lines(d: np.ndarray, chroma: np.ndarray | None, floor: float) -> np.ndarray:
    """How much of `d` (ink darkness) is printed rulings, per pixel."""
    h, w = d.shape
    ruling = np.zeros_like(d)
    # Only thin structures can be rulings: broad soft residue (a shadow's edge) would
    # otherwise survive the line opening and tie all lines into one blob.
    widest = max(3.0, LINE_THICK * min(h, w))
    d = d - ndi.grey_opening(d, size=(_odd(widest + 2), _odd(widest + 2)))
    for axis in (1, 0):  # horizontal lines run along axis 1 (columns)
        length = w if axis == 1 else h
        win = max(9, round(length * LINE_WINDOW))
        tol = (2 * LINE_TILT_PX + 1, 1) if axis == 1 else (1, 2 * LINE_TILT_PX + 1)
        opened = ndi.grey_opening(ndi.grey_dilation(d, size=tol), size=(1, win) if axis == 1 else (win, 1))
        labels, n = ndi.label(opened > floor, structure=np.ones((3, 3)))
        if n == 0:
            continue
        spans = np.array([(s[axis].stop - s[axis].start) for s in ndi.find_objects(labels)])
        ids = 1 + np.flatnonzero(spans >= LINE_SPAN * length)
        if ids.size == 0:
            continue
        # Thickness across the line, the median over its length: a digit's stroke lying
        # on a ruling widens it only locally.
        lut = np.zeros(n + 1, np.int64)
        lut[ids] = np.arange(1, ids.size + 1)
        lab = lut[labels] if axis == 1 else lut[labels].T
        cols = lab.shape[1]
        counts = np.bincount((lab * cols + np.arange(cols)).ravel(), minlength=(ids.size + 1) * cols)
        counts = counts.reshape(ids.size + 1, cols)[1:].astype(np.float32)
        counts[counts == 0] = np.nan
        thick = np.nanmedian(counts, axis=1) - 2 * LINE_TILT_PX  # the dilation widened it
        ids = ids[thick <= widest]
        if ids.size == 0:
            continue
        level = np.asarray(ndi.median(opened, labels, ids), dtype=np.float32)
        weight = np.asarray(ndi.sum(d, labels, ids), dtype=np.float32) + 1e-6
        colour = (  # darkness-weighted: the line's own pixels, not the paper around it
            np.asarray(ndi.sum(chroma * d, labels, ids), dtype=np.float32) / weight
            if chroma is not None
            else np.zeros_like(level)
        )
        coloured = (colour >= RULING_COLOUR) & (level < RULING_COLOURED_MAX)
        neutral = level < RULING_NEUTRAL_MAX
        # A lone neutral line may be a stroke of the digit (a tight crop of a 1), a sheet
        # edge or a table edge; printed grids and ruled pages repeat their lines.
        is_ruling = coloured | (neutral & (int(neutral.sum()) >= 2))
        # A thin tilted line's darkness flickers along it (antialiasing, JPEG) and the
        # opening follows its faintest stretch: take away more than that, up to a cap
        # that leaves ink crossing the line (darker than the line) standing.
        cap = np.zeros(n + 1, np.float32)
        cap[ids[is_ruling]] = level[is_ruling] * RULING_EXTRA
        ruling = np.maximum(ruling, np.minimum(opened * RULING_EXTRA, cap[labels]))
    return ruling


def _noise(d: np.ndarray) -> float:
    """Robust sigma of the paper's darkness (most pixels are paper)."""
    sample = d[:: max(1, d.shape[0] // 256), :: max(1, d.shape[1] // 256)]
    med = float(np.median(sample))
    return 1.4826 * float(np.median(np.abs(sample - med)))


def _threshold(d: np.ndarray, sigma: float) -> np.ndarray:
    """Sauvola on the flattened page (paper = 1 - d), with a floor above the noise."""
    win = _odd(min(d.shape) / 5)
    mean = ndi.uniform_filter(d, win, mode="nearest")
    sq = ndi.uniform_filter(d * d, win, mode="nearest")
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    paper = 1.0 - d
    t = (1.0 - mean) * (1.0 + SAUVOLA_K * (std / 0.5 - 1.0))
    # Clearly dark ink is ink whatever its surroundings: the inside of a broad marker
    # stroke is as dark as its local mean, which Sauvola alone would call paper.
    return ((paper < t) & (d > max(MIN_INK, NOISE_SIGMAS * sigma))) | (d > STRONG_INK)


def _groups(boxes: np.ndarray) -> list[list[int]]:
    """Merges boxes (y0, y1, x0, x1) into digits: two groups join when their boxes lie
    within GROUP_GAP of the larger one's biggest stroke. The reach follows the strokes,
    not the merged box, so a chain of pieces (what is left of a ruling) cannot grow a
    group across the page."""
    extent = np.maximum(boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2]).astype(np.float64)
    order = np.argsort(-extent)
    groups = [[int(i)] for i in order]
    gbox = [boxes[i].astype(np.float64) for i in order]
    reach = [GROUP_GAP * extent[i] for i in order]
    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if not groups[a] or not groups[b]:
                    continue
                ba, bb = gbox[a], gbox[b]
                r = max(reach[a], reach[b])
                if max(ba[0] - bb[1], bb[0] - ba[1]) <= r and max(ba[2] - bb[3], bb[2] - ba[3]) <= r:
                    groups[a] += groups[b]
                    groups[b] = []
                    gbox[a] = np.array([min(ba[0], bb[0]), max(ba[1], bb[1]), min(ba[2], bb[2]), max(ba[3], bb[3])])
                    reach[a] = r
                    merged = True
    return [g for g in groups if g]


def find_digit(image: Image.Image | np.ndarray) -> FoundDigit:
    """Finds the handwritten digit on a photo or scan (see the module docstring)."""
    a, scale = working_copy(image)
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3:]
        if float(alpha.min()) < 0.98:  # transparent: composite on a contrasting backdrop
            from app.core.prepared import flatten_alpha

            gray = flatten_alpha(a)
            a = None
        else:
            a = a[..., :3]
    if a is not None:
        gray = a if a.ndim == 2 else a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    chroma = None
    if a is not None and a.ndim == 3:  # elementwise: ~10x faster than max(axis=2) here
        r, g, b = a[..., 0], a[..., 1], a[..., 2]
        chroma = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    gray = np.ascontiguousarray(gray, dtype=np.float32)
    if gray.size == 0 or float(gray.max() - gray.min()) < 0.02:
        return NOT_FOUND
    bg_dark, bg_light, blur = _backgrounds(gray)
    dark_ink = _dark_ink(gray, bg_dark, bg_light)
    if dark_ink:
        x, bg = 1.0 - gray, 1.0 - bg_dark
        d = np.clip((x - bg) / np.maximum(1.0 - bg, 0.05), 0.0, 1.0)
    else:
        x, bg = gray, bg_light
        d = np.clip(x - bg, 0.0, 1.0)
    paper = float(np.percentile(bg, 5))
    # The table beside the sheet, the sheet's shadow, a board's frame: large dark regions
    # where no writing is; their edges would read as long strokes.
    dark = (1.0 - bg) < DARK_REGION * (1.0 - paper) if dark_ink else bg > paper + 1.0 - DARK_REGION
    if dark.any():
        d[ndi.maximum_filter(dark, size=2 * blur + 5)] = 0.0  # + the upscaling's blur
    sigma = _noise(d)
    d = np.clip(d - _rulings(d, chroma, max(MIN_INK / 2, 3 * sigma)), 0.0, 1.0)
    ink = _threshold(d, sigma)
    labels, n = ndi.label(ink, structure=np.ones((3, 3)))
    if n == 0:
        return NOT_FOUND
    slices = ndi.find_objects(labels)
    idx = np.arange(1, n + 1)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.float64)
    mass = np.bincount(labels.ravel(), weights=d.ravel(), minlength=n + 1)[1:]
    boxes = np.array([[s[0].start, s[0].stop, s[1].start, s[1].stop] for s in slices], np.int64)
    h, w = d.shape
    border = (boxes[:, 0] == 0) | (boxes[:, 2] == 0) | (boxes[:, 1] == h) | (boxes[:, 3] == w)
    strength = mass / np.maximum(area, 1)
    keep = area >= 2
    inner = keep & ~border
    ref = inner if inner.any() else keep
    if not ref.any():
        return NOT_FOUND
    strongest = float(np.max(np.where(ref, strength * (area >= 0.2 * area[ref].max()), 0)))
    keep &= strength >= GHOST * strongest
    # Edges that run into the frame (the sheet's edge, a table's, a shadow's) are not
    # writing; left in, they would pull a digit beside them into their group.
    extent = np.maximum(boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2])
    edges = border & (extent >= 0.5 * max(h, w))
    if (keep & ~edges).any():
        keep &= ~edges
    best = _choose(boxes, area, mass, border, keep, (h, w))
    if best is None:
        return NOT_FOUND
    members, count = best
    sel = np.isin(labels, idx[members])
    y0, y1 = int(boxes[members, 0].min()), int(boxes[members, 1].max())
    x0, x1 = int(boxes[members, 2].min()), int(boxes[members, 3].max())
    m = max(2, round(MARGIN * max(y1 - y0, x1 - x0)))
    y0, y1, x0, x1 = max(0, y0 - m), min(h, y1 + m), max(0, x0 - m), min(w, x1 + m)
    near = ndi.binary_dilation(sel[y0:y1, x0:x1], iterations=2)  # keep the antialiased rim
    crop = np.where(near, d[y0:y1, x0:x1], 0.0).astype(np.float32)
    top = float(np.percentile(d[sel], 90))
    crop = np.clip(crop / max(top, 1e-6), 0.0, 1.0)
    src_w, src_h = _source_size(image)
    region = (
        max(0, math.floor(x0 * scale)),
        max(0, math.floor(y0 * scale)),
        min(src_w, math.ceil(x1 * scale)),
        min(src_h, math.ceil(y1 * scale)),
    )
    return FoundDigit(crop, region, count, max(h, w), (src_w, src_h))


def _source_size(image: Image.Image | np.ndarray) -> tuple[int, int]:
    if isinstance(image, Image.Image):
        return image.size
    return int(np.shape(image)[1]), int(np.shape(image)[0])


def _choose(boxes, area, mass, border, keep, shape) -> tuple[list[int], int] | None:
    """The biggest digit-like group (members, how many digit-like groups there are)."""
    ids = np.flatnonzero(keep)
    if ids.size == 0:
        return None
    if ids.size > 400:  # a page of text or noise: the 400 biggest pieces are plenty
        ids = ids[np.argsort(-mass[ids])[:400]]
    h, w = shape
    found = []
    for g in _groups(boxes[ids]):
        members = ids[g]
        y0, y1 = boxes[members, 0].min(), boxes[members, 1].max()
        x0, x1 = boxes[members, 2].min(), boxes[members, 3].max()
        gh, gw = y1 - y0, x1 - x0
        fill = area[members].sum() / max(gh * gw, 1)
        cut = bool(border[members].any())
        # Filled slabs (a shadow, a table edge), dashes and what is left of a ruling (thin,
        # along much of the frame) are not digits; a lone 1 still wins when nothing else is.
        slab = fill > 0.85 and min(gh, gw) > 0.2 * min(h, w)
        rule_left = gh >= LINE_SPAN * h and gh >= 5 * gw
        digit_like = gw <= MAX_ASPECT * gh and not slab and not rule_left
        found.append((not cut, digit_like, float(mass[members].sum()), gh, list(members)))
    candidates = [f for f in found if f[1]] or found
    whole = [f for f in candidates if f[0]] or candidates
    best = max(whole, key=lambda f: f[2])
    count = sum(1 for f in whole if f[3] >= SAME_SIZE * best[3] and f[2] >= 0.15 * best[2])
    return best[4], count
