"""``robustvae restore``: Noise2Noise restoration with any loss.

    robustvae restore corrupt IN OUT --noise text --level 0.3 --seed 0
    robustvae restore train --out RUN --loss logcosh --loss-param a=10 …
    robustvae restore apply RUN IN OUT [--tile 512]
    robustvae restore apply --model text IN OUT      (a shipped model; --model alone lists them)
    robustvae restore evaluate RUN… [--test DIR] --out DIR

IN and OUT are image files, or folders (every image under IN, written under OUT with the same
relative names as PNG).
"""

from __future__ import annotations

import sys
from pathlib import Path

from robustvae.cli.common import add_tile_option, load_kind_run, tile_of


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="image restoration: corrupt, train, apply and evaluate Noise2Noise restorers",
        description="Noise2Noise image restoration with any loss: corrupt, train, apply, evaluate.",
    )
    commands = parser.add_subparsers(dest="restore_command", metavar="COMMAND", required=True)
    _add_corrupt(commands)
    _add_train(commands)
    _add_apply(commands)
    _add_evaluate(commands)


def _add_corrupt(commands) -> None:
    from robustvae.restoration.corruption import LEVELS, LIMITS, NOISES

    defaults = ", ".join(f"{n} {LEVELS[n][2]:.4g}" for n in NOISES)
    limits = ", ".join(
        f"{n} {'(' if n == 'poisson' else '['}{lo:g}, {hi:g}]" for n, (lo, hi) in LIMITS.items()
    )
    parser = commands.add_parser(
        "corrupt",
        help="write corrupted copies of images (to build test sets)",
        description=(
            "Corrupt an image, or every image in a folder, deterministically: the corruption "
            "of an image depends only on --seed and its name (its path relative to IN for a "
            "folder; its file name otherwise), as restore evaluate corrupts its test images."
        ),
    )
    parser.add_argument("input", type=Path, metavar="IN", help="an image file or a folder")
    parser.add_argument("output", type=Path, metavar="OUT", help="a PNG file or a folder")
    parser.add_argument("--noise", choices=NOISES, default="text", help="default: text")
    parser.add_argument(
        "--level",
        "--coverage",
        type=float,
        help=f"text coverage, gaussian σ (of 1) or poisson λ (defaults: {defaults}; "
        f"limits: {limits})",
    )
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.set_defaults(handler=_run_corrupt)


def _add_train(commands) -> None:
    from robustvae.cli.train import add_setting_flags

    parser = commands.add_parser(
        "train",
        help="train a restorer (robustvae train --kind restore, on the bundled photos)",
        description=(
            "Train a Noise2Noise restorer: as robustvae train with kind 'restore' and dataset "
            "'photos' unless given (--dataset folder --data-root DIR for your own images)."
        ),
    )
    add_setting_flags(parser, ["restore"], kind_flag=False)
    parser.set_defaults(handler=_run_train)


