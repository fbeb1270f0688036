"""The ``robustvae`` command line: one subcommand per job.

    robustvae train --out RUN_DIR [--config run.toml] [--loss logcosh --loss-param a=100 …]
    robustvae sample | reconstruct | interpolate RUN_DIR     PNG grids from a trained run
    robustvae demo [--out DIR]        the main job: l2 against logcosh VAEs on mnist-5k
    robustvae data download mnist     fetch MNIST (checksums verified)
    robustvae gallery [--out DIR]     plot every registered loss, its gradient, and the
                                      general distribution (PNG files)

Each subcommand is an ``_add_<name>(subparsers)`` function that declares its arguments and
sets ``handler`` to a ``_run_<name>(args) -> int`` function; add it to ``SUBCOMMANDS``. Errors
a user can fix (``ValueError``, ``OSError``) print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
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


# ----------------------------------------------------------------------------- train


def _parse_value(text: str):
    """A CLI value as TOML would read it: numbers, booleans, else the string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    import dataclasses

    from robustvae.training import RunConfig
    from robustvae.training.config import FIELD_HELP

    parser = subparsers.add_parser(
        "train",
        help="train a VAE or WAE with any reconstruction loss",
        description=(
            "Train a model and write checkpoints, metrics.jsonl, TensorBoard logs and sample, "
            "reconstruction and interpolation grids into --out. Settings come from --config "
            "(TOML, keys as below with underscores), then from the flags."
        ),
    )
    parser.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run directory")
    parser.add_argument("--config", type=Path, help="a TOML file of run settings")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR's latest")
    defaults = RunConfig()
    hints = typing.get_type_hints(RunConfig)
    for f in dataclasses.fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if f.name == "loss_params":
            parser.add_argument(
                "--loss-param",
                dest="loss_params",
                action="append",
                metavar="KEY=VALUE",
                help="a loss parameter, e.g. --loss-param a=100 (repeatable)",
            )
        elif isinstance(default, bool):
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{FIELD_HELP.get(f.name, '')} (default: {default})",
            )
        else:
            kind = next(
                t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None)
            )
            parser.add_argument(
                flag,
                dest=f.name,
                type=kind,
                default=None,
                help=f"{FIELD_HELP.get(f.name, '')} (default: {default})",
            )
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    import dataclasses

    from robustvae.outputs import write_all
    from robustvae.training import RunConfig, TrainingDiverged, train
    from robustvae.training.trainer import load_data

    settings = {}
    saved = args.out / "config.json"
    if args.resume and saved.exists():  # resume from the run's own settings, then override
        settings = json.loads(saved.read_text())
    if args.config:
        settings.update(RunConfig.from_toml(args.config).to_dict())
    for f in dataclasses.fields(RunConfig):
        value = getattr(args, f.name)
        if value is None:
            continue
        if f.name == "loss_params":
            value = {**settings.get("loss_params", {}), **_key_values(value, "--loss-param")}
        settings[f.name] = value
    config = RunConfig.from_dict(settings)
    try:
        result = train(config, args.out, resume=args.resume)
    except TrainingDiverged as error:
        print(f"{PROG} train: diverged: {error}", file=sys.stderr)
        return 3
    if not result.is_main:
        return 0  # DDP: rank 0 reports and draws
    if result.metrics:
        last = result.metrics[-1]
        print(
            f"epoch {last['epoch']}: "
            + ", ".join(f"test {k} {v:.4g}" for k, v in last["test"].items())
        )
    _, test_set = load_data(config)
    for path in write_all(result.model, test_set.images, args.out):
        print(path)
    return 0


# ----------------------------------------------------------------------------- sample etc.


def _add_run_command(subparsers, name: str, help: str, handler) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help, description=help)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a directory made by train")
    parser.add_argument("--out", type=Path, help="PNG file (default: RUN_DIR/<name>.png)")
    parser.add_argument("--checkpoint", choices=("best", "latest"), default="best")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.set_defaults(handler=handler)
    return parser


def _add_sample(subparsers) -> None:
    parser = _add_run_command(
        subparsers, "sample", "decode samples of the prior into a PNG grid", _run_sample
    )
    parser.add_argument("-n", type=int, default=64, help="number of samples (default: 64)")
    parser.add_argument("--seed", type=int, default=0)


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
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)


def _loaded(args):
    from robustvae.training import load_run
    from robustvae.training.distributed import pick_device

    config, model = load_run(args.run_dir, args.checkpoint, pick_device(args.device))
    return config, model


def _run_sample(args) -> int:
    from robustvae.outputs import write_samples

    _, model = _loaded(args)
    print(write_samples(model, args.out or args.run_dir / "samples.png", args.n, args.seed))
    return 0


def _test_images(config):
    from robustvae.training.trainer import load_data

    return load_data(config)[1].images


def _run_reconstruct(args) -> int:
    from robustvae.outputs import write_reconstructions

    config, model = _loaded(args)
    out = args.out or args.run_dir / "reconstructions.png"
    print(write_reconstructions(model, _test_images(config)[:32], out))
    return 0


def _run_interpolate(args) -> int:
    from robustvae.outputs import write_interpolations

    config, model = _loaded(args)
    out = args.out or args.run_dir / "interpolations.png"
    print(write_interpolations(model, _test_images(config), out, args.pairs, args.steps))
    return 0


# ----------------------------------------------------------------------------- compare


