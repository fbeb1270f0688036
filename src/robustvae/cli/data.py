"""``robustvae data download``: fetch datasets for users who are online."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def add(subparsers) -> None:
    parser = subparsers.add_parser("data", help="fetch datasets for users who are online")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    download = actions.add_parser(
        "download",
        help="download a dataset, verifying checksums",
        description="Download MNIST's four IDX files (checksums verified, written atomically) "
        "into DEST (default: $ROBUSTVAE_DATA/mnist or ~/.local/share/robustvae/mnist), where "
        "`--dataset mnist` finds them.",
    )
    download.add_argument("dataset", choices=("mnist",))
    download.add_argument("--dest", type=Path, default=None)
    download.add_argument("--url", default=None, help="a mirror's base URL")
    download.add_argument("--force", action="store_true", help="download even if present")
    download.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="for each connection, and for each read to bring a byte (default: %(default)g)",
    )
    download.add_argument(
        "--deadline",
        type=_seconds,
        default=600.0,
        metavar="SECONDS",
        help="the most one file may take in all; raise it for a slow link (default: %(default)g)",
    )
    download.set_defaults(handler=run_download)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def run_download(args) -> int:
    from robustvae.data import download_mnist

    kwargs = {"base_url": args.url} if args.url else {}
    paths = download_mnist(
        args.dest, force=args.force, timeout=args.timeout, deadline=args.deadline, **kwargs
    )
    for path in paths:
        print(path)
    return 0
