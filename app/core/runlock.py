"""One training run per output file: `OUT.lock` beside the model, held for the run.

The lock is an OS file lock (`fcntl.flock`) on that file, so it ends with the process
however it ends: a lock file left by a killed run is simply taken over. The file holds
the owner's pid and host for the message the second run gets. Where `fcntl` does not
exist (Windows), the pid alone decides: a lock whose pid is not running is stale.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from app.core.config import TrainingError
from app.core.fileio import remove_stale_temps

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class RunLocked(Exception):
    """Another live run holds the lock; str() is a user-readable message."""


def lock_path(out: str | os.PathLike) -> Path:
    p = Path(out)
    return p.with_name(p.name + ".lock")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def _owner(f: IO[str]) -> tuple[int, str]:
    f.seek(0)
    parts = f.read(200).split()
    try:
        return int(parts[0]), parts[1] if len(parts) > 1 else ""
    except (IndexError, ValueError):
        return 0, ""


class RunLock:
    """Holds `OUT.lock` while a run writes OUT (and its checkpoint).

    Use as a context manager, or `acquire()` / `release()`.

    Raises:
        RunLocked: from `acquire()`, when a live run holds it.
        OSError: the lock file cannot be created (the caller has checked the folder).
    """

    def __init__(self, out: str | os.PathLike) -> None:
        self.path = lock_path(out)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            f = self._try_lock()
            if f is not None:
                self._file = f
                return
        raise RunLocked(f"{self.path}: the lock file keeps changing; another run is starting?")

    def _try_lock(self) -> IO[str] | None:
        """The locked file, or None when the lock file was replaced under us (a run that
        released it in the meantime): then the caller tries again."""
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    self._refuse(*_owner(f))
                try:
                    same = os.stat(self.path).st_ino == os.fstat(f.fileno()).st_ino
                except FileNotFoundError:
                    same = False
                if not same:  # locked a file its last owner had already removed
                    f.close()
                    return None
            else:
                pid, host = _owner(f)
                if pid != os.getpid() and host == socket.gethostname() and _pid_alive(pid):
                    self._refuse(pid, host)
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
            f.flush()
        except BaseException:
            f.close()
            raise
        return f

    def _refuse(self, pid: int, host: str) -> None:
        who = f"process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")
        out = self.path.with_name(self.path.name[: -len(".lock")])
        raise RunLocked(
            f"{out}: another training run ({who}) is writing this model; wait for it to "
            f"finish, or choose another output file (the lock is {self.path})"
        )

    def release(self) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        try:
            self.path.unlink()  # before unlocking: a waiting run then makes a fresh file
        except OSError:
            pass
        f.close()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextmanager
def run_files(out: str | os.PathLike | None, checkpoint: str | os.PathLike | None) -> Iterator[None]:
    """A training run's hold on its files: the lock on `out` (else `checkpoint`), and
    the temp files a killed run left beside them removed.

    Raises:
        TrainingError: another live run holds the lock, or it cannot be created.
    """
    from app.core.modelio import ModelFileError, card_path, pending_card_path, read_card

    target = out or checkpoint
    if target is None:
        yield
        return
    lock = RunLock(target)
    try:
        lock.acquire()
    except RunLocked as e:
        raise TrainingError(str(e)) from None
    except OSError as e:
        raise TrainingError(f"cannot create the lock file {lock.path}: {e.strerror or e}") from None
    try:
        own = [Path(p) for p in (out, checkpoint) if p is not None]
        if out is not None:
            own += [card_path(out), pending_card_path(out)]
        remove_stale_temps(*own)
        if out is not None and pending_card_path(out).exists():
            try:
                read_card(out)  # finishes a save killed between its renames
            except ModelFileError:
                pass
            try:  # what is left belongs to no weights: a save killed before its weights
                pending_card_path(out).unlink()
            except OSError:
                pass
        yield
    finally:
        lock.release()
