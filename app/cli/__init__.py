"""Command line: `python -m app [classify|explain|train|evaluate|calibrate|export|info]`; no arguments
starts the GUI. Heavy modules (torch) are imported inside the commands so `--help` and
the GUI start fast. One module a concern: output, parser, and the commands."""

from __future__ import annotations

import os
import sys

from app.cli.output import EXIT_FAILED, EXIT_OK, _err
from app.cli.parser import build_parser
from app.cli.train import _data_request

__all__ = ["build_parser", "main", "run_gui", "_data_request"]


def run_gui() -> int:
    try:
        from app.gui.app import main as gui_main
    except ImportError as e:
        _err(f"the GUI is not available ({e}); the CLI works: python -m app --help")
        return EXIT_FAILED
    return gui_main()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv)  # the card records this command, whoever called main()
    if args.self_test:
        from app.selftest import run_self_test

        return run_self_test()
    if args.command is None:
        return run_gui()
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os._exit(EXIT_OK)


if __name__ == "__main__":
    sys.exit(main())