def _add_run_options(parser) -> None:
    parser.add_argument(
        "--checkpoint", choices=("best", "latest"), default="best", help="default: best"
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")


def _add_apply(commands) -> None:
    parser = commands.add_parser(
        "apply",
        help="restore images of any size with a trained or a shipped restorer",
        usage="robustvae restore apply [-h] [options] (RUN | --model NAME) IN OUT",
        description=(
            "Restore an image, or every image in a folder, with a trained run (RUN) or a model "
            "shipped with robustvae (--model NAME; --model alone lists them). Images are "
            "padded to multiples of 32; large ones are restored in tiles with enough overlap "
            "that the result equals one pass to float rounding. The image must have the "
            "channels the model was trained on (1 or 3; alpha is dropped)."
        ),
    )
    parser.add_argument(
        "--model",
        nargs="?",
        const="",
        metavar="NAME",
        help="a shipped restorer instead of RUN (text, gaussian); alone: list them",
    )
    parser.add_argument(
        "--before-after",
        action="store_true",
        help="also write OUT-before-after.png: the input and its restoration side by side",
    )
    parser.add_argument(
        "paths",
        type=Path,
        nargs="*",
        metavar="RUN IN OUT",
        help="a restore run directory (not with --model), an image file or a folder, and a "
        "PNG file or a folder",
    )
    add_tile_option(parser, "images")
    _add_run_options(parser)
    parser.set_defaults(handler=_run_apply)


def _add_evaluate(commands) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="SSIM and PSNR of every test image for several runs, with Fig. 10/11 plots",
        description=(
            "Corrupt the test images once (the first run's noise at its test level, seeded by "
            "--seed and each image's name), restore them with every run, and write "
            "per_image.csv, summary.csv, ssim-scatter.png (Fig. 10: log-cosh, or the first "
            "run, against each other run) and examples.png (Fig. 11) into --out. Each run after "
            "the first is compared with the first image by image: on how many images its SSIM "
            "is higher (with a Clopper-Pearson 95% interval) and Wilcoxon's signed-rank p."
        ),
    )
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN", help="restore runs")
    parser.add_argument(
        "--test",
        type=Path,
        help="a folder of clean test images (default: the first run's test split)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSVs and plots")
    parser.add_argument("--level", type=float, help="the corruption level (default: the run's)")
    parser.add_argument("--images", type=int, help="use only the first N test images")
    parser.add_argument("--seed", type=int, default=0, help="seeds the corruption (default: 0)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.set_defaults(handler=_run_evaluate)


# ----------------------------------------------------------------------------- handlers


def _pairs(input: Path, output: Path) -> list[tuple[str, Path, Path]]:
    """(name, source, destination) for a file or every image under a folder; says which
    destinations exist already."""
    from robustvae.cli.common import note_replaced
    from robustvae.data.images import list_folder

    if input.is_dir():
        if output.exists() and not output.is_dir():
            raise ValueError(f"{output}: IN is a folder, so OUT must be a folder")
        sources = list_folder(input)
        if not sources:
            raise ValueError(f"{input}: no images found")
        pairs = [(s.name, s.path, (output / s.name).with_suffix(".png")) for s in sources]
        first: dict[Path, Path] = {}
        for _, source, destination in pairs:
            if destination in first:
                raise ValueError(
                    f"{first[destination]} and {source} would both be written to {destination}; "
                    "rename one of them"
                )
            first[destination] = source
        note_replaced([destination for _, _, destination in pairs])
        return pairs
    if not input.exists():
        raise FileNotFoundError(f"{input}: no such file or folder")
    if output.is_dir():
        output = output / (input.stem + ".png")
    note_replaced([output])
    return [(input.name, input, output)]


def _run_corrupt(args) -> int:
    import torch

    from robustvae.data.image_file import bit_depth, read_image, write_image
    from robustvae.evaluation.restoration import test_generator
    from robustvae.restoration.corruption import LEVELS, check_level, corrupt

    level = LEVELS[args.noise][2] if args.level is None else args.level
    check_level(args.noise, level, "--level")
    for name, source, destination in _pairs(args.input, args.output):
        image = read_image(source)
        noisy = corrupt(
            image[None], args.noise, torch.tensor([level]), test_generator(name, args.seed)
        )
        bits = bit_depth(source) if image.shape[0] == 1 else 8
        print(write_image(destination, noisy[0], bits))
    return 0


def _run_train(args) -> int:
    from robustvae.cli import train

    return train.run(args, base={"kind": "restore"})


def _load(args, run: Path | None):
    from robustvae.restoration import shipped
    from robustvae.training.distributed import pick_device

    device = pick_device(args.device)
    if args.model:
        return (*shipped.load(args.model, device), device)
    return (*load_kind_run(run, "restore", args.checkpoint, device, "a restorer"), device)


def _apply_paths(args) -> tuple[str, Path | None, Path, Path] | None:
    """(what restores, in words; the run directory, None for a shipped model; IN; OUT), or
    None when --model alone asks for the list of shipped models."""
    if args.model == "" and not args.paths:
        return None
    if args.model is not None:
        if not args.model:
            raise ValueError("--model needs a NAME before IN OUT (--model alone lists them)")
        if len(args.paths) != 2:
            raise ValueError(f"with --model, give IN and OUT; got {len(args.paths)} path(s)")
        return f"shipped model {args.model!r}", None, *args.paths
    if len(args.paths) != 3:
        raise ValueError(f"give RUN IN OUT (or --model NAME IN OUT); got {len(args.paths)} path(s)")
    run, source, destination = args.paths
    return f"model in {run}", run, source, destination


def _run_apply(args) -> int:
    import torch

    from robustvae.cli.common import check_finite_output
    from robustvae.data.image_file import bit_depth, read_image, write_image
    from robustvae.restoration import shipped
    from robustvae.tiling import infer

    found = _apply_paths(args)
    if found is None:
        print(shipped.listing())
        return 0
    model_name, run, source_path, output_path = found
    tile = tile_of(args)
    pairs = _pairs(source_path, output_path)
    config, task, device = _load(args, run)
    for _, source, destination in pairs:
        image = read_image(source)
        if image.shape[0] != task.channels:
            raise ValueError(
                f"{source} has {image.shape[0]} channel(s), the {model_name} restores "
                f"{task.channels}-channel images; convert it first (e.g. to "
                f"{'RGB' if task.channels == 3 else 'greyscale'})"
            )
        output = infer(task.net, image.to(device), tile).cpu()
        check_finite_output(output, f"the {model_name}", source)
        bits = bit_depth(source) if image.shape[0] == 1 else 8
        print(write_image(destination, output, bits))
        if args.before_after:
            both = torch.cat([image, output.clamp(0, 1)], dim=-1)  # input | restored
            print(write_image(destination.with_name(f"{destination.stem}-before-after.png"), both))
    return 0


def _run_evaluate(args) -> int:
    from robustvae.evaluation.restoration import compare_runs
    from robustvae.restoration.data import load_folder, load_images
    from robustvae.training import RunConfig, RunDir
    from robustvae.training.distributed import pick_device

    for run in args.run_dirs:
        if RunDir(run).saved_settings() is None:
            raise ValueError(f"{run} holds no run (no config.json)")
    if args.test is not None:
        images = load_folder(args.test, "all")
    else:
        config = RunConfig.from_dict(RunDir(args.run_dirs[0]).saved_settings())
        images = load_images(config.dataset, "test", config.data_root, config.test_fraction)
    if args.images is not None:
        images = images[: args.images]
    device = str(pick_device(args.device))
    from robustvae.cli.common import note_replaced

    outputs = ("per_image.csv", "per_crop.csv", "summary.csv", "ssim-scatter.png", "examples.png")
    note_replaced([args.out / name for name in outputs])
    _, summary = compare_runs(args.run_dirs, images, args.out, device, args.seed, level=args.level)
    width = max(len(row["run"]) for row in summary)
    first = summary[1]["run"]
    print(f"{'run':<{width}}  {'SSIM':>15}  {'PSNR (dB)':>13}  images  SSIM against {first}")
    for row in summary:
        ssim = f"{row['ssim']:.4f} ± {row['ssim_std']:.3f}"
        psnr = f"{row['psnr']:.2f} ± {row['psnr_std']:.2f}"
        line = f"{row['run']:<{width}}  {ssim:>15}  {psnr:>13}  {row['images']:>6}"
        if "against" in row:
            p = "all tie" if row["wilcoxon_p"] is None else f"Wilcoxon p = {row['wilcoxon_p']:.2g}"
            line += (
                f"  better on {row['better_on']} of {row['compared_on']} "
                f"[{row['better_low']:.2f}, {row['better_high']:.2f}], {p}"
            )
        print(line)
    for name in ("per_image.csv", "summary.csv", "ssim-scatter.png", "examples.png"):
        if (args.out / name).exists():
            print(args.out / name, file=sys.stderr)
    return 0
