"""What every command prints: errors, plain lines whatever the terminal's encoding, JSON
lines, and the progress bar."""

from __future__ import annotations

import json
import sys
import time

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


class ProgressBar:
    """A one-line progress bar on stderr (plain lines when not a terminal)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = 0.0

    def update(self, frac: float, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.tty else 10.0):
            return
        self._last = now
        width = 24
        filled = int(round(frac * width))
        line = f"[{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f}% {text}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _printable(text: str, encoding: str) -> str:
    """`text` in a form `encoding` can always take. File names whose bytes are not valid
    UTF-8 reach Python as surrogate escapes, which a strict UTF-8 stdout refuses with a
    traceback: they are shown as \\xNN, and anything else the terminal cannot show
    as \\uNNNN."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    try:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        return text


def _say(text: str) -> None:
    """Prints one line on stdout, whatever its encoding (see `_printable`)."""
    print(_printable(text, getattr(sys.stdout, "encoding", None) or "utf-8"), flush=True)


def _json_line(obj: dict) -> str:
    """One JSON line. NaN and infinity are not JSON: refused here as a last guard
    (`cmd_classify` reports such results as errors before they get this far)."""
    return json.dumps(obj, allow_nan=False)


NOT_A_NUMBER = (
    "the model's output is not a number (NaN or infinity) for this image; the model "
    "file may be damaged"
)
