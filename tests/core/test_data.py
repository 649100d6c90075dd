"""Datasets: the real MNIST/Fashion-MNIST files load right, and every broken file or
folder is refused with a DataError that names it."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.core.data import (
    FASHION_CLASSES,
    MNIST_CLASSES,
    DataError,
    load_builtin,
    load_dataset,
    load_image_folder,
    read_idx_images,
    read_idx_labels,
    split_train_val,
)
from app.core.models import FASHION_SPEC, MNIST_SPEC, InputSpec
from tests.helpers.digits import FASHION_DIR, FASHION_MISSING, MNIST_DIR, MNIST_MISSING, draw_digit

needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=MNIST_MISSING)
RGB32 = InputSpec(3, 32, (0.5,) * 3, (0.25,) * 3, "resize")


def idx_images(n: int, rows: int = 28, cols: int = 28, magic: int = 2051) -> bytes:
    pixels = np.arange(n * rows * cols, dtype=np.uint64).astype(np.uint8).tobytes()
    return struct.pack(">IIII", magic, n, rows, cols) + pixels


def idx_labels(labels: list[int], magic: int = 2049, n: int | None = None) -> bytes:
    return struct.pack(">II", magic, len(labels) if n is None else n) + bytes(labels)


def write_mnist_dir(d, n_images: int = 6, labels: list[int] | None = None, gz: bool = True):
    d.mkdir(parents=True, exist_ok=True)
    labels = [i % 10 for i in range(n_images)] if labels is None else labels
    for split in ("train", "t10k"):
        for kind, data in (
            ("images-idx3", idx_images(n_images)),
            ("labels-idx1", idx_labels(labels)),
        ):
            name = f"{split}-{kind}-ubyte" + (".gz" if gz else "")
            (d / name).write_bytes(gzip.compress(data) if gz else data)
    return d


# --- the real files ---------------------------------------------------------------------------


@needs_mnist
def test_real_mnist_test_split_loads_with_its_known_labels():
    data = load_builtin("mnist", MNIST_DIR, "test")
    assert data.images.shape == (10000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert data.classes == MNIST_CLASSES and data.spec == MNIST_SPEC
    assert torch.bincount(data.labels).min() > 850  # every digit is there


@needs_mnist
def test_real_mnist_training_subset_is_5k_balanced():
    data = load_builtin("mnist", MNIST_DIR, "train")
    assert data.images.shape == (5000, 1, 28, 28)
    assert torch.bincount(data.labels, minlength=10).tolist() == [500] * 10
    # MNIST digits: light ink on a black background, centred.
    assert data.images[:, :, 0, :].float().mean() < 1 and data.images.max() == 255


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=FASHION_MISSING)
def test_fashion_mnist_loads_from_the_debian_package():
    test = load_builtin("fashion-mnist", FASHION_DIR, "test")
    assert test.images.shape == (10000, 1, 28, 28)
    assert test.classes == FASHION_CLASSES and test.spec == FASHION_SPEC
    assert test.labels[:5].tolist() == [9, 2, 1, 1, 6]  # ankle boot, pullover, trouser, ...
    train = load_builtin("fashion-mnist", FASHION_DIR, "train")
    assert len(train) == 60000


def test_gzip_and_raw_idx_give_the_same_arrays(tmp_path):
    write_mnist_dir(tmp_path / "gz")
    write_mnist_dir(tmp_path / "raw", gz=False)
    a = load_builtin("mnist", tmp_path / "gz", "train")
    b = load_builtin("mnist", tmp_path / "raw", "train")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images[0, 0, 0, :3].tolist() == [0, 1, 2]


def test_torchvision_download_layout_is_found(tmp_path):
    write_mnist_dir(tmp_path / "MNIST" / "raw")
    assert len(load_builtin("mnist", tmp_path, "test")) == 6


# --- broken IDX files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        (idx_images(3)[:-5], "truncated"),
        (idx_images(3) + b"\x00", "extra bytes"),
        (idx_images(3, magic=2049), "label file"),
        (idx_images(3, magic=1234), "magic 1234"),
        (idx_images(3, rows=0, cols=0), "implausible image size"),
        (b"\x00\x00\x08", "too short"),
        (b"", "too short"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt or truncated gzip"),
        (gzip.compress(idx_images(3))[:-12], "gzip"),
    ],
    ids=[
        "truncated",
        "extra",
        "label-magic",
        "bad-magic",
        "zero-size",
        "short",
        "empty",
        "bad-gzip",
        "cut-gzip",
    ],
)
def test_broken_image_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_idx_images(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (idx_labels([1, 2, 3], n=5), "truncated"),
        (idx_labels([1, 2, 3], n=2), "extra bytes"),
        (idx_labels([1, 2, 3], magic=2051), "image file"),
        (b"\x00\x00", "too short"),
    ],
)
def test_broken_label_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_idx_labels(path)
    assert str(path) in str(info.value)


def gzip_bomb(header: bytes, zeros: int) -> bytes:
    """A gzip file: a valid IDX header, then `zeros` zero bytes (~1000:1 compressed)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [comp.compress(header)]
    chunk = bytes(1 << 20)
    for _ in range(zeros >> 20):
        parts.append(comp.compress(chunk))
    return b"".join(parts) + comp.flush()


