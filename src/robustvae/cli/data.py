"""``robustvae data download``: fetch datasets for users who are online."""

from __future__ import annotations

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
    download.set_defaults(handler=run_download)


def run_download(args) -> int:
    from robustvae.data import download_mnist

    kwargs = {"base_url": args.url} if args.url else {}
    for path in download_mnist(args.dest, force=args.force, **kwargs):
        print(path)
    return 0
