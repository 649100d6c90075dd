"""Atomic writes: a file is replaced whole or not at all, and no temp file is left."""

from __future__ import annotations

import errno
import os

import pytest

from app.core import fileio
from app.core.fileio import atomic_write, atomic_write_bytes, atomic_write_files, atomic_write_text


def leftovers(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_writes_bytes_and_text_creating_folders(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "c.csv", "path,label\r\nx,3\r\n")
    atomic_write(tmp_path / "d.txt", lambda f: f.write(b"written"))
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "c.csv").read_bytes() == b"path,label\r\nx,3\r\n"
    assert (tmp_path / "d.txt").read_text() == "written"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "model.json"
    target.write_text("old")

    def fail(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, fail)
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_files_written_together_replace_none_when_one_fails(tmp_path, monkeypatch):
    a, b = tmp_path / "m.safetensors", tmp_path / "m.json"
    a.write_bytes(b"old weights")
    b.write_bytes(b"old card")
    real = fileio.os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == 2:  # the second file (the card) hits a full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    with pytest.raises(OSError):
        atomic_write_files([(a, b"new weights"), (b, b"new card")])
    assert a.read_bytes() == b"old weights" and b.read_bytes() == b"old card"
    assert leftovers(tmp_path) == []


def test_a_rewritten_file_keeps_its_permissions_and_a_new_one_is_readable(tmp_path):
    old = tmp_path / "shared.json"
    old.write_text("x")
    old.chmod(0o640)
    atomic_write_text(old, "y")
    atomic_write_text(tmp_path / "new.json", "z")
    assert old.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644