def peak_mb(fn) -> float:
    """The peak of memory allocated while fn() runs (bytes objects and arrays), in MB."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 1e6


@pytest.mark.parametrize("kind", ["images", "labels"])
def test_a_gzip_bomb_is_read_only_as_far_as_its_header_promises(tmp_path, kind):
    header = struct.pack(">IIII", 2051, 3, 28, 28) if kind == "images" else struct.pack(">II", 2049, 3)
    path = tmp_path / f"train-{kind}.gz"
    path.write_bytes(gzip_bomb(header, 64 << 20))  # 64 MB of zeros in a ~64 KB file
    assert path.stat().st_size < 100_000
    reader = read_idx_images if kind == "images" else read_idx_labels
    errors: list[str] = []

    def read() -> None:
        with pytest.raises(DataError, match="extra bytes") as info:
            reader(path)
        errors.append(str(info.value))

    peak = peak_mb(read)
    assert str(path) in errors[0]
    assert peak < 10, f"{peak:.0f} MB to refuse a 64 KB file"  # read whole: 64+ MB


@pytest.mark.parametrize("gz", [True, False])
def test_an_idx_header_with_absurd_counts_is_refused_before_reading_on(tmp_path, gz):
    raw = struct.pack(">IIII", 2051, 2**32 - 1, 28, 28) + bytes(10_000)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(DataError, match="4294967295 images of 28x28 = 3,367,254 MB, more than") as info:
        read_idx_images(path)
    assert "limit" in str(info.value) and str(path) in str(info.value)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(struct.pack(">II", 2049, 2**32 - 1) + bytes(100))
    with pytest.raises(DataError, match="4294967295 labels = 4,295 MB, more than"):
        read_idx_labels(labels)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_an_idx_file_that_is_a_pipe_or_a_device_is_refused_without_reading(tmp_path):
    import threading

    # /dev/null, not /dev/zero: a regression must fail this test, not fill the memory.
    link = tmp_path / "train-images-idx3-ubyte"
    link.symlink_to("/dev/null")
    with pytest.raises(DataError, match="a device, not an IDX file"):
        read_idx_images(link)
    fifo = tmp_path / "t10k-labels-idx1-ubyte"
    os.mkfifo(fifo)  # nobody writes to it: a blocking open would wait forever
    errors: list[str] = []

    def read() -> None:
        try:
            read_idx_labels(fifo)
        except DataError as e:
            errors.append(str(e))

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "reading a named pipe blocked"
    assert errors == [f"{fifo}: not a regular file (a named pipe)"]


def test_label_count_mismatch_names_the_label_file(tmp_path):
    d = write_mnist_dir(tmp_path / "m")
    (d / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels([1, 2, 3])))
    with pytest.raises(DataError, match="3 labels for 6 images") as info:
        load_builtin("mnist", d, "train")
    assert "train-labels-idx1-ubyte.gz" in str(info.value)


def test_label_out_of_range_is_refused(tmp_path):
    d = write_mnist_dir(tmp_path / "m", labels=[0, 1, 2, 3, 4, 42])
    with pytest.raises(DataError, match="label 42"):
        load_builtin("mnist", d, "test")


def test_missing_files_and_folders_say_where_to_point(tmp_path):
    with pytest.raises(DataError, match="--data-dir"):
        load_builtin("mnist", tmp_path, "train")
    with pytest.raises(DataError, match="not found"):
        load_builtin("mnist", tmp_path / "nope", "train")
    with pytest.raises(DataError, match="unknown dataset"):
        load_builtin("cifar", tmp_path)
    with pytest.raises(DataError, match="split"):
        load_builtin("mnist", tmp_path, "validation")
    with pytest.raises(DataError, match="is a folder"):
        read_idx_images(tmp_path)


# --- image folders -------------------------------------------------------------------------------


def make_class_folder(root, spec_counts: dict[str, int]):
    for cls, n in spec_counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            draw_digit(int(cls) % 10 if cls.isdigit() else i % 10, 60).save(root / cls / f"{i}.png")
    return root


def test_image_folder_loads_one_class_per_subfolder(tmp_path):
    root = make_class_folder(tmp_path / "ds", {"3": 3, "7": 2})
    data = load_image_folder(root, MNIST_SPEC)
    assert data.classes == ["3", "7"]
    assert data.labels.tolist() == [0, 0, 0, 1, 1]
    assert data.images.shape == (5, 1, 28, 28) and data.skipped == []
    rgb = load_image_folder(root, RGB32)
    assert rgb.images.shape == (5, 3, 32, 32)


def test_junk_files_in_class_folders_are_skipped_and_listed(tmp_path):
    root = make_class_folder(tmp_path / "ds", {"a": 2, "b": 2})
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "b" / "notes.png").write_text("not an image")
    (root / "b" / "blank.png").write_bytes(b"")
    Image.new("L", (40, 40), 255).save(root / "b" / "white.png")
    (root / "b" / "README.txt").write_text("ignored: not an image suffix")
    data = load_image_folder(root, MNIST_SPEC)
    assert len(data) == 4
    skipped = "\n".join(data.skipped)
    assert len(data.skipped) == 4
    for name in ("broken.png", "notes.png", "blank.png", "white.png"):
        assert name in skipped
    assert "README" not in skipped


def test_a_single_class_folder_is_refused(tmp_path):
    root = make_class_folder(tmp_path / "ds", {"cats": 2})
    with pytest.raises(DataError, match="at least two classes.*found 1 \\(cats\\)"):
        load_image_folder(root, RGB32)


def test_an_empty_class_folder_is_named(tmp_path):
    root = make_class_folder(tmp_path / "ds", {"cats": 2})
    (root / "dogs").mkdir()
    with pytest.raises(DataError, match="'dogs' has no images"):
        load_image_folder(root, RGB32)


def test_a_class_folder_with_only_junk_is_named(tmp_path):
    root = make_class_folder(tmp_path / "ds", {"cats": 2})
    (root / "dogs").mkdir()
    (root / "dogs" / "x.png").write_text("junk")
    with pytest.raises(DataError, match="no readable images in class folder\\(s\\): dogs"):
        load_image_folder(root, RGB32)


def test_missing_root_folder_and_missing_named_classes(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        load_image_folder(tmp_path / "nope", RGB32)
    root = make_class_folder(tmp_path / "ds", {"cats": 1, "dogs": 1})
    with pytest.raises(DataError, match="missing: birds"):
        load_image_folder(root, RGB32, classes=["cats", "birds"])


def test_folder_dataset_with_train_and_test_subfolders(tmp_path):
    make_class_folder(tmp_path / "ds" / "train", {"0": 2, "1": 2})
    make_class_folder(tmp_path / "ds" / "test", {"0": 1, "1": 1})
    assert len(load_dataset(str(tmp_path / "ds"), split="train", spec=MNIST_SPEC)) == 4
    assert len(load_dataset(str(tmp_path / "ds"), split="test", spec=MNIST_SPEC)) == 2


def test_a_class_named_train_or_test_is_a_class_not_a_split(tmp_path):
    # Vehicles: bus, car, train. Before, "train/" was taken for a split and refused.
    root = make_class_folder(tmp_path / "vehicles", {"bus": 2, "car": 2, "train": 3})
    data = load_dataset(str(root), split="train", spec=RGB32)
    assert data.classes == ["bus", "car", "train"] and len(data) == 7
    two = make_class_folder(tmp_path / "two", {"test": 2, "train": 2})  # images directly inside
    assert load_dataset(str(two), split="train", spec=RGB32).classes == ["test", "train"]


def test_a_split_layout_needs_class_folders_inside_its_splits(tmp_path):
    make_class_folder(tmp_path / "ds" / "train", {"cat": 2, "dog": 2})
    make_class_folder(tmp_path / "ds" / "val", {"cat": 1, "dog": 1})
    assert load_dataset(str(tmp_path / "ds"), split="train", spec=RGB32).classes == ["cat", "dog"]
    assert len(load_dataset(str(tmp_path / "ds"), split="test", spec=RGB32)) == 2  # val/
    make_class_folder(tmp_path / "only" / "train", {"cat": 2, "dog": 2})
    with pytest.raises(DataError, match="no test/ or val/ folder"):
        load_dataset(str(tmp_path / "only"), split="test", spec=RGB32)


def test_a_thin_strip_in_a_class_folder_is_skipped_with_the_reason(tmp_path):
    root = make_class_folder(tmp_path / "ds", {"a": 2, "b": 2})
    strip = np.zeros((1, 50_000, 3), np.uint8)
    strip[:, 25_000:] = 255
    Image.fromarray(strip).save(root / "b" / "strip.png")
    data = load_image_folder(root, RGB32)
    assert len(data) == 4
    assert len(data.skipped) == 1 and "strip.png: extreme aspect ratio" in data.skipped[0]


def deny_listing(monkeypatch, *folders: Path) -> None:
    """Makes folders unlistable, as chmod 000 does for a user (tests run as root)."""
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) in folders:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_folders_in_a_dataset_are_reported(tmp_path, monkeypatch):
    root = make_class_folder(tmp_path / "ds", {"a": 2, "b": 2})
    make_class_folder(root / "b" / "more", {"c": 1})
    deny_listing(monkeypatch, root / "b" / "more")
    data = load_image_folder(root, RGB32)
    assert len(data) == 4
    assert data.skipped == [
        f"{root / 'b' / 'more'}: cannot read this folder (permission denied); "
        "the images in it were skipped"
    ]
    deny_listing(monkeypatch, root / "b")
    with pytest.raises(DataError, match="cannot read class folder 'b' \\(permission denied\\)"):
        load_image_folder(root, RGB32)
    deny_listing(monkeypatch, root)
    with pytest.raises(DataError, match="cannot read the folder \\(permission denied\\)"):
        load_image_folder(root, RGB32)


def test_progress_is_reported_for_every_file(tmp_path):
    root = make_class_folder(tmp_path / "ds", {"0": 2, "1": 1})
    seen = []
    load_image_folder(root, MNIST_SPEC, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_validation_split_is_seeded_and_disjoint():
    tr, va = split_train_val(100, 0.1, seed=3)
    assert len(va) == 10 and len(tr) == 90
    assert not set(tr.tolist()) & set(va.tolist())
    tr2, va2 = split_train_val(100, 0.1, seed=3)
    assert torch.equal(va, va2)
    assert not torch.equal(va, split_train_val(100, 0.1, seed=4)[1])
    assert len(split_train_val(5, 0.0, 0)[1]) == 0
    assert len(split_train_val(2, 0.89, 0)[0]) == 1  # never an empty training set


# --- anything at all -------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FAST = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FAST
@given(
    magic=st.sampled_from([2051, 2049, 0, 2**32 - 1]),
    dims=st.tuples(st.integers(0, 40), st.integers(0, 5000), st.integers(0, 5000)),
    body=st.binary(max_size=4000),
    gz=st.booleans(),
)
def test_read_idx_gives_arrays_or_a_data_error_for_any_bytes(tmp_path, magic, dims, body, gz):
    raw = struct.pack(">IIII", magic, *dims) + body
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    for reader in (read_idx_images, read_idx_labels):
        try:
            a = reader(path)
        except DataError as e:
            assert str(path) in str(e)
        else:
            assert a.dtype == np.uint8


@FAST
@given(raw=st.binary(max_size=64))
def test_read_idx_survives_short_garbage(tmp_path, raw):
    path = tmp_path / "junk"
    path.write_bytes(raw)
    for reader in (read_idx_images, read_idx_labels):
        try:
            reader(path)
        except DataError:
            pass
