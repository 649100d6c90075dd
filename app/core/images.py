"""Reading image files safely: every failure becomes an `ImageLoadError` naming the file
and the problem, so callers can report it and go on with the next file."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.core.reading import FileProblem, open_regular

# Anything larger is refused before it is decoded (a 30000x30000 PNG is a few KB on disk
# but 900 MP, several GB of memory, once decoded).
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 256 * 1024 * 1024
# Longest side over shortest. Past this an image is a line, not a picture: a model would
# see a sliver of it (resize mode keeps the centre square) or a smear (digit mode).
MAX_ASPECT = 100
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm"}
)


class ImageLoadError(Exception):
    """An image file that cannot be used; str() is a user-readable message."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _sniff(head: bytes) -> str | None:
    """Names a known non-raster format from its first bytes, for a better message."""
    stripped = head.lstrip()
    if stripped.startswith(b"%PDF"):
        return "a PDF document, not an image; export the page as PNG first"
    low = stripped[:512].lower()
    if low.startswith(b"<?xml") or b"<svg" in low:
        return "an SVG vector image, which cannot be classified; export it as PNG first"
    if head.startswith(b"\x80\x02") or head.startswith(b"PK\x03\x04"):
        return "not an image (looks like a pickle or zip archive)"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:256]):
        return "a text file, not an image"
    return None


def unreadable_folder(path: str | os.PathLike) -> str | None:
    """Why a folder cannot be listed ("permission denied"), or None when it can."""
    try:
        with os.scandir(path):
            return None
    except PermissionError:
        return "permission denied"
    except OSError as e:
        return e.strerror or str(e)


def load_image(path: str | os.PathLike) -> Image.Image:
    """Opens, validates and fully decodes an image file.

    Applies the EXIF orientation, takes the first frame of animations and refuses
    decompression bombs and extreme aspect ratios before decoding.

    Raises:
        ImageLoadError: with a message naming the file and the problem.
    """
    p = Path(path)
    try:
        f = open_regular(p, MAX_FILE_BYTES, "an image file")
    except FileProblem as e:
        if os.path.isdir(p):
            # Named directly, or a folder walk could not list it and passed it on.
            reason = unreadable_folder(p)
            if reason:
                raise ImageLoadError(
                    p, f"cannot read this folder ({reason}); the images in it were skipped"
                ) from None
            raise ImageLoadError(p, "is a folder, not an image") from None
        raise ImageLoadError(p, e.problem) from None
    with f:
        try:
            if os.fstat(f.fileno()).st_size == 0:
                raise ImageLoadError(p, "empty file (0 bytes)")
            head = f.read(1024)
            f.seek(0)
        except OSError as e:
            raise ImageLoadError(p, f"cannot read file ({e.strerror or e})") from None
        return _decode(p, f, head)


def _decode(p: Path, f: BinaryIO, head: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata (corrupt EXIF) in images it then
            # decodes fine; the user can do nothing about it, so it is not shown.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(f)
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageLoadError(
                    p, f"image too large: {w}x{h} ({w * h / 1e6:.0f} megapixels; the limit is "
                    f"{MAX_PIXELS / 1e6:.0f})"
                )
            if w == 0 or h == 0:
                raise ImageLoadError(p, f"image has no pixels ({w}x{h})")
            if max(w, h) > MAX_ASPECT * min(w, h):
                raise ImageLoadError(
                    p, f"extreme aspect ratio: {w}x{h} pixels ({max(w, h) / min(w, h):,.0f}:1; "
                    f"the limit is {MAX_ASPECT}:1)"
                )
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)  # animations: classify the first frame
            img.load()
            # In place: without it Pillow returns a copy even when nothing is turned,
            # a second full-size image in memory for every file.
            ImageOps.exif_transpose(img, in_place=True)
            return img
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(p, _sniff(head) or "not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(p, "image too large (decompression bomb protection)") from None
    except MemoryError:
        raise ImageLoadError(p, "not enough memory to decode this image") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError) as e:
        msg = str(e)
        if "truncated" in msg.lower() or isinstance(e, EOFError):
            raise ImageLoadError(p, "image data is truncated (incomplete file)") from None
        raise ImageLoadError(p, f"corrupt or unsupported image ({msg or type(e).__name__})") from None


HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def full_scale(top: float, mode: str) -> float:
    """The value that means "white" in a 16-bit, 32-bit or float image whose brightest
    pixel is `top`: integer images are scaled by the bit depth they use (8, 10, 12, 14
    or 16 bits), so a 12-bit scan stored in 16 bits is not mistaken for a blank page;
    float images by their maximum when it is above 1."""
    if mode == "F":
        return top if top > 1.0 else 1.0
    return max(next((float(2**b - 1) for b in (8, 10, 12, 14, 16) if top <= 2**b - 1), top), 1.0)


def to_array(img: Image.Image, scale: float | None = None) -> np.ndarray:
    """Converts any PIL mode to float32 in [0, 1]: (H, W) gray, (H, W, 3) RGB or
    (H, W, 4) RGBA. 16-bit and float images are divided by `scale`, by default
    `full_scale()` of their own brightest pixel (pass it to convert parts of one image
    alike)."""
    mode = img.mode
    if mode in HIGH_DEPTH_MODES:
        a = np.asarray(img, dtype=np.float64)
        if a.ndim == 3:
            a = a[..., 0]
        if scale is None:
            top = (float(np.nanmax(a)) if mode == "F" else float(a.max())) if a.size else 0.0
            scale = full_scale(top, mode)
        a = np.nan_to_num(a / scale) if mode == "F" else a / scale
        return np.clip(a, 0.0, 1.0).astype(np.float32)
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
    elif mode == "LA":
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...
    a = np.asarray(img, dtype=np.float32) / 255.0
    return a


REDUCE_BAND_PIXELS = 1 << 22  # `reduced` works on this many source pixels at a time


def reduced(img: Image.Image, k: int) -> Image.Image:
    """`img` box-averaged by `k` (as `Image.reduce`), in L, RGB, RGBA, I or F (the modes
    `to_array` reads directly), converted and reduced a band of rows at a time.

    Never a second full-size copy: Pillow's own `reduce` premultiplies a whole RGBA
    image first, and converting a palette image makes one (196 MB for 49 MP)."""
    w, h = img.size
    if img.mode in ("L", "RGB", "RGBA", "I", "F"):
        mode = img.mode
    elif img.mode in HIGH_DEPTH_MODES:
        mode = "I"
    elif img.mode in ("P", "PA", "LA") or "A" in img.getbands():
        mode = "RGBA"
    else:
        mode = "L" if img.mode == "1" else "RGB"
    if k <= 1:
        return img if img.mode == mode else img.convert(mode)
    out = Image.new(mode, (-(-w // k), -(-h // k)))
    rows = max(k, REDUCE_BAND_PIXELS // max(w, 1) // k * k)  # whole blocks per band
    for y in range(0, h, rows):
        band = img.crop((0, y, w, min(h, y + rows)))
        if band.mode != mode:
            band = band.convert(mode)
        out.paste(band.reduce(k), (0, y // k))
    return out


def iter_image_files(paths: Iterable[str | os.PathLike], follow_symlinks: bool = True) -> Iterator[Path]:
    """Expands files and folders (recursively, sorted) into image file paths.

    Folders yield only entries with image suffixes (named pipes, devices and dangling
    links too, which `load_image` then reports); explicitly named files are yielded as
    they are (so a wrong file gets a clear error later). Symlink loops are skipped. A
    folder that cannot be listed (no permission) is yielded itself, so that reading it
    with `load_image` reports it ("cannot read this folder (permission denied)") in
    its place among the results instead of its images going missing without a word.
    """
    seen_dirs: set[tuple[int, int]] = set()

    def walk(d: Path) -> Iterator[Path]:
        try:
            st = d.stat()
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            return  # symlink loop or the same folder twice
        seen_dirs.add(key)
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            yield d
            return
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=follow_symlinks):
                    yield from walk(Path(e.path))
                elif Path(e.name).suffix.lower() in IMAGE_SUFFIXES and not e.is_dir():
                    # Regular files, and also what only looks like one (a named pipe, a
                    # device, a dangling link): `load_image` says what it is, in its
                    # place, instead of it going missing without a word. A pipe is
                    # never opened, so nothing blocks.
                    yield Path(e.path)
            except OSError:
                continue

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            yield from walk(p)
        else:
            yield p
