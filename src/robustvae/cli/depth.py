"""``robustvae depth``: self-supervised stereo disparity with any photometric loss.

robustvae depth train --out RUN --loss general --loss-param alpha=0 --loss-param scale=0.01
robustvae depth evaluate RUN… [--scene motorcycle --scene aloe | --scene DIR] --out DIR
robustvae depth predict RUN left.png right.png out.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from robustvae.cli.common import add_tile_option, load_kind_run, tile_of


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "depth",
        help="stereo depth: train, evaluate and apply self-supervised disparity nets",
        description="Self-supervised stereo disparity with any photometric loss.",
    )
    commands = parser.add_subparsers(dest="depth_command", metavar="COMMAND", required=True)
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)


def _add_train(commands) -> None:
    from robustvae.cli.train import add_setting_flags

    parser = commands.add_parser(
        "train",
        help="train a disparity net (robustvae train --kind depth, on the motorcycle scene)",
        description=(
            "Train a self-supervised disparity net: as robustvae train with kind 'depth' and "
            "dataset 'motorcycle' unless given ('aloe', or 'stereo-folder' with --data-root)."
        ),
    )
    add_setting_flags(parser, ["depth"], kind_flag=False)
    parser.set_defaults(handler=_run_train)


def _add_evaluate(commands) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="depth-estimation errors of runs on whole scenes, as CSV, Markdown and PNGs",
        description=(
            "Score each run's disparity on whole scenes against their ground truth: AbsRel, "
            "SqRel, RMS, logRMS, δ<1.25, δ<1.25², δ<1.25³ and their Avg (on known pixels "
            "up to the run's max_disparity). Writes metrics.csv, metrics.md and one "
            "<run>-disparity.png per run into --out."
        ),
    )
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN", help="depth runs")
    parser.add_argument(
        "--scene",
        action="append",
        help="motorcycle | aloe | a folder of pairs (repeatable; default: motorcycle and aloe)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the tables and PNGs")
    parser.add_argument(
        "--median-scaling", action="store_true", help="scale predictions by median(gt)/median(pred)"
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.set_defaults(handler=_run_evaluate)


def _add_predict(commands) -> None:
    parser = commands.add_parser(
        "predict",
        help="the disparity of a rectified pair of any size",
        description=(
            "Predict the left view's disparity. OUT.png is a 16-bit PNG in KITTI's encoding "
            "(disparity × 256); OUT.pfm is float32. Beside it, OUT-colour.png shows the "
            "disparity colour-mapped over [0, max_disparity], for looking at. Large pairs run "
            "in exact tiles. A warning says when many pixels predict max_disparity: the pair's "
            "disparities may exceed what the run can predict."
        ),
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN", help="a depth run directory")
    parser.add_argument("left", type=Path, metavar="LEFT", help="the left view")
    parser.add_argument("right", type=Path, metavar="RIGHT", help="the right view")
    parser.add_argument("output", type=Path, metavar="OUT", help="a .png or .pfm file")
    add_tile_option(parser, "pairs")
    parser.add_argument(
        "--colour-bar", action="store_true", help="OUT-colour.png as a figure with a colour bar"
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.set_defaults(handler=_run_predict)


# ----------------------------------------------------------------------------- handlers


def _run_train(args) -> int:
    from robustvae.cli import train

    return train.run(args, base={"kind": "depth"})


def _load(run_dir: Path, device):
    return load_kind_run(run_dir, "depth", "best", device, "a depth net")


def _scenes(names: list[str] | None):
    from robustvae.depth.data import SCENES, load_folder, load_scene

    scenes = []
    for name in names or list(SCENES):
        if name in SCENES:
            scenes.append(load_scene(name))
        else:
            found = [s for s in load_folder(name) if s.disparity is not None]
            if not found:
                raise ValueError(f"{name}: no pair with ground-truth disparity to score")
            scenes += found
    return scenes


def _run_evaluate(args) -> int:
    from robustvae.cli.common import note_replaced
    from robustvae.depth.metrics import METRICS, depth_metrics, valid_mask
    from robustvae.evaluation.depth import predict
    from robustvae.evaluation.depth_pictures import disparity_figure
    from robustvae.evaluation.labels import run_label, unique_labels
    from robustvae.experiments.grid import slug
    from robustvae.experiments.results import Table, markdown_table
    from robustvae.files import atomic_write_text, write_csv
    from robustvae.training.distributed import pick_device

    device = pick_device(args.device)
    scenes = _scenes(args.scene)
    loaded = [_load(run, device) for run in args.run_dirs]
    labels = unique_labels([run_label(config) for config, _ in loaded], args.run_dirs)
    names = unique_labels([Path(run).name for run in args.run_dirs], args.run_dirs)
    figures = [args.out / f"{slug(name)}-disparity.png" for name in names]
    note_replaced([args.out / "metrics.csv", args.out / "metrics.md", *figures])
    rows = []
    for run, label, name, (config, task) in zip(args.run_dirs, labels, names, loaded, strict=True):
        predicted = []
        for scene in scenes:
            disparity = predict(task, scene, device)
            predicted.append((scene, disparity))
            mask = valid_mask(scene.disparity, 0.0, float(config.model.max_disparity))
            try:
                scores = depth_metrics(disparity, scene.disparity, mask, args.median_scaling)
            except ValueError as error:
                raise ValueError(f"scene {scene.name!r}: {error}") from None
            rows.append({"run": str(run), "label": label, "scene": scene.name, **scores})
        figure = args.out / f"{slug(name)}-disparity.png"
        args.out.mkdir(parents=True, exist_ok=True)
        disparity_figure(predicted, float(config.model.max_disparity), figure)
        print(figure, file=sys.stderr)
    write_csv(args.out / "metrics.csv", rows)
    body = [[row["label"], row["scene"], *(f"{row[k]:.4g}" for k in METRICS)] for row in rows]
    table = markdown_table(Table(["run", "scene", *METRICS], body, label_columns=2))
    atomic_write_text(args.out / "metrics.md", table)
    print(table, end="")
    return 0


def _run_predict(args) -> int:
    import torch

    from robustvae.cli.common import check_finite_output, note_replaced
    from robustvae.data.image_file import read_image, write_disparity
    from robustvae.evaluation.depth import margin
    from robustvae.evaluation.depth_pictures import colour_disparity
    from robustvae.tiling import infer
    from robustvae.training.distributed import pick_device

    tile = tile_of(args)
    if args.output.suffix.lower() not in (".png", ".pfm"):
        raise ValueError(f"{args.output}: write a .png (16-bit, KITTI's ×256) or a .pfm")
    device = pick_device(args.device)
    _, task = _load(args.run_dir, device)
    left, right = read_image(args.left), read_image(args.right)
    if left.shape[1:] != right.shape[1:]:  # grey and colour views may pair: both go in as RGB
        raise ValueError(
            f"{args.left} is {left.shape[2]}×{left.shape[1]} but {args.right} is "
            f"{right.shape[2]}×{right.shape[1]}: a rectified pair has one size"
        )
    pair = torch.cat([left.expand(3, -1, -1), right.expand(3, -1, -1)]).to(device)
    disparity = infer(task.eval(), pair, tile, margin(task))[0].cpu()
    check_finite_output(disparity, args.run_dir, args.left)
    top = float(task.config.max_disparity)
    _warn_if_saturated(disparity, top)
    colour = args.output.with_name(f"{args.output.stem}-colour.png")
    note_replaced([args.output, colour])
    print(write_disparity(args.output, disparity))
    print(colour_disparity(disparity, top, colour, args.colour_bar))
    return 0


#: A prediction at ≥ this share of max_disparity counts as pinned at the top of its range.
SATURATED = 0.98


def _warn_if_saturated(disparity, max_disparity: float, share: float = 0.05) -> None:
    """A warning when many pixels predict the largest disparity the net can: the pair's
    disparities probably exceed max_disparity (a full-size pair given to a net trained on
    smaller ones)."""
    import warnings

    pinned = (disparity >= SATURATED * max_disparity).float().mean().item()
    if pinned > share:
        warnings.warn(
            f"{pinned:.0%} of the pixels predict the largest disparity the run can "
            f"({max_disparity:g} px): this pair's disparities may exceed it; shrink the views "
            "or train with a larger --max-disparity",
            stacklevel=2,
        )
