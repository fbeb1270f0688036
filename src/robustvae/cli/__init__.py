"""The ``robustvae`` command line: one module per command group.

    robustvae train --out RUN_DIR [--kind vae --loss logcosh --loss-param a=100 …]
    robustvae sample | reconstruct | interpolate RUN_DIR     PNG grids from a trained autoencoder
    robustvae evaluate RUN_DIR        the kind's metrics, written to RUN_DIR/evaluation.json
    robustvae compare | report EXPERIMENT.toml               grids of runs, tables and reports
    robustvae restore corrupt | train | apply | evaluate     Noise2Noise restoration
    robustvae depth train | evaluate | predict               self-supervised stereo disparity
    robustvae demo [--out DIR]        the main job: l2 against logcosh VAEs on mnist-5k
    robustvae data download mnist     fetch MNIST (checksums verified)
    robustvae gallery [--out DIR]     plot every registered loss and the general distribution

Each group module has ``add(subparsers)``, which declares its subcommands and sets ``handler``
to a function ``(args) -> int``; list it in ``GROUPS``. Errors a user can fix (``ValueError``,
``OSError``) print one line to stderr and exit with status 2; warnings print one line each.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from robustvae import __version__
from robustvae.cli import autoencoder, compare, data, demo, depth, gallery, restore, train
from robustvae.cli.common import PROG

GROUPS = (train, autoencoder, compare, restore, depth, demo, data, gallery)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Autoencoders and image restoration with robust reconstruction losses.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.add(subparsers)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr if file is None else file)


def _message(error: Exception) -> str:
    """The error as one line: an OS error on a file as ``PATH: no such file or directory``."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror[0].lower()}{error.strerror[1:]}"
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Usage errors exit through argparse (status 2, a usage line on stderr).
    """
    args = build_parser().parse_args(None if argv is None else [str(a) for a in argv])
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            status = args.handler(args)
    except (ValueError, OSError) as error:
        print(f"{PROG} {args.command}: error: {_message(error)}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        status = 130
    if argv is None:  # the command itself, not a call from Python: a torchrun worker ends here
        from robustvae.training.distributed import end_worker

        end_worker(status)
    return status
