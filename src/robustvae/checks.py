"""Checks shared by the settings of runs and kinds: one ``ValueError`` line naming the setting
and its range, also for an integer too large for a float (a 400-digit number in a TOML file)."""

from __future__ import annotations

import sys
from numbers import Real

__all__ = ["check_int", "is_float", "shown"]


def is_float(value: Real) -> bool:
    """Whether the number ``value`` is finite as a float (NaN, ±inf and integers beyond
    float's range are not); compares exactly, so never raises OverflowError."""
    return abs(value) <= sys.float_info.max


def shown(value) -> str:
    """``repr(value)``, or how many digits an integer too long to show has."""
    if isinstance(value, int) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def check_int(name: str, value, low: int, high: int) -> int:
    """``value`` if it is an int in [low, high], else ValueError naming ``name`` and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {shown(value)}")
    return value
