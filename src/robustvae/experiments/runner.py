"""``robustvae compare EXPERIMENT.toml``: train and evaluate every cell of a grid, skipping
finished ones (re-running resumes the grid), in parallel processes with ``jobs`` > 1, then
write results.csv and results.md."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from robustvae.experiments.grid import Cell, Experiment, load_experiment
from robustvae.experiments.results import write_results


def _run_cell(cell: Cell, cell_dir: str, evaluate: dict, threads: int | None) -> str:
    import torch

    from robustvae.metrics.evaluate import evaluate_run
    from robustvae.training import train
    from robustvae.training.trainer import LATEST

    if threads:
        torch.set_num_threads(threads)
    run = Path(cell_dir)
    if not (run / "evaluation.json").exists():
        train(cell.config, run, resume=(run / LATEST).exists())
        evaluate_run(run, evaluate["images"], evaluate["samples"], evaluate["fid"])
    return cell.id


def run_experiment(
    path: str | Path, out_dir: str | Path, jobs: int = 1, progress=print
) -> Experiment:
    experiment = load_experiment(path)
    out_dir = Path(out_dir)
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    dirs = {cell.id: out_dir / "cells" / cell.id for cell in experiment.cells}
    todo = [c for c in experiment.cells if not (dirs[c.id] / "evaluation.json").exists()]
    done = len(experiment.cells) - len(todo)
    progress(f"{experiment.name}: {len(experiment.cells)} cells, {done} already finished")
    if jobs <= 1:
        for cell in todo:
            _run_cell(cell, str(dirs[cell.id]), experiment.evaluate, None)
            done += 1
            progress(f"[{done}/{len(experiment.cells)}] {cell.id}")
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        spawn = multiprocessing.get_context("spawn")  # no fork of a process with OpenMP threads
        with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
            futures = [
                pool.submit(_run_cell, c, str(dirs[c.id]), experiment.evaluate, threads)
                for c in todo
            ]
            for future in as_completed(futures):
                done += 1
                progress(f"[{done}/{len(experiment.cells)}] {future.result()}")
    rows = []
    for cell in experiment.cells:
        evaluation = json.loads((dirs[cell.id] / "evaluation.json").read_text())
        rows.append({"cell": cell.id, **cell.axes, **_flatten(evaluation)})
    write_results(experiment, rows, out_dir)
    return experiment


def _flatten(evaluation: dict) -> dict:
    flat = {}
    for key, value in evaluation.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif not isinstance(value, list):
            flat[key] = value
    return flat
