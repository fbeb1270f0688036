"""The commands that draw from a trained model with a latent space (VAE, WAE, VAE-GAN):
``sample``, ``reconstruct`` and ``interpolate``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _add_run_command(subparsers, name: str, help: str, handler) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help, description=help)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a directory made by train")
    parser.add_argument("--out", type=Path, help="PNG file (default: RUN_DIR/<name>.png)")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "latest"),
        default="best",
        help="which checkpoint to draw from (default: best)",
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.set_defaults(handler=handler)
    return parser


def _add_sample(subparsers) -> None:
    parser = _add_run_command(
        subparsers, "sample", "decode samples of the prior into a PNG grid", _run_sample
    )
    parser.add_argument("-n", type=int, default=64, help="number of samples (default: 64)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the prior draws (default: %(default)s)"
    )


def _add_reconstruct(subparsers) -> None:
    _add_run_command(
        subparsers,
        "reconstruct",
        "test images (odd rows) above their reconstructions (even rows)",
        _run_reconstruct,
    )


def _add_interpolate(subparsers) -> None:
    parser = _add_run_command(
        subparsers,
        "interpolate",
        "decode straight lines between the codes of pairs of test images",
        _run_interpolate,
    )
    parser.add_argument(
        "--pairs", type=int, default=8, help="pairs of test images, one row each (default: 8)"
    )
    parser.add_argument(
        "--steps", type=int, default=10, help="images along each line, ends included (default: 10)"
    )


def _loaded(args, encodes: bool = True):
    """(config, model) of the run; one line when its model has no latent space, or (with
    ``encodes``) no encoder."""
    from robustvae.cli.common import note_replaced
    from robustvae.models.latent import Encoding, Generative
    from robustvae.training import load_run
    from robustvae.training.distributed import pick_device

    config, model = load_run(args.run_dir, args.checkpoint, pick_device(args.device))
    if not isinstance(model, Generative):
        raise ValueError(f"{args.run_dir} holds a {config.kind!r} model, which has no latent space")
    if encodes and not isinstance(model, Encoding):
        raise ValueError(f"{args.run_dir} holds a {config.kind!r} model, which has no encoder")
    if args.out is not None:  # the run's own pictures are its to redraw; another file is not
        note_replaced([args.out])
    return config, model


def _run_sample(args) -> int:
    from robustvae.evaluation.autoencoder_pictures import write_samples

    _, model = _loaded(args, encodes=False)
    print(write_samples(model, args.out or args.run_dir / "samples.png", args.n, args.seed))
    return 0


def _test_images(config):
    from robustvae.kinds import get_kind

    return get_kind(config.kind).load_data(config)[1].images


def _run_reconstruct(args) -> int:
    from robustvae.evaluation.autoencoder_pictures import write_reconstructions

    config, model = _loaded(args)
    out = args.out or args.run_dir / "reconstructions.png"
    print(write_reconstructions(model, _test_images(config)[:32], out))
    return 0


def _run_interpolate(args) -> int:
    from robustvae.evaluation.autoencoder_pictures import write_interpolations

    config, model = _loaded(args)
    out = args.out or args.run_dir / "interpolations.png"
    print(write_interpolations(model, _test_images(config), out, args.pairs, args.steps))
    return 0


def add(subparsers) -> None:
    _add_sample(subparsers)
    _add_reconstruct(subparsers)
    _add_interpolate(subparsers)
