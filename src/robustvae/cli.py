"""The ``robustvae`` command line: one subcommand per job.

    robustvae gallery [--out DIR]     plot every registered loss, its gradient, and the
                                      general distribution (PNG files)

Each subcommand is an ``_add_<name>(subparsers)`` function that declares its arguments and
sets ``handler`` to a ``_run_<name>(args) -> int`` function; add it to ``SUBCOMMANDS``. Errors
a user can fix (``ValueError``, ``OSError``) print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from robustvae import __version__

PROG = "robustvae"


# ----------------------------------------------------------------------------- gallery


def _add_gallery(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gallery",
        help="plot every registered loss, its gradient and the general distribution",
        description=(
            "Write losses.png, gradients.png and distributions.png: each registered loss and "
            "its autograd derivative against the residual, and Barron's general distribution "
            "with its log partition function."
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/gallery"),
        metavar="DIR",
        help="output directory, created if missing (default: %(default)s)",
    )
    parser.set_defaults(handler=_run_gallery)


def _run_gallery(args: argparse.Namespace) -> int:
    from robustvae.gallery import draw_gallery  # matplotlib is imported only when needed

    for path in draw_gallery(args.out):
        print(path)
    return 0


# ----------------------------------------------------------------------------- main

SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_gallery,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Autoencoders and image restoration with robust reconstruction losses.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Usage errors exit through argparse (status 2, a usage line on stderr).
    """
    args = build_parser().parse_args(None if argv is None else [str(a) for a in argv])
    try:
        return args.handler(args)
    except (ValueError, OSError) as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
