"""What the command groups share: KEY=VALUE parsing and the program name."""

from __future__ import annotations

import tomllib

PROG = "robustvae"


def parse_value(text: str):
    """A CLI value as TOML would read it: numbers, booleans, else the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def key_values(items: list[str], flag: str) -> dict:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}`` (ValueError naming ``flag`` otherwise)."""
    settings = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"{flag} needs KEY=VALUE, got {item!r}")
        settings[key.strip()] = parse_value(text.strip())
    return settings
