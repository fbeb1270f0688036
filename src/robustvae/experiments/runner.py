"""``robustvae compare EXPERIMENT.toml``: train and evaluate every cell of a grid, skipping
finished ones (re-running resumes the grid), in parallel processes with ``jobs`` > 1 or on a
Ray cluster with ``ray_address``, then write results.csv, results.md and the report.

A cell is finished when its ``evaluation.json`` exists and records the [evaluate] settings
asked for (other settings: the cell is evaluated again, not retrained). It is written last,
after training and the cell's pictures (samples, reconstructions, interpolations). A cell
directory trained with other run settings is refused. A cell that raises is reported and the
grid goes on; the tables are written from every finished cell, then ``CellsFailed`` is raised.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from robustvae.experiments.executors import in_processes, on_ray, outcome
from robustvae.experiments.grid import MAX_CELLS, Cell, Experiment, load_experiment
from robustvae.experiments.report import write_report
from robustvae.experiments.results import write_results
from robustvae.training.progress import format_duration


def run_cell(cell: Cell, cell_dir: str, evaluate: dict, threads: int | None = None) -> str:
    """Train (or resume), draw and evaluate one cell in ``cell_dir``; return its id."""
    import torch

    from robustvae.evaluation import draw_run, evaluate_run
    from robustvae.training import RunDir, train
    from robustvae.training.distributed import pick_device

    if threads:
        torch.set_num_threads(threads)
    run = Path(cell_dir)
    if is_finished(cell, run, evaluate):
        return cell.id
    train(cell.config, run, resume=RunDir(run).has_checkpoint())  # a trained cell: a no-op
    device = str(pick_device(cell.config.device))
    draw_run(run, device)
    evaluate_run(run, device, **evaluate)
    return cell.id


def is_finished(cell: Cell, run: Path, evaluate: dict) -> bool:
    """Trained for the cell's epochs, drawn and evaluated with these [evaluate] settings."""
    from robustvae.evaluation import is_evaluated
    from robustvae.training import RunDir

    metrics = RunDir(run).read_metrics()
    trained = bool(metrics) and metrics[-1]["epoch"] >= cell.config.epochs
    return trained and is_evaluated(run, **evaluate)


class CellsFailed(RuntimeError):
    """Some cells of a grid raised; the others finished and their results were written."""


class GridProgress:
    """One line per finished cell: count, id, elapsed time and an estimate of what is left.

    The estimate is the training left in the unfinished cells at their measured pace per
    epoch (``todo_left``), shared among ``slots`` parallel runs; before any epoch is measured
    it is the mean time per finished cell so far.
    """

    def __init__(
        self,
        total: int,
        done: int,
        report: Callable[[str], Any],
        todo_left: Callable[[set[str]], float | None] = lambda finished: None,
        slots: int = 1,
    ):
        self.total, self.done, self.report = total, done, report
        self.todo_left, self.slots = todo_left, max(1, slots)
        self.started, self.ran, self.finished_ids = time.monotonic(), 0, set()

    def finished(self, cell_id: str, error: str | None = None) -> None:
        self.done += 1
        self.ran += 1
        self.finished_ids.add(cell_id)
        elapsed = time.monotonic() - self.started
        training = self.todo_left(self.finished_ids) if self.done < self.total else 0.0
        if training is None:
            left = elapsed / self.ran * (self.total - self.done)
        else:
            left = training / min(self.slots, self.total - self.done or 1)
        status = f"FAILED {cell_id}: {error}" if error else cell_id
        self.report(
            f"[{self.done}/{self.total}] {status}  "
            f"({format_duration(elapsed)} elapsed, ~{format_duration(left)} left)"
        )


PRINT_NOW = functools.partial(print, flush=True)


