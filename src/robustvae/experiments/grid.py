"""Experiment files: a TOML grid of runs (datasets × models × losses × seeds × any RunConfig
field) expanded into cells, each a RunConfig with a stable id.

    name = "quick-mnist5k"
    baseline = "l2"                 # the loss label that % changes are computed against
    [base]                          # RunConfig fields shared by every cell
    dataset = "mnist-5k"
    [grid]                          # one list per axis; every combination is a cell
    kind = ["vae", "wae"]
    seed = [0, 1]
    [[losses]]                      # the loss axis: a label, a registry name, its parameters
    label = "logcosh"
    loss = "logcosh"
    loss_params = { a = 100.0 }
    [evaluate]                      # robustvae evaluate settings
    images = 1000
    samples = 10000
    fid = true
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustvae.training import RunConfig

TOP_KEYS = {"name", "description", "baseline", "base", "grid", "losses", "evaluate"}
EVALUATE_KEYS = {"images": 1000, "samples": 10000, "fid": True}


@dataclass(frozen=True)
class Cell:
    id: str
    axes: dict[str, Any]  # the grid values of this cell, the loss as its label
    config: RunConfig


@dataclass
class Experiment:
    name: str
    baseline: str | None
    cells: list[Cell]
    evaluate: dict[str, Any] = field(default_factory=lambda: dict(EVALUATE_KEYS))
    axes: list[str] = field(default_factory=list)


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-")


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    unknown = sorted(set(spec) - TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; valid: {sorted(TOP_KEYS)}")
    base = dict(spec.get("base", {}))
    grid = {k: v if isinstance(v, list) else [v] for k, v in spec.get("grid", {}).items()}
    losses = spec.get("losses") or [{"loss": base.get("loss", "l2")}]
    evaluate = {**EVALUATE_KEYS, **spec.get("evaluate", {})}
    if set(evaluate) - set(EVALUATE_KEYS):
        raise ValueError(f"{path}: [evaluate] takes only {sorted(EVALUATE_KEYS)}")
    labels = []
    for entry in losses:
        if "loss" not in entry:
            raise ValueError(f"{path}: every [[losses]] entry needs a 'loss' name")
        labels.append(str(entry.get("label", entry["loss"])))
    if len(set(labels)) != len(labels):
        raise ValueError(f"{path}: loss labels must differ, got {labels}")
    baseline = spec.get("baseline")
    if baseline is not None and baseline not in labels:
        raise ValueError(f"{path}: baseline {baseline!r} is not a loss label ({labels})")
    axes = list(grid) + ["loss"]
    cells = []
    for values in itertools.product(*grid.values()):
        for label, entry in zip(labels, losses, strict=True):
            settings = {**base, **dict(zip(grid, values, strict=True))}
            settings.update({k: v for k, v in entry.items() if k != "label"})
            settings.setdefault("progress", False)
            config = RunConfig.from_dict(settings)
            cell_axes = {**dict(zip(grid, values, strict=True)), "loss": label}
            cell_id = ",".join(f"{k}={_slug(v)}" for k, v in cell_axes.items())
            cells.append(Cell(cell_id, cell_axes, config))
    return Experiment(spec.get("name", path.stem), baseline, cells, evaluate, axes)
