"""``robustvae compare`` (train and evaluate a grid), ``report`` (tables and report of its
finished cells) and ``evaluate`` (one run)."""

from __future__ import annotations

import sys
from pathlib import Path

from robustvae.cli.common import PROG, key_values
from robustvae.evaluation.settings import DEFAULTS
from robustvae.experiments.grid import MAX_CELLS


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
    parser.add_argument(
        "--max-cells",
        type=int,
        default=MAX_CELLS,
        metavar="N",
        help=f"refuse a grid of more than N cells (default {MAX_CELLS}): a typo in an axis "
        "can make millions",
    )


def add(subparsers) -> None:
    _add_compare(subparsers)
    _add_report(subparsers)
    _add_evaluate(subparsers)


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
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the cells (with their epochs so far), their count and the training time "
        "left, measured from the cells trained so far; train nothing",
    )
    parser.add_argument("--images", type=int, help="override [evaluate] images")
    parser.add_argument("--samples", type=int, help="override [evaluate] samples")
    parser.add_argument("--no-fid", dest="fid", action="store_false", default=None, help="skip FID")
    parser.add_argument(
        "--inception", metavar="WEIGHTS", help="also FID in Inception features (local file)"
    )
    parser.set_defaults(handler=_run_compare)


def _run_compare(args) -> int:
    from robustvae.experiments import run_experiment

    out = args.out or Path("runs") / args.experiment.stem
    if args.list:
        return _list_cells(args, out)
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
            settings=key_values(args.settings, "--set"),
            only=args.only,
            evaluate=evaluate,
            max_cells=args.max_cells,
        )
    except CellsFailed as error:
        print(f"{PROG} compare: {error}", file=sys.stderr)
        return 3
    print((out / "results.md").read_text())
    print(f"report: {out / 'report.html'}")
    return 0


def _list_cells(args, out: Path) -> int:
    from robustvae.experiments.runner import plan_experiment, training_time_left
    from robustvae.training.progress import format_duration

    settings = key_values(args.settings, "--set")
    cells = plan_experiment(args.experiment, out, settings, args.only, args.max_cells)
    for cell in cells:
        print(f"{cell.id}  ({cell.epochs_done}/{cell.epochs} epochs)")
    left = training_time_left(cells)
    estimate = (
        f"about {format_duration(left)} of training left at the pace measured so far"
        if left is not None
        else "no estimate yet: no cell has trained an epoch (time one with --only ID)"
    )
    print(f"{len(cells)} cells in {out}; {estimate}")
    return 0


def _add_report(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="results tables and report of the cells of a grid finished so far",
        description="Write OUT/results.csv, results.md, report.html and report.md from the "
        "cells of EXPERIMENT that have finished, training nothing: look at a long grid while "
        "it runs. Takes compare's --out, --set and --only. With --results CSV it prints the "
        "Markdown table of committed results files (docs/results/) and writes nothing, "
        "unless --merge-into names a file for their rows.",
    )
    _add_grid_arguments(parser)
    parser.add_argument(
        "--results",
        type=Path,
        nargs="+",
        metavar="CSV",
        help="print the table of these results.csv files (e.g. docs/results/quick-mnist5k.csv; "
        "several: a grid run in parts)",
    )
    parser.add_argument(
        "--merge-into",
        type=Path,
        metavar="CSV",
        help="with --results: write their rows, in grid order, into this one results.csv",
    )
    parser.set_defaults(handler=_run_report)


def _run_report(args) -> int:
    from robustvae.experiments import load_experiment, report_experiment

    settings = key_values(args.settings, "--set")
    if args.merge_into is not None and args.results is None:
        raise ValueError("--merge-into takes the rows of --results CSV files")
    if args.results is not None:  # committed results.csv files: print their table
        from robustvae.experiments.results import merge_results, table_of_rows
        from robustvae.files import write_csv

        experiment = load_experiment(args.experiment, settings, max_cells=args.max_cells)
        rows = merge_results(experiment, args.results)
        if args.merge_into is not None:
            write_csv(args.merge_into, rows)
        print(table_of_rows(experiment, rows), end="")
        return 0
    out = args.out or Path("runs") / args.experiment.stem
    experiment = report_experiment(args.experiment, out, settings, args.only, args.max_cells)
    total = len(load_experiment(args.experiment, settings, args.only, args.max_cells).cells)
    print((out / "results.md").read_text())
    print(f"{len(experiment.cells)} of {total} cells finished; report: {out / 'report.html'}")
    return 0


def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="the kind's metrics of a trained run (VAE/WAE: sharpness, FID, SSIM, …)",
        description="Evaluate RUN_DIR's best checkpoint on its dataset's test split with its "
        "kind's evaluator and write RUN_DIR/evaluation.json (see robustvae.evaluation).",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--images",
        type=int,
        default=DEFAULTS["images"],
        help="test images for sharpness, SSIM and errors (default: %(default)s)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=DEFAULTS["samples"],
        help="generated samples for FID (default: %(default)s)",
    )
    parser.add_argument("--no-fid", dest="fid", action="store_false", help="skip FID")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.add_argument(
        "--inception", metavar="WEIGHTS", help="also FID in Inception features (local file)"
    )
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args) -> int:
    from robustvae.evaluation import evaluate_run

    results = evaluate_run(
        args.run_dir,
        args.device,
        images=args.images,
        samples=args.samples,
        fid=args.fid,
        inception=args.inception,
    )
    for key, value in results.items():
        print(f"{key}: {value}")
    return 0
