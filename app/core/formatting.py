"""Text for people, shared by the CLI and the GUI so both say the same thing."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """`1:02:03` / `2:03` for ETAs and elapsed times (rounded to the second)."""
    s = int(max(0, round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
