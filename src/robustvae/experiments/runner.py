"""``robustvae compare EXPERIMENT.toml``: train and evaluate every cell of a grid, skipping
finished ones (re-running resumes the grid), in parallel processes with ``jobs`` > 1 or on a
Ray cluster with ``ray_address``, then write results.csv, results.md and the report.

A cell is finished when its ``evaluation.json`` exists; it is written last, after training,
the cell's pictures (samples, reconstructions, interpolations) and its evaluation.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from robustvae.experiments.grid import Cell, Experiment, load_experiment
from robustvae.experiments.report import write_report
from robustvae.experiments.results import write_results


def run_cell(cell: Cell, cell_dir: str, evaluate: dict, threads: int | None = None) -> str:
    """Train (or resume), draw and evaluate one cell in ``cell_dir``; return its id."""
    import torch

    from robustvae.metrics.evaluate import evaluate_run
    from robustvae.training import train
    from robustvae.training.distributed import pick_device
    from robustvae.training.trainer import LATEST

    if threads:
        torch.set_num_threads(threads)
    run = Path(cell_dir)
    if (run / "evaluation.json").exists():
        return cell.id
    train(cell.config, run, resume=(run / LATEST).exists())
    device = str(pick_device(cell.config.device))
    draw_cell(cell, run, device)
    evaluate_run(
        run,
        evaluate["images"],
        evaluate["samples"],
        evaluate["fid"],
        device=device,
        inception=evaluate.get("inception"),
    )
    return cell.id


def draw_cell(cell: Cell, run: Path, device: str = "cpu") -> None:
    """The best checkpoint's samples, reconstructions and interpolations, as PNGs in ``run``."""
    from robustvae.outputs import write_all
    from robustvae.training import load_run
    from robustvae.training.trainer import load_data

    _, model = load_run(run, "best", device)
    write_all(model, load_data(cell.config)[1].images, run)


class GridProgress:
    """One line per finished cell: count, id, elapsed time and an estimate of what is left."""

    def __init__(self, total: int, done: int, report: Callable[[str], Any]):
        self.total, self.done, self.report = total, done, report
        self.started, self.ran = time.monotonic(), 0

    def finished(self, cell_id: str) -> None:
        self.done += 1
        self.ran += 1
        elapsed = time.monotonic() - self.started
        left = elapsed / self.ran * (self.total - self.done)
        self.report(
            f"[{self.done}/{self.total}] {cell_id}  "
            f"({_duration(elapsed)} elapsed, ~{_duration(left)} left)"
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


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
) -> Experiment:
    """Run the grid in ``path`` under ``out_dir`` (cells/<id>/ per cell).

    ``settings`` apply to every cell and ``only`` filters cells by id (see
    :func:`load_experiment`); ``evaluate`` overrides the file's [evaluate] table.
    """
    experiment = load_experiment(path, settings, only)
    experiment.evaluate.update(evaluate or {})
    out_dir = Path(out_dir)
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    dirs = {cell.id: out_dir / "cells" / cell.id for cell in experiment.cells}
    for cell in experiment.cells:
        _check_same_settings(cell, dirs[cell.id])
    todo = [c for c in experiment.cells if not (dirs[c.id] / "evaluation.json").exists()]
    total = len(experiment.cells)
    progress(f"{experiment.name}: {total} cells, {total - len(todo)} already finished")
    tracker = GridProgress(total, total - len(todo), progress)
    if ray_address is not None:
        finished = _on_ray(ray_address, todo, dirs, experiment.evaluate, jobs)
    elif jobs > 1:
        finished = _in_processes(todo, dirs, experiment.evaluate, jobs)
    else:
        finished = (run_cell(c, str(dirs[c.id]), experiment.evaluate) for c in todo)
    for cell_id in finished:
        tracker.finished(cell_id)
    _write_tables_and_report(experiment, dirs, out_dir)
    return experiment


def report_experiment(
    path: str | Path,
    out_dir: str | Path,
    settings: dict[str, Any] | None = None,
    only: str | None = None,
) -> Experiment:
    """``robustvae report``: results and report of the cells finished so far, training none
    (a long grid can be looked at while it runs). Returns the experiment of those cells."""
    experiment = load_experiment(path, settings, only)
    out_dir = Path(out_dir)
    dirs = {cell.id: out_dir / "cells" / cell.id for cell in experiment.cells}
    for cell in experiment.cells:
        _check_same_settings(cell, dirs[cell.id])
    finished = [c for c in experiment.cells if (dirs[c.id] / "evaluation.json").exists()]
    if not finished:
        raise ValueError(f"{out_dir}: no cell of {experiment.name} has finished yet")
    experiment.cells = finished
    _write_tables_and_report(experiment, dirs, out_dir)
    return experiment


def _write_tables_and_report(experiment: Experiment, dirs: dict, out_dir: Path) -> None:
    rows = []
    for cell in experiment.cells:
        if not (dirs[cell.id] / "samples.png").exists():  # finished by an older version
            draw_cell(cell, dirs[cell.id])
        evaluation = json.loads((dirs[cell.id] / "evaluation.json").read_text())
        rows.append({"cell": cell.id, **cell.axes, **_flatten(evaluation)})
    write_results(experiment, rows, out_dir)
    write_report(experiment, rows, out_dir)


IGNORED_SETTINGS = ("progress", "tensorboard", "device")  # they don't change a cell's result


def _check_same_settings(cell: Cell, run: Path) -> None:
    """A cell directory left by a run with other settings is never reused or overwritten."""
    saved_path = run / "config.json"
    if not saved_path.exists():
        return
    saved = json.loads(saved_path.read_text())
    wanted = cell.config.to_dict()
    changed = sorted(
        k
        for k in set(saved) | set(wanted)
        if k not in IGNORED_SETTINGS and saved.get(k) != wanted.get(k)
    )
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} → {wanted.get(k)!r}" for k in changed)
        raise ValueError(
            f"{run} was run with other settings ({details}); use another --out, or remove that "
            "directory to run the cell again"
        )


def _in_processes(todo: list[Cell], dirs: dict, evaluate: dict, jobs: int) -> Iterable[str]:
    threads = max(1, (os.cpu_count() or 1) // jobs)
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with OpenMP threads
    with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
        futures = [pool.submit(run_cell, c, str(dirs[c.id]), evaluate, threads) for c in todo]
        for future in as_completed(futures):
            yield future.result()


def _on_ray(address: str, todo: list[Cell], dirs: dict, evaluate: dict, jobs: int):
    """Each cell is a Ray task of one GPU if the cluster has GPUs, else ``cpus`` cores; the
    output directory must be on storage every node shares. ``address`` "local" starts a
    private local cluster; anything else is passed to ``ray.init`` ("auto", "ray://host:port")."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            "--ray needs Ray: pip install 'robustvae[ray]' (or pip install ray)"
        ) from None
    ray.init(address=None if address == "local" else address, log_to_driver=False)
    try:
        resources = ray.cluster_resources()
        gpus = 1 if resources.get("GPU", 0) >= 1 else 0
        cpus = max(1, int(resources.get("CPU", 1)) // max(jobs, 1)) if jobs > 1 else 1
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1)(run_cell)
        pending = [task.remote(c, str(dirs[c.id].resolve()), evaluate, cpus) for c in todo]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    finally:
        ray.shutdown()


def _flatten(evaluation: dict) -> dict:
    flat = {}
    for key, value in evaluation.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif not isinstance(value, list):
            flat[key] = value
    return flat