def run_experiment(
    path: str | Path,
    out_dir: str | Path,
    jobs: int = 1,
    progress: Callable[[str], Any] = PRINT_NOW,
    ray_address: str | None = None,
    settings: dict[str, Any] | None = None,
    only: str | None = None,
    evaluate: dict[str, Any] | None = None,
    max_cells: int = MAX_CELLS,
) -> Experiment:
    """Run the grid in ``path`` under ``out_dir`` (cells/<id>/ per cell).

    ``settings`` apply to every cell and ``only`` filters cells by id (see
    :func:`load_experiment`); ``evaluate`` overrides the file's [evaluate] table.
    """
    experiment = load_experiment(path, settings, only, max_cells)
    experiment.evaluate.update(evaluate or {})
    out_dir = Path(out_dir)
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    dirs = {cell.id: out_dir / "cells" / cell.id for cell in experiment.cells}
    for cell in experiment.cells:
        _check_same_settings(cell, dirs[cell.id])
    todo = [c for c in experiment.cells if not is_finished(c, dirs[c.id], experiment.evaluate)]
    total = len(experiment.cells)
    progress(f"{experiment.name}: {total} cells, {total - len(todo)} already finished")

    def todo_left(finished: set[str]) -> float | None:
        waiting = [c for c in todo if c.id not in finished]
        return training_time_left([planned_cell(c, dirs[c.id]) for c in waiting])

    tracker = GridProgress(total, total - len(todo), progress, todo_left, jobs)
    if ray_address is not None:
        outcomes = on_ray(run_cell, ray_address, todo, dirs, experiment.evaluate, jobs)
    elif jobs > 1:
        outcomes = in_processes(run_cell, todo, dirs, experiment.evaluate, jobs)
    else:
        outcomes = (outcome(run_cell, c, str(dirs[c.id]), experiment.evaluate) for c in todo)
    failed = {}
    for cell_id, error in outcomes:
        tracker.finished(cell_id, error)
        if error is not None:
            failed[cell_id] = error
    # The tables cover every finished cell of the grid, also those outside --only.
    whole = experiment if only is None else load_experiment(path, settings, None, max_cells)
    whole.evaluate.update(evaluate or {})
    shown = [c for c in finished_cells(whole, out_dir) if c.id not in failed]
    if shown:
        missing = missing_cells(whole, shown, out_dir, failed)
        _write_tables_and_report(replace(whole, cells=shown), out_dir, missing)
    if failed:
        listing = "\n".join(f"  {cell_id}: {error}" for cell_id, error in failed.items())
        raise CellsFailed(
            f"{len(failed)} of {total} cells failed (the others' results are written; "
            f"re-running retries the failed ones):\n{listing}"
        )
    return experiment


def report_experiment(
    path: str | Path,
    out_dir: str | Path,
    settings: dict[str, Any] | None = None,
    only: str | None = None,
    max_cells: int = MAX_CELLS,
) -> Experiment:
    """``robustvae report``: results and report of the cells finished so far, training none
    (a long grid can be looked at while it runs). Returns the experiment of those cells."""
    experiment = load_experiment(path, settings, only, max_cells)
    out_dir = Path(out_dir)
    for cell in experiment.cells:
        _check_same_settings(cell, out_dir / "cells" / cell.id)
    finished = finished_cells(experiment, out_dir)
    if not finished:
        raise ValueError(f"{out_dir}: no cell of {experiment.name} has finished yet")
    missing = missing_cells(experiment, finished, out_dir, {})
    experiment = replace(experiment, cells=finished)
    _write_tables_and_report(experiment, out_dir, missing)
    return experiment


def missing_cells(
    experiment: Experiment, shown: list[Cell], out_dir: Path, failed: dict[str, str]
) -> list[str]:
    """A line for each cell of the grid not in the tables (failed, or not finished: its
    epochs so far), and the training time they need at the pace measured so far."""
    ids = {c.id for c in shown}
    waiting = [c for c in experiment.cells if c.id not in ids]
    planned = [planned_cell(c, out_dir / "cells" / c.id) for c in waiting]
    lines = []
    for cell, plan in zip(waiting, planned, strict=True):
        status = failed.get(cell.id)
        lines.append(
            f"{cell.id}: "
            + (f"failed ({status})" if status else f"{plan.epochs_done}/{plan.epochs} epochs")
        )
    done = [planned_cell(c, out_dir / "cells" / c.id) for c in shown]  # their pace counts
    left = training_time_left(planned + done)
    if lines:
        lines.append(
            "training left: "
            + ("unknown (no cell has trained an epoch)" if left is None else format_duration(left))
        )
    return lines


def finished_cells(experiment: Experiment, out_dir: Path) -> list[Cell]:
    """The cells evaluated under ``out_dir`` with their own settings (any [evaluate] ones)."""
    from robustvae.training import RunDir

    return [
        cell
        for cell in experiment.cells
        if RunDir(out_dir / "cells" / cell.id).read_evaluation() is not None
        and not _changed_settings(cell, out_dir / "cells" / cell.id)
    ]


