"""IDX files (MNIST, Fashion-MNIST, EMNIST), raw or gzip, read with the header's counts
checked against the size before the payload is read, and never past it."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from app.core.dataset import DataError
from app.core.reading import FileProblem, megabytes, open_regular

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
# A dataset is held in memory whole; past this an IDX header is damaged or hostile (a
# gzip bomb: a valid header, then gigabytes of zeros). MNIST's 60k training images are
# 47 MB, EMNIST's 700k are 550 MB.
MAX_IDX_BYTES = 2**30
_CHUNK = 1 << 22


def _open_idx(path: Path) -> tuple[BinaryIO, int | None]:
    """Opens a raw or gzip IDX file as a stream; returns it and the size of its content
    when known without decompressing (raw files)."""
    try:
        f = open_regular(path, MAX_IDX_BYTES + 16, "an IDX file")
    except FileProblem as e:
        raise DataError(f"{path}: {e.problem}") from None
    try:
        if f.read(2) == b"\x1f\x8b":
            f.seek(0)
            return gzip.GzipFile(fileobj=f, mode="rb"), None
        f.seek(0)
        return f, os.fstat(f.fileno()).st_size
    except BaseException:
        f.close()
        raise


def _read_upto(stream: BinaryIO, path: Path, n: int) -> bytes:
    """Up to n bytes (fewer only at the end of the data); gzip damage is a DataError."""
    parts, got = [], 0
    try:
        while got < n:
            chunk = stream.read(min(_CHUNK, n - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip file ({e})") from None
    return b"".join(parts)


def _read_idx(path: Path, header_size: int, kind: str, check_header) -> tuple[tuple[int, ...], bytes]:
    """Reads an IDX header, lets `check_header` validate it and return the payload size
    it promises, then reads exactly that much and one byte more (to tell "extra bytes"),
    never the rest of a file that goes on and on."""
    stream, size = _open_idx(path)
    with stream:
        head = _read_upto(stream, path, header_size)
        if len(head) < header_size:
            raise DataError(f"{path}: too short for an IDX {kind} file ({len(head)} bytes)")
        fields = struct.unpack(">" + "I" * (header_size // 4), head)
        expected, what = check_header(fields)
        if expected > MAX_IDX_BYTES:
            raise DataError(
                f"{path}: header says {what} = {megabytes(expected)}, more than the "
                f"{megabytes(MAX_IDX_BYTES)} limit: a damaged file, or not a dataset this "
                "app can hold in memory"
            )
        if size is not None and size - header_size != expected:  # raw: decide from the size
            found = size - header_size
            what_is = "truncated" if found < expected else "has extra bytes"
            raise DataError(
                f"{path}: file {what_is}: header says {what} = {expected} bytes, found {found}"
            )
        body = _read_upto(stream, path, expected)
        if len(body) < expected:
            raise DataError(
                f"{path}: file truncated: header says {what} = {expected} bytes, found {len(body)}"
            )
        if _read_upto(stream, path, 1):
            raise DataError(
                f"{path}: file has extra bytes: header says {what} = {expected} bytes, "
                "and the data goes on after them"
            )
    return fields, body


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX3 image file (raw or gzip) into a uint8 array (N, H, W)."""
    p = Path(path)

    def check(fields: tuple[int, ...]) -> tuple[int, str]:
        magic, n, rows, cols = fields
        if magic != IDX_IMAGES_MAGIC:
            hint = " (this is a label file)" if magic == IDX_LABELS_MAGIC else ""
            raise DataError(
                f"{p}: not an IDX image file: magic {magic}, expected {IDX_IMAGES_MAGIC}{hint}"
            )
        if not (1 <= rows <= 4096 and 1 <= cols <= 4096):
            raise DataError(f"{p}: implausible image size {rows}x{cols}")
        return n * rows * cols, f"{n} images of {rows}x{cols}"

    (_, n, rows, cols), body = _read_idx(p, 16, "image", check)
    return np.frombuffer(body, dtype=np.uint8).reshape(n, rows, cols).copy()


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX1 label file (raw or gzip) into a uint8 array (N,)."""
    p = Path(path)

    def check(fields: tuple[int, ...]) -> tuple[int, str]:
        magic, n = fields
        if magic != IDX_LABELS_MAGIC:
            hint = " (this is an image file)" if magic == IDX_IMAGES_MAGIC else ""
            raise DataError(
                f"{p}: not an IDX label file: magic {magic}, expected {IDX_LABELS_MAGIC}{hint}"
            )
        return n, f"{n} labels"

    _, body = _read_idx(p, 8, "label", check)
    return np.frombuffer(body, dtype=np.uint8).copy()
