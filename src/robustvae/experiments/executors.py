"""Where a grid's cells run: in this process, in spawned processes (``--jobs N``), or as Ray
tasks (``--ray ADDRESS``). Each yields (cell id, None or the error as text) per cell; a
failing cell never stops the others."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from robustvae.experiments.grid import Cell


def outcome(fn, cell: Cell, *args) -> tuple[str, str | None]:
    """(cell id, None) when ``fn`` succeeds, (cell id, the error as text) when it raises."""
    try:
        fn(cell, *args)
        return cell.id, None
    except Exception as error:  # noqa: BLE001 - one cell's failure must not stop the grid
        return cell.id, f"{type(error).__name__}: {error}"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def in_processes(run_cell, todo: list[Cell], dirs: dict, evaluate: dict, jobs: int) -> Iterable:
    """``run_cell`` of each cell in ``jobs`` spawned processes, each with its share of the
    cores; yields (cell id, None or the error as text) as cells finish."""
    threads = max(1, usable_cpus() // jobs)
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with OpenMP threads
    with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
        futures = {pool.submit(run_cell, c, str(dirs[c.id]), evaluate, threads): c.id for c in todo}
        for future in as_completed(futures):
            error = future.exception()
            yield futures[future], None if error is None else f"{type(error).__name__}: {error}"


def on_ray(
    run_cell, address: str, todo: list[Cell], dirs: dict, evaluate: dict, jobs: int
) -> Iterable:
    """Each cell is a Ray task of one GPU if the cluster has GPUs, else of ``cpus`` cores (the
    largest node's cores over ``jobs``; 1 with ``jobs`` = 1). The output directory, the data
    and any Inception weights must be at the same paths on every node. ``address`` "local"
    starts a private cluster on this machine; anything else goes to ``ray.init`` ("auto",
    "ray://host:10001")."""
    try:
        import ray
    except ImportError:
        raise ValueError(
            "--ray needs Ray: pip install 'robustvae[ray]' (or pip install ray)"
        ) from None
    if evaluate.get("inception"):
        evaluate = {**evaluate, "inception": str(Path(evaluate["inception"]).resolve())}
    ray.init(address=address, log_to_driver=False)
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        node_cpus = max(int(n["Resources"].get("CPU", 1)) for n in ray.nodes() if n["Alive"])
        cpus = max(1, node_cpus // jobs) if jobs > 1 else 1
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1)(run_cell)
        pending = {task.remote(c, str(dirs[c.id].resolve()), evaluate, cpus): c.id for c in todo}
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            cell_id = pending.pop(ready)
            try:
                ray.get(ready)
                yield cell_id, None
            except Exception as error:  # noqa: BLE001 - a failed task; the others go on
                yield cell_id, f"{type(error).__name__}: {error}"
    finally:
        ray.shutdown()
