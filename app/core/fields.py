"""Typed reading of fields from parsed JSON (model cards): each getter checks the type
and the range and raises `FieldError` naming the field, so a hand-edited or hostile
card ("train_samples": 1e999, "classes": "abc", "std": [NaN]) is refused with a
sentence instead of failing later in arithmetic or formatting.
"""

from __future__ import annotations

import math
from typing import Any

MISSING: Any = object()


class FieldError(ValueError):
    """A field of the wrong type or out of range; str() names the field."""


def shown(value: object) -> str:
    """A short rendering of a bad value for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _get(d: dict, key: str, default: object) -> object:
    if key in d:
        return d[key]
    if default is MISSING:
        raise KeyError(key)
    return default


def integer(d: dict, key: str, lo: int, hi: int, default: object = MISSING, where: str = "") -> int:
    """A whole number in lo..hi (JSON true/false and 3.0 are not whole numbers)."""
    v = _get(d, key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise FieldError(f"{where}{key} must be a whole number, not {shown(v)}")
    if not lo <= v <= hi:
        raise FieldError(f"{where}{key} must be {lo:,}..{hi:,}, not {v:,}")
    return v


def is_number(v: object) -> bool:
    """A finite int or float (not bool, not NaN, not infinite)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def number(
    d: dict, key: str, lo: float, hi: float, default: object = MISSING, where: str = "",
    allow_none: bool = False,
) -> float | None:  # fmt: skip
    """A finite number in lo..hi (or None when allowed)."""
    v = _get(d, key, default)
    if v is None and allow_none:
        return None
    if not is_number(v) or not lo <= v <= hi:  # type: ignore[operator]
        raise FieldError(f"{where}{key} must be a number in {lo:g}..{hi:g}, not {shown(v)}")
    return float(v)  # type: ignore[arg-type]


def numbers(d: dict, key: str, lo: float, hi: float, where: str = "") -> tuple[float, ...]:
    """A list of finite numbers, each in lo..hi."""
    v = _get(d, key, MISSING)
    if not isinstance(v, list | tuple) or not v:
        raise FieldError(f"{where}{key} must be a list of numbers, not {shown(v)}")
    if not all(is_number(x) and lo <= x <= hi for x in v):
        raise FieldError(f"{where}{key} values must be numbers in {lo:g}..{hi:g}, not {shown(v)}")
    return tuple(float(x) for x in v)


def text(
    d: dict, key: str, default: object = MISSING, where: str = "", max_len: int = 100_000,
    allow_none: bool = False,
) -> str | None:  # fmt: skip
    """A string of at most max_len characters (or None when allowed)."""
    v = _get(d, key, default)
    if v is None and allow_none:
        return None
    if not isinstance(v, str):
        raise FieldError(f"{where}{key} must be a string, not {shown(v)}")
    if len(v) > max_len:
        raise FieldError(f"{where}{key} is too long ({len(v):,} characters; the limit is {max_len:,})")
    return v


def boolean(d: dict, key: str, default: object = MISSING, where: str = "") -> bool:
    """true or false (not "false", not 0)."""
    v = _get(d, key, default)
    if not isinstance(v, bool):
        raise FieldError(f"{where}{key} must be true or false, not {shown(v)}")
    return v


def names(d: dict, key: str, min_count: int, max_count: int, max_len: int, where: str = "") -> list[str]:
    """A list of unique, non-empty strings (class names)."""
    v = _get(d, key, MISSING)
    if not isinstance(v, list | tuple):
        raise FieldError(f"{where}{key} must be a list of names, not {shown(v)}")
    if not min_count <= len(v) <= max_count:
        raise FieldError(
            f"a model needs at least {min_count} {key} and at most {max_count:,}, found {len(v):,}"
        )
    for item in v:
        if not isinstance(item, str) or not item.strip():
            raise FieldError(f"{where}{key} must be non-empty strings, not {shown(item)}")
        if len(item) > max_len:
            raise FieldError(f"{where}{key}: a name is longer than {max_len} characters")
    seen: set[str] = set()
    for item in v:
        if item in seen:
            raise FieldError(f"{where}{key}: {shown(item)} appears twice")
        seen.add(item)
    return list(v)


def mapping(d: dict, key: str, default: object = MISSING, where: str = "") -> dict:
    """A JSON object with string keys."""
    v = _get(d, key, default)
    if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
        raise FieldError(f"{where}{key} must be an object, not {shown(v)}")
    return v
