"""Text for people, shared by the CLI and the GUI so both say the same thing."""

from __future__ import annotations

import math


def format_duration(seconds: float) -> str:
    """`1:02:03` / `2:03` for ETAs and elapsed times (rounded to the second)."""
    s = int(max(0, round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def percent(value: float | None, decimals: int = 1) -> str:
    """`97.3%`; "–" for a missing or non-finite value, never "nan%" or "inf%"."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(v):
        return "–"
    return f"{v:.{decimals}%}"


def sentence(text: str) -> str:
    """'found 2 digits; ...' -> 'Found 2 digits; ...' for a label of its own."""
    return text[:1].upper() + text[1:] if text else ""
