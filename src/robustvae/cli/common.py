"""What the command groups share: KEY=VALUE parsing and the program name."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

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


def note_replaced(paths: list[Path]) -> None:
    """One line on standard error naming the existing files among ``paths`` (outputs about
    to be replaced), so that nothing is overwritten without a word."""
    existing = [p for p in paths if p.is_file()]
    if existing:
        names = ", ".join(map(str, existing[:3])) + (", …" if len(existing) > 3 else "")
        count = f"{len(existing)} existing file{'s' if len(existing) > 1 else ''}"
        print(f"{PROG}: replacing {count}: {names}", file=sys.stderr)


def check_finite_output(output, model, source) -> None:
    """ValueError unless the model's ``output`` for ``source`` is finite: finite weights that
    overflow (a corrupt or diverged checkpoint) would otherwise be written as a black or
    all-zero image."""
    import torch

    if not torch.isfinite(output).all():
        raise ValueError(
            f"{model}: its output for {source} is not finite (NaN or infinite): its weights "
            "overflow; the checkpoint may be corrupt or its run diverged"
        )


def add_tile_option(parser, what: str) -> None:
    """``--tile``: the side of the tiles ``what`` larger than ``ONE_PASS_PIXELS`` run in."""
    from robustvae.tiling import ONE_PASS_PIXELS, TILE

    parser.add_argument(
        "--tile",
        type=int,
        default=TILE,
        help=f"{what} of more than {ONE_PASS_PIXELS:,} pixels run in tiles of this side, a "
        f"multiple of 32 (same output, less memory); 0: always one pass (default: {TILE})",
    )


def tile_of(args) -> int | None:
    """``--tile`` checked: the tile side, or None for one pass."""
    if args.tile < 0 or args.tile % 32:
        raise ValueError(f"--tile must be 0 or a positive multiple of 32, got {args.tile}")
    return args.tile or None


def load_kind_run(run_dir, kind: str, which: str, device, what: str):
    """(config, task) of a trained run of ``kind`` (its ``which`` checkpoint), or one line
    saying the run holds another kind (``what``: "a depth net", "a restorer")."""
    from robustvae.training import load_run

    config, task = load_run(run_dir, which, device)
    if config.kind != kind:
        raise ValueError(f"{run_dir} holds a {config.kind!r} model, not {what}")
    return config, task
