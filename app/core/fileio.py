"""Atomic file writes: the one way the app writes a file a user keeps.

Every write goes to a synced temp file in the target's folder, then replaces the target
with `os.replace`: a crash, a full disk or a killed process never leaves a half-written
file in place of a good one, and a failed write leaves no temp file behind.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

WriteFn = Callable[[BinaryIO], object]


def _new_file_mode(path: Path) -> int:
    """Permissions for a file we (re)write: those of the file it replaces, else the usual
    rw-r--r-- (mkstemp's private 0600 would hide a saved model from other users)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _stage(path: Path, write: WriteFn) -> str:
    """Writes a synced temp file beside `path` and returns its name (removed on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _as_writer(content: bytes | bytearray | memoryview | WriteFn) -> WriteFn:
    if callable(content):
        return content
    return lambda f: f.write(content)


def atomic_write(path: str | os.PathLike, write: WriteFn) -> None:
    """Writes `path` with `write(binary_file)`, atomically (creates missing folders).

    Raises:
        OSError: the folder is not writable, the disk is full...; the previous file at
            `path`, if any, is left intact.
    """
    atomic_write_files([(Path(path), write)])


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> None:
    """Writes `data` to `path` atomically (see `atomic_write`)."""
    atomic_write(path, _as_writer(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Writes `text` to `path` atomically (see `atomic_write`); newlines are kept as given."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_files(
    files: Sequence[tuple[str | os.PathLike, bytes | bytearray | memoryview | WriteFn]],
) -> None:
    """Writes several files that belong together (e.g. weights + card): all are written
    in full before any replaces its old version, so a full disk while writing the last
    one never leaves a new file beside an old partner.

    Args:
        files: (path, bytes or write function) pairs.

    Raises:
        OSError: as `atomic_write`; no target has been replaced when staging fails.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, content in files:
            p = Path(path)
            staged.append((_stage(p, _as_writer(content)), p))
        while staged:
            tmp, p = staged[0]
            os.replace(tmp, p)
            staged.pop(0)
    finally:
        for tmp, _ in staged:
            _unlink_quietly(tmp)


def _is_own_temp(name: str, target: str) -> bool:
    """Whether `name` is one of `_stage`'s temp files for `target`: `.TARGET.XXXXXXXX.tmp`."""
    prefix = f".{target}."
    middle = name[len(prefix) : -len(".tmp")] if name.startswith(prefix) and name.endswith(".tmp") else ""
    return len(middle) == 8 and all(c.isalnum() or c == "_" for c in middle)


def remove_stale_temps(*paths: str | os.PathLike) -> list[Path]:
    """Removes the temp files that a killed write of `paths` left behind (our own
    naming only: `.NAME.XXXXXXXX.tmp` beside each path). Call it only while no other
    process writes those paths (under the run lock). Returns what was removed."""
    removed = []
    for path in paths:
        p = Path(path)
        try:
            with os.scandir(p.parent) as it:
                stale = [Path(e.path) for e in it if _is_own_temp(e.name, p.name) and e.is_file(follow_symlinks=False)]
        except OSError:
            continue
        for t in stale:
            try:
                t.unlink()
                removed.append(t)
            except OSError:
                pass
    return removed


def check_writable(path: str | os.PathLike, what: str = "output") -> None:
    """Checks that `path` can be written: its folder exists (or can be made) and takes a
    new file. A real write, not `os.access` (which says yes to root on a read-only mount).

    Raises:
        OSError: with a message naming the folder and the reason.
    """
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{what} {p} is a folder, not a file")
    for parent in [p.parent, *p.parent.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, f"{what} {p}: {parent} is a file, not a folder"
                )
            break
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        os.close(fd)
        _unlink_quietly(tmp)
    except OSError as e:
        raise OSError(e.errno, f"cannot write {what} {p}: {e.strerror or e}") from None


@contextmanager
def staged_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp file name beside `path`, for writers that want a file name (ONNX export)
    or a file to check before it counts: when the block ends normally the temp file
    replaces `path`; when it raises, the temp file is removed and `path` is untouched.

    Raises:
        OSError: the folder cannot be created or written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