def _write_tables_and_report(
    experiment: Experiment, out_dir: Path, missing: list[str] | None = None
) -> None:
    from robustvae.evaluation import draw_run, evaluator_of_run
    from robustvae.training import RunDir

    rows = []
    for cell in experiment.cells:
        run = RunDir(out_dir / "cells" / cell.id)
        evaluator = evaluator_of_run(run.path)
        if not all((run / f"{panel}.png").exists() for panel in evaluator.panels):  # older
            draw_run(run.path)
        evaluation = run.read_evaluation()
        per_image = [key for key, _ in evaluator.per_image]
        unit = evaluator.per_image_unit
        rows.append({"cell": cell.id, **cell.axes, **_flatten(evaluation, per_image, unit)})
    write_results(experiment, rows, out_dir)
    write_report(experiment, rows, out_dir, missing or [])


def _changed_settings(cell: Cell, run: Path) -> list[tuple[str, Any, Any]]:
    """(setting, saved value, the cell's value) where ``run`` was trained otherwise (the
    trainer's policy: more epochs extend a cell, settings that change no result are free)."""
    from robustvae.training import RunConfig, RunDir
    from robustvae.training.config import changed_settings

    saved = RunDir(run).saved_settings()
    if saved is None:
        return []
    try:
        saved = RunConfig.from_dict(saved).to_dict()  # an older version's: defaults filled in
    except ValueError:
        pass  # compared as it is: every difference is named
    return changed_settings(saved, cell.config.to_dict())


def _check_same_settings(cell: Cell, run: Path) -> None:
    """A cell directory left by a run with other settings is never reused or overwritten."""
    changed = _changed_settings(cell, run)
    if changed:
        details = ", ".join(f"{k}: {old!r} → {new!r}" for k, old, new in changed)
        raise ValueError(
            f"{run} was run with other settings ({details}); use another --out, or remove that "
            "directory to run the cell again"
        )


def _flatten(evaluation: dict, per_image: list[str], unit: str = "image") -> dict:
    """One results row: nested scores as ``KEY_NAME``; of the scores per ``unit`` (the
    evaluation's ``per_UNIT`` list: test images, or crops of them), those named in
    ``per_image`` as ``per_image_KEY``, JSON text mapping each unit's name to its score."""
    flat = {}
    for key, value in evaluation.items():
        if key == "settings":
            continue
        if isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif not isinstance(value, list):
            flat[key] = value
    for key in per_image:
        images = evaluation.get(f"per_{unit}", [])
        if images:
            flat[f"per_image_{key}"] = json.dumps({r["name"]: r[key] for r in images})
    return flat


@dataclass
class PlannedCell:
    """A cell of ``robustvae compare --list``: its epochs so far and its measured pace."""

    id: str
    epochs_done: int
    epochs: int
    seconds_per_epoch: float | None  # None: no epoch trained yet


def plan_experiment(
    path: str | Path,
    out_dir: str | Path,
    settings: dict[str, Any] | None = None,
    only: str | None = None,
    max_cells: int = MAX_CELLS,
) -> list[PlannedCell]:
    """The cells ``run_experiment`` would run, trained or not, without training any."""
    experiment = load_experiment(path, settings, only, max_cells)
    return [planned_cell(cell, Path(out_dir) / "cells" / cell.id) for cell in experiment.cells]


def planned_cell(cell: Cell, cell_dir: Path) -> PlannedCell:
    """A cell's epochs so far and its pace, from its metrics.jsonl."""
    from robustvae.training import RunDir

    rows = [r for r in RunDir(cell_dir).read_metrics() if "seconds" in r]
    pace = sum(r["seconds"] for r in rows) / len(rows) if rows else None
    done = rows[-1]["epoch"] if rows else 0
    return PlannedCell(cell.id, done, cell.config.epochs, pace)


def training_time_left(cells: list[PlannedCell]) -> float | None:
    """Seconds of training left, at each cell's own pace, else the mean pace of the cells
    measured so far; None when no cell has trained an epoch."""
    paces = [c.seconds_per_epoch for c in cells if c.seconds_per_epoch is not None]
    if not paces:
        return None
    mean = sum(paces) / len(paces)
    return sum(max(c.epochs - c.epochs_done, 0) * (c.seconds_per_epoch or mean) for c in cells)
