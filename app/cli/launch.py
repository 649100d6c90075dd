"""`train --nproc N`: N local training processes through torchrun's own launcher
(torch.distributed.run, elastic), and the worker side of any torchrun start: signals
that stop every rank cleanly."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from app.cli.output import EXIT_FAILED, _err

EXIT_INTERRUPTED = 130


def worker_argv(argv: list[str]) -> list[str]:
    """The command line each process runs: `argv` without `--nproc N`."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def launch_local(argv: list[str], nproc: int, threads: int | None = None) -> int:
    """Runs `python -m app <argv without --nproc>` in `nproc` processes on this machine,
    as `torchrun --standalone --nproc-per-node N -m app ...` would; returns the exit code
    (130 after Ctrl-C, which every process answers by stopping at the same step)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # torchrun's own default for several processes a node (one thread each, so they do not
    # fight over the cores); set here so that it does not warn about choosing it.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or 1))
    targs = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "--module", "app", *worker_argv(argv)]
    )
    try:
        run(targs)
    except SignalException:
        return EXIT_INTERRUPTED
    except ChildFailedError as e:
        codes = {f.exitcode for f in e.failures.values()}
        if codes <= {EXIT_INTERRUPTED, -signal.SIGINT, -signal.SIGTERM}:
            return EXIT_INTERRUPTED
        # Each process printed its own error (rank 0 the user-facing one) before exiting.
        _err(f"{len(e.failures)} of {nproc} training processes failed (exit codes {sorted(codes)})")
        return EXIT_FAILED
    return 0


def stop_on_signals(cancel: Callable[[], None]) -> Callable[[], bool]:
    """Makes SIGINT and SIGTERM call `cancel` (the run stops after the current step, on
    every rank); a second signal interrupts at once. Returns a function telling whether
    a signal came."""
    seen: list[int] = []

    def handler(signum: int, frame) -> None:
        if seen:
            raise KeyboardInterrupt
        seen.append(signum)
        cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return lambda: bool(seen)


def is_main_process() -> bool:
    """False in a torchrun worker other than rank 0 (which alone reports)."""
    return os.environ.get("RANK", "0") == "0"


def rank_prefix() -> str:
    return f"rank {os.environ['RANK']}: " if "RANK" in os.environ and "WORLD_SIZE" in os.environ else ""

