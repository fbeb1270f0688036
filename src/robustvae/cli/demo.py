"""``robustvae demo``: the main job."""

from __future__ import annotations

from pathlib import Path


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train a VAE with l2 and one with logcosh on mnist-5k; compare their grids",
        description="The main job: train a VAE (MLP) with l2 and one with logcosh (a = 100) on "
        "the bundled mnist-5k and write their samples, reconstructions and interpolations side "
        "by side (OUT/comparison.png). Finished runs are reused; interrupted ones resume.",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), metavar="DIR")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from robustvae.demo import run_demo

    print(run_demo(args.out, args.epochs, args.progress))
    return 0
