"""Opening files a user hands us: regular files only, size-capped, never blocking.

Every file the app reads (images, model cards and weights, IDX datasets) is opened
through `open_regular`, so a symlink to /dev/zero, a named pipe or a 5 GB file renamed
`.json` is refused with the real reason instead of hanging the app or filling memory.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO


class FileProblem(Exception):
    """A file that cannot be read; `problem` is a short user-readable reason (the
    caller adds the path and turns it into its own error type)."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} KB"


def _not_regular(mode: int, what: str) -> str | None:
    """The reason a file of this type cannot be read as `what`, or None if it can."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"is a folder, not {what}"
    if stat.S_ISFIFO(mode):
        return "not a regular file (a named pipe)"
    if stat.S_ISSOCK(mode):
        return "not a regular file (a socket)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return f"a device, not {what}"
    return "not a regular file"


def _access_problem(path: Path, e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        if os.path.islink(path):
            return "broken symbolic link (its target does not exist)"
        return "file not found"
    if isinstance(e, PermissionError):
        return "permission denied"
    if e.errno == errno.ELOOP:
        return "cannot access file: symlink loop (the link leads back to itself)"
    return f"cannot access file ({e.strerror or e})"


def open_regular(path: str | os.PathLike, max_bytes: int, what: str = "a file") -> BinaryIO:
    """Opens a regular file for binary reading.

    Folders, named pipes, sockets and devices are refused from their type before
    anything is read (a pipe is opened non-blocking, so it can never hang us), and so
    is a file larger than `max_bytes`.

    Args:
        path: the file.
        max_bytes: the largest file accepted.
        what: what the file should be, for messages ("an image file").

    Raises:
        FileProblem: with the reason.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as e:
        raise FileProblem(p, _access_problem(p, e)) from None
    reason = _not_regular(st.st_mode, what)
    if reason:
        raise FileProblem(p, reason)
    try:
        # O_NONBLOCK: the file may have been swapped for a pipe since the stat above.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise FileProblem(p, _access_problem(p, e)) from None
    try:
        st = os.fstat(fd)
        reason = _not_regular(st.st_mode, what)
        if reason:
            raise FileProblem(p, reason)
        if st.st_size > max_bytes:
            raise FileProblem(
                p, f"file too large ({megabytes(st.st_size)}; the limit is {megabytes(max_bytes)})"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: str | os.PathLike, max_bytes: int, what: str = "a file") -> bytes:
    """The whole content of a regular file of at most `max_bytes` (also when the size
    on disk lies, as for files in /proc).

    Raises:
        FileProblem: not a regular file, unreadable, or too large.
    """
    with open_regular(path, max_bytes, what) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise FileProblem(path, f"cannot read file ({e.strerror or e})") from None
    if len(data) > max_bytes:
        raise FileProblem(path, f"file too large (over the limit of {megabytes(max_bytes)})")
    return data
