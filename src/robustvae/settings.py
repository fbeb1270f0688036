"""What every kind's settings are made of: ``FlatSettings`` (to and from a flat table), the
field helper ``setting_field`` (a default and the ``--help`` text), and the checks shared by
the settings of runs and kinds, each one ``ValueError`` line naming the setting and its range,
also for an integer too large for a float (a 400-digit number in a TOML file)."""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import field
from numbers import Real
from typing import Any

__all__ = [
    "FlatSettings",
    "setting_field",
    "check_int",
    "is_float",
    "is_int",
    "shown",
    "check_choice",
    "check_number",
    "check_loss_params",
]

_SCALAR_TYPES = (bool, int, float, str, type(None))


def setting_field(text: str, default):
    """A settings dataclass field: its default, and ``text`` for ``--help``."""
    return field(default=default, metadata={"help": text})


class FlatSettings:
    """``to_dict`` and ``from_dict`` for a kind's frozen, flat settings dataclass: ``*_params``
    pairs become tables and other tuples lists; unknown keys are an error."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_params"):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Inverse of ``to_dict``; unknown keys are an error, missing ones take defaults."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__} settings must be a table, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} setting(s): {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(names)}"
            )
        return cls(**data)


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


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of: {', '.join(choices)}; got {value!r}")


def check_number(name: str, value, positive: bool) -> float:
    bound = "> 0" if positive else ">= 0"
    if not isinstance(value, Real) or isinstance(value, bool) or not is_float(value):
        raise ValueError(f"{name} must be a finite number {bound}, got {shown(value)}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def check_loss_params(params, setting: str = "loss_params") -> tuple[tuple[str, object], ...]:
    if isinstance(params, dict):
        pairs = list(params.items())
    else:
        try:
            pairs = [tuple(p) for p in params]
        except TypeError:
            pairs = None
        if pairs is None or any(len(p) != 2 for p in pairs):
            raise ValueError(
                f"{setting} must be a dict or (name, value) pairs, got {params!r}"
            ) from None
    names = [name for name, _ in pairs]
    if not all(isinstance(n, str) for n in names):
        raise ValueError(f"{setting} names must be strings, got {names!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{setting} repeats {', '.join(map(repr, duplicates))}")
    for name, value in pairs:
        if not isinstance(value, _SCALAR_TYPES) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise ValueError(
                f"{setting}[{name!r}] must be a finite number, bool, string or None, got {value!r}"
            )
    reserved = sorted({"reduction", "num_dims"} & set(names))
    if reserved:
        raise ValueError(
            f"{setting} may not set {', '.join(map(repr, reserved))}: the model sets it "
            "(reduction 'sum'; num_dims = the image shape for per-pixel parameters)"
        )
    return tuple(sorted(pairs))
