"""load_image() and iter_image_files(): every bad file becomes an ImageLoadError that
names the file and says what is wrong, and folder walks always end."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core import images, reading
from app.core.images import MAX_PIXELS, ImageLoadError, iter_image_files, load_image, to_array
from tests.helpers.digits import draw_digit


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height: a few hundred KB on disk, gigabytes decoded."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", body)
        + png_chunk(b"IEND", b"")
    )


def encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    draw_digit(3, 200).convert("RGB").save(buf, fmt, **kw)
    return buf.getvalue()


def load_error(path: Path) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    err = info.value
    assert err.path == str(path)
    assert str(path) in str(err), "the message must name the file"
    return err.problem


# --- good files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, suffix",
    [
        ("PNG", ".png"),
        ("JPEG", ".jpg"),
        ("BMP", ".bmp"),
        ("TIFF", ".tif"),
        ("WEBP", ".webp"),
        ("PPM", ".ppm"),
    ],
)
def test_common_formats_load_fully_decoded(tmp_path, fmt, suffix):
    path = tmp_path / f"digit{suffix}"
    path.write_bytes(encoded(fmt))
    img = load_image(path)
    assert img.size == (200, 200)
    assert np.asarray(img).mean() > 128  # white paper, not garbage


def test_a_png_with_a_jpg_name_still_loads(tmp_path):
    path = tmp_path / "really-a-png.jpg"
    path.write_bytes(encoded("PNG"))
    assert load_image(path).size == (200, 200)


def test_corrupt_exif_metadata_loads_the_image_without_warnings(tmp_path):
    path = tmp_path / "odd-camera.jpg"
    # EXIF that promises five entries and holds none.
    draw_digit(3, 100).convert("RGB").save(
        path, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would reach the user's terminal
        img = load_image(path)
    assert img.size == (100, 100)


def test_to_array_scales_every_mode_to_unit_range():
    for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "I;16", "F", "YCbCr"):
        img = draw_digit(1, 40).convert("L")
        img = (
            Image.fromarray(np.asarray(img).astype(np.uint16) * 257)
            if mode == "I;16"
            else img.convert(mode)
        )
        a = to_array(img)
        assert a.dtype == np.float32 and a.shape[:2] == (40, 40), mode
        assert a.min() >= 0.0 and a.max() <= 1.0 and a.max() > 0.9, mode


# --- bad files -------------------------------------------------------------------------------


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").touch()
    assert "empty file" in load_error(tmp_path / "empty.png")


def test_missing_file(tmp_path):
    assert "not found" in load_error(tmp_path / "gone.png")


def test_folder_named_like_an_image(tmp_path):
    (tmp_path / "dir.png").mkdir()
    assert "folder" in load_error(tmp_path / "dir.png")


@pytest.mark.parametrize(
    "fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("GIF", ".gif"), ("WEBP", ".webp")]
)
def test_truncated_image(tmp_path, fmt, suffix):
    data = encoded(fmt)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    problem = load_error(path)
    assert "truncated" in problem or "corrupt" in problem


def test_header_only_png(tmp_path):
    path = tmp_path / "head.png"
    path.write_bytes(encoded("PNG")[:40])
    assert load_error(path)


def test_text_file_renamed_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("shopping list: milk, eggs\n" * 20)
    assert "text file" in load_error(path)


def test_svg_is_refused_with_a_way_out(tmp_path):
    path = tmp_path / "seven.svg.png"
    path.write_text(
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><path d="M1 1L27 27"/></svg>'
    )
    assert "SVG" in load_error(path) and "PNG" in load_error(path)


def test_pdf_is_refused_with_a_way_out(tmp_path):
    path = tmp_path / "scan.png"
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n" + bytes(range(256)) * 4)
    assert "PDF" in load_error(path)


def test_random_binary_junk(tmp_path):
    path = tmp_path / "junk.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert "not a recognised image" in load_error(path)


def test_zip_archive_renamed_png(tmp_path):
    path = tmp_path / "archive.png"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    assert "zip" in load_error(path)


@pytest.fixture(scope="module")
def bomb_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(bomb_png(30000, 30000))
    return path


def test_decompression_bomb_is_refused_before_decoding(bomb_file):
    assert bomb_file.stat().st_size < 2_000_000  # small on disk ...
    assert "too large" in load_error(bomb_file)  # ... 900 megapixels decoded


def test_image_just_over_the_app_limit_is_refused_with_the_limit(tmp_path):
    side = int(MAX_PIXELS**0.5) + 10  # over our limit, under Pillow's own
    path = tmp_path / "big.png"
    path.write_bytes(bomb_png(side, side))
    problem = load_error(path)
    assert "too large" in problem and f"{side}x{side}" in problem and "limit" in problem


def test_image_at_a_normal_large_size_loads(tmp_path):
    path = tmp_path / "a4-scan.png"
    path.write_bytes(bomb_png(2480, 3508))  # A4 at 300 dpi
    assert load_image(path).size == (2480, 3508)


def test_huge_file_on_disk_is_refused_without_reading_it(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.png"
    path.write_bytes(encoded("PNG") + b"\x00" * 2000)
    assert "too large" in load_error(path)


def test_unreadable_file_reports_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    path.write_bytes(encoded("PNG"))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root reads any file whatever its mode: simulate what a user would get.
        real_open = os.open

        def deny(name, *args, **kwargs):
            if Path(name) == path:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(name, *args, **kwargs)

        monkeypatch.setattr(reading.os, "open", deny)
    else:
        path.chmod(0)
    assert "permission denied" in load_error(path)


def test_symlink_loop_named_directly_is_an_error_not_a_hang(tmp_path):
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    problem = load_error(loop)
    assert "cannot access" in problem and "symlink loop" in problem


def load_error_within(path: Path, seconds: float = 20) -> str:
    """load_error in a thread, so a read that blocks fails the test instead of hanging."""
    import threading

    out: list[str] = []
    worker = threading.Thread(target=lambda: out.append(load_error(path)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"reading {path} blocked"
    assert out, "load_error raised something other than ImageLoadError"
    return out[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_named_pipes_and_devices_give_the_real_reason_and_never_block(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would wait forever
    assert load_error_within(fifo) == "not a regular file (a named pipe)"
    assert load_error_within(Path("/dev/zero")) == "a device, not an image file"
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    assert load_error_within(tmp_path / "zero.png") == "a device, not an image file"
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert "broken symbolic link" in load_error_within(tmp_path / "gone.png")


@pytest.mark.parametrize("width", [50_000, 400_000])
def test_a_strip_with_an_extreme_aspect_ratio_is_refused_before_decoding(tmp_path, width):
    path = tmp_path / f"strip-{width}.png"
    a = np.zeros((1, width, 3), np.uint8)
    a[:, width // 2 :] = 255
    Image.fromarray(a).save(path)
    assert path.stat().st_size < 2000  # a few hundred bytes on disk
    problem = load_error(path)
    assert "extreme aspect ratio" in problem and f"{width}x1" in problem and "100:1" in problem


def test_an_image_at_the_aspect_ratio_limit_still_loads(tmp_path):
    path = tmp_path / "banner.png"
    Image.new("L", (images.MAX_ASPECT * 3, 3), 200).save(path)
    assert load_image(path).size == (images.MAX_ASPECT * 3, 3)


# --- folders ---------------------------------------------------------------------------------


def test_folders_are_searched_recursively_in_sorted_order(tmp_path):
    for rel in ("b/2.png", "a/deep/er/1.jpg", "a/0.PNG", "c.gif", "notes.txt", "a/readme.md"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_image_files([tmp_path])]
    assert found == ["a/0.PNG", "a/deep/er/1.jpg", "b/2.png", "c.gif"]


def test_files_named_explicitly_are_kept_whatever_their_suffix(tmp_path):
    note = tmp_path / "notes.txt"
    note.write_text("hi")
    assert list(iter_image_files([note, tmp_path / "missing.png"])) == [
        note,
        tmp_path / "missing.png",
    ]


def test_symlink_loops_in_folders_end_and_list_each_image_once(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one.png").write_bytes(b"x")
    (tmp_path / "a" / "b" / "two.png").write_bytes(b"x")
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path / "a")  # a/b/up -> a: a loop
    (tmp_path / "a" / "self").symlink_to(tmp_path / "a" / "self")  # ELOOP
    (tmp_path / "a" / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    found = sorted(p.name for p in iter_image_files([tmp_path]))
    assert found == ["dangling.png", "one.png", "two.png"]  # the dangling link is reported
    # Without following links the loop is not even entered.
    assert sorted(p.name for p in iter_image_files([tmp_path], follow_symlinks=False)) == [
        "dangling.png",
        "one.png",
        "two.png",
    ]


def deny_listing(monkeypatch, folder: Path) -> None:
    """Makes `folder` unlistable, as chmod 000 does for a user (tests run as root,
    who can list anything)."""
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_subfolder_is_reported_in_its_place(tmp_path, monkeypatch):
    for rel in ("a/1.png", "locked/2.png", "z/3.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        draw_digit(1, 40).save(tmp_path / rel)
    deny_listing(monkeypatch, tmp_path / "locked")
    found = list(iter_image_files([tmp_path]))
    assert found == [tmp_path / "a/1.png", tmp_path / "locked", tmp_path / "z/3.png"]
    problem = load_error(tmp_path / "locked")
    assert "cannot read this folder (permission denied)" in problem
    # A folder named directly that can be read is still just "a folder".
    assert load_error(tmp_path / "a") == "is a folder, not an image"


def test_the_same_folder_given_twice_is_listed_once(tmp_path):
    (tmp_path / "x.png").write_bytes(b"x")
    assert len(list(iter_image_files([tmp_path, tmp_path]))) == 1


# --- anything at all -----------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FAST = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HEADERS = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"P5\n",
]


@FAST
@given(
    head=st.sampled_from(HEADERS),
    body=st.binary(max_size=2048),
    suffix=st.sampled_from([".png", ".jpg", ".gif", ".bin"]),
)
def test_load_image_gives_an_image_or_an_image_load_error_for_any_bytes(
    tmp_path, head, body, suffix
):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(head + body)
    try:
        img = load_image(path)
    except ImageLoadError as e:
        assert e.path == str(path) and e.problem
    else:
        assert img.size[0] > 0 and img.size[1] > 0


@FAST
@given(
    data=st.data(),
    fmt=st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]),
    w=st.integers(1, 120),
    h=st.integers(1, 120),
)
def test_damaged_real_images_never_crash_load_or_prepare(tmp_path, data, fmt, w, h):
    from app.core.preprocess import prepare

    buf = io.BytesIO()
    noise = np.random.default_rng(w * 1000 + h).integers(0, 256, (h, w), dtype=np.uint8)
    Image.fromarray(noise).convert("RGB" if fmt == "JPEG" else "L").save(buf, fmt)
    raw = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(0, 4))):  # flip a few bytes
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(bytes(raw[:cut]))
    try:
        img = load_image(path)
    except ImageLoadError:
        return
    assert prepare(img).pixels.shape == (28, 28)


def test_pipes_devices_and_dangling_links_inside_a_folder_are_reported_not_skipped(tmp_path):
    from app.core.predictor import Predictor
    from app.core.resources import default_model_path

    draw_digit(3, 80).save(tmp_path / "a.png")
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "notes.txt").write_text("not an image name: left out")
    found = [p.name for p in iter_image_files([tmp_path])]
    assert found == ["a.png", "gone.png", "pipe.png", "zero.png"]
    results = {p.name: r for p, r in Predictor.load(default_model_path()).predict_paths(iter_image_files([tmp_path]))}
    assert not isinstance(results["a.png"], ImageLoadError)
    assert "named pipe" in str(results["pipe.png"])
    assert "device" in str(results["zero.png"])
    assert "broken symbolic link" in str(results["gone.png"])