def _add_grid_arguments(parser) -> None:
    """EXPERIMENT, --out, --set and --only: which grid, where, and which of its cells."""
    parser.add_argument("experiment", type=Path, metavar="EXPERIMENT")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/<file name>")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a run setting for every cell, e.g. --set epochs=1 (repeatable); changes cell "
        "results, so use a fresh --out",
    )
    parser.add_argument("--only", metavar="PATTERN", help="the cells whose id matches")


def _add_compare(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="train and evaluate every cell of an experiment grid; write results and a report",
        description="Run every cell of EXPERIMENT (a TOML grid, see experiments/*.toml), "
        "skipping finished cells (re-running resumes the grid), evaluate each, and write "
        "OUT/results.csv, OUT/results.md (mean ± std over seeds, % against the baseline) and "
        "OUT/report.html + OUT/report.md (tables, every cell's pictures side by side, training "
        "curves, sweep plots).",
    )
    _add_grid_arguments(parser)
    parser.add_argument("--jobs", type=int, default=1, help="cells run in parallel processes")
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the cells as Ray tasks: 'local' starts a cluster on this machine, else a "
        "cluster address ('auto', 'ray://host:10001'); OUT must be shared by every node",
    )
    parser.add_argument("--images", type=int, help="override [evaluate] images")
    parser.add_argument("--samples", type=int, help="override [evaluate] samples")
    parser.add_argument("--no-fid", dest="fid", action="store_false", default=None, help="skip FID")
    parser.add_argument(
        "--inception", metavar="WEIGHTS", help="also FID in Inception features (local file)"
    )
    parser.set_defaults(handler=_run_compare)


def _key_values(items: list[str], flag: str) -> dict:
    settings = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"{flag} needs KEY=VALUE, got {item!r}")
        settings[key.strip()] = _parse_value(text.strip())
    return settings


def _run_compare(args) -> int:
    from robustvae.experiments import run_experiment

    out = args.out or Path("runs") / args.experiment.stem
    evaluate = {
        k: v
        for k, v in {
            "images": args.images,
            "samples": args.samples,
            "fid": args.fid,
            "inception": args.inception,
        }.items()
        if v is not None
    }
    from robustvae.experiments.runner import CellsFailed

    try:
        run_experiment(
            args.experiment,
            out,
            jobs=args.jobs,
            ray_address=args.ray,
            settings=_key_values(args.settings, "--set"),
            only=args.only,
            evaluate=evaluate,
        )
    except CellsFailed as error:
        print(f"{PROG} compare: {error}", file=sys.stderr)
        return 3
    print((out / "results.md").read_text())
    print(f"report: {out / 'report.html'}")
    return 0


def _add_report(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="results tables and report of the cells of a grid finished so far",
        description="Write OUT/results.csv, results.md, report.html and report.md from the "
        "cells of EXPERIMENT that have finished, training nothing: look at a long grid while "
        "it runs. Takes compare's --out, --set and --only.",
    )
    _add_grid_arguments(parser)
    parser.set_defaults(handler=_run_report)


def _run_report(args) -> int:
    from robustvae.experiments import load_experiment, report_experiment

    out = args.out or Path("runs") / args.experiment.stem
    settings = _key_values(args.settings, "--set")
    experiment = report_experiment(args.experiment, out, settings, args.only)
    total = len(load_experiment(args.experiment, settings, args.only).cells)
    print((out / "results.md").read_text())
    print(f"{len(experiment.cells)} of {total} cells finished; report: {out / 'report.html'}")
    return 0


# ----------------------------------------------------------------------------- evaluate


def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="sharpness, FID, SSIM, PSNR, errors and ELBO of a trained run",
        description="Evaluate RUN_DIR's best checkpoint on its dataset's test split and write "
        "RUN_DIR/evaluation.json (see robustvae.metrics.evaluate for the recipe).",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--images", type=int, default=1000, help="images for sharpness etc.")
    parser.add_argument("--samples", type=int, default=10000, help="generated samples for FID")
    parser.add_argument("--no-fid", dest="fid", action="store_false")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--inception", metavar="WEIGHTS", help="also FID in Inception features (local file)"
    )
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args) -> int:
    from robustvae.metrics.evaluate import evaluate_run

    results = evaluate_run(
        args.run_dir,
        args.images,
        args.samples,
        args.fid,
        args.device,
        inception=args.inception,
    )
    for key, value in results.items():
        print(f"{key}: {value}")
    return 0


# ----------------------------------------------------------------------------- data


def _add_data(subparsers) -> None:
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
    download.set_defaults(handler=_run_download)


def _run_download(args) -> int:
    from robustvae.data import download_mnist

    kwargs = {"base_url": args.url} if args.url else {}
    for path in download_mnist(args.dest, force=args.force, **kwargs):
        print(path)
    return 0


# ----------------------------------------------------------------------------- demo


def _add_demo(subparsers) -> None:
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
    parser.set_defaults(handler=_run_demo)


def _run_demo(args) -> int:
    from robustvae.demo import run_demo

    print(run_demo(args.out, args.epochs, args.progress))
    return 0


# ----------------------------------------------------------------------------- main

SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_train,
    _add_sample,
    _add_reconstruct,
    _add_interpolate,
    _add_evaluate,
    _add_compare,
    _add_report,
    _add_demo,
    _add_data,
    _add_gallery,
)


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
