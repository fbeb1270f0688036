"""``robustvae gallery``: plot every registered loss, its gradient and the general distribution."""

from __future__ import annotations

import argparse
from pathlib import Path


def add(subparsers: argparse._SubParsersAction) -> None:
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from robustvae.gallery import draw_gallery  # matplotlib is imported only when needed

    for path in draw_gallery(args.out):
        print(path)
    return 0
