"""Experiment files: a TOML grid of runs (datasets × models × losses × seeds × any RunConfig
field) expanded into cells, each a RunConfig with a stable id.

    name = "quick-mnist5k"
    description = "…"               # optional: one paragraph for the report
    baseline = "l2"                 # the loss label that % changes are computed against
    paired = ["fid"]                # optional: the columns each row is compared with the
                                    # baseline on, seed by seed (default: the kinds' PAIRED)
    [base]                          # RunConfig fields shared by every cell
    dataset = "mnist-5k"
    [grid]                          # one list per axis; every combination is a cell
    kind = ["vae", "wae"]
    arch = ["mlp", "conv"]
    seed = [0, 1]
    [[losses]]                      # the loss axis: a label, a registry name, its parameters
    label = "logcosh"
    loss = "logcosh"
    loss_params = { a = 100.0 }
    [[losses]]                      # a list in a loss entry sweeps it: one cell per value,
    label = "l2"                    # labelled "l2 (recon_weight=5)", plotted in the report
    loss = "l2"
    recon_weight = [0.5, 5.0, 50.0]
    [[losses]]                      # an entry may set any run setting, the kind too: the
    label = "vaegan-logcosh"        # losses of a VAE-GAN live in its discriminator's features.
    kind = "vaegan"                 # Setting a grid axis (here kind) pins it: one cell per
    feature_loss = "logcosh"        # combination of the other axes; an axis the kind has no
    arch = "conv"                   # setting for (arch) only labels its cells
    [[overrides]]                   # settings for the cells that match `when` (grid axes or
    when = { arch = "mlp" }         # the loss label); applied last, not part of cell ids
    width = 1.0
    [evaluate]                      # robustvae evaluate settings
    images = 1000
    samples = 10000
    fid = true
    inception = "path/to/pt_inception-2015-12-05-6726825d.pth"   # optional: Inception FID
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from robustvae.evaluation.settings import DEFAULTS as EVALUATE_KEYS
from robustvae.evaluation.settings import evaluation_settings
from robustvae.training import RunConfig

TOP_KEYS = {
    "name",
    "description",
    "baseline",
    "paired",
    "base",
    "grid",
    "losses",
    "overrides",
    "evaluate",
}


#: The longest cell id: it names the cell's directory (255 bytes on most file systems).
MAX_CELL_ID = 200


@dataclass(frozen=True)
class Sweep:
    """A swept setting of one [[losses]] entry: its label, the setting and this cell's value."""

    label: str
    setting: str  # a loss parameter ("a") or a RunConfig field ("recon_weight")
    value: float


@dataclass(frozen=True)
class Cell:
    id: str
    axes: dict[str, Any]  # the grid values of this cell, the loss as its (variant) label
    config: RunConfig
    sweep: Sweep | None = None


@dataclass
class Experiment:
    name: str
    baseline: str | None
    cells: list[Cell]
    evaluate: dict[str, Any] = field(default_factory=lambda: dict(EVALUATE_KEYS))
    axes: list[str] = field(default_factory=list)
    description: str = ""
    paired: tuple[str, ...] | None = None  # None: the kinds' PAIRED columns


#: Grids larger than this need ``max_cells`` (``--max-cells``): a typo in an axis can
#: make a million cells, which take minutes and gigabytes just to parse.
MAX_CELLS = 1000


def slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-")


def _loss_variants(entry: dict, where: str) -> list[tuple[str, dict, Sweep | None]]:
    """One (label, settings, sweep) per value of the entry's list-valued setting, if any."""
    label = str(entry.get("label", entry.get("loss")))
    settings = {k: v for k, v in entry.items() if k != "label"}
    for key in [k for k in settings if k.endswith("_params")]:
        if not isinstance(settings[key], dict):
            raise ValueError(
                f"{where}: loss {label!r}: {key} must be a table, e.g. {{ a = 10.0 }}; got "
                f"{settings[key]!r}"
            )
    params = dict(settings.get("loss_params", {}))
    swept = [("loss_params", k) for k, v in params.items() if isinstance(v, list)]
    swept += [(None, k) for k, v in settings.items() if isinstance(v, list)]
    if not swept:
        return [(label, settings, None)]
    if len(swept) > 1:
        names = [name for _, name in swept]
        raise ValueError(f"{where}: loss {label!r} sweeps {names}; sweep one setting per entry")
    table, name = swept[0]
    values = params[name] if table else settings[name]
    if not values or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"{where}: loss {label!r} sweeps {name} over {values!r}; need numbers")
    variants = []
    for value in values:
        changed = dict(settings)
        if table:
            changed["loss_params"] = {**params, name: value}
        else:
            changed[name] = value
        variants.append((f"{label} ({name}={value:g})", changed, Sweep(label, name, float(value))))
    return variants


def _drop_axes_the_kind_lacks(merged: dict, grid: dict) -> None:
    """A grid axis that the cell's kind has no setting for (``arch`` for a VAE-GAN, which has
    its own nets) labels the cell but is not passed to its config."""
    from robustvae.kinds import KINDS
    from robustvae.training.config import RunConfig as Run

    kind = KINDS.get(merged.get("kind", "vae"))
    if kind is None:
        return  # RunConfig names the unknown kind
    valid = set(Run.run_keys()) | {f.name for f in fields(kind.config)}
    for axis in grid:
        if axis not in valid:
            merged.pop(axis, None)


def _check_axes(path: Path, grid: dict, kinds: set[str]) -> None:
    """ValueError naming a [grid] axis that is neither a run setting nor a setting of any of
    the cells' ``kinds`` (a misspelled axis would only label cells that are the same run)."""
    from robustvae.kinds import KINDS
    from robustvae.training.config import RunConfig as Run

    valid = set(Run.run_keys()) | {f.name for kind in kinds for f in fields(KINDS[kind].config)}
    unknown = [axis for axis in grid if axis not in valid]
    if unknown:
        raise ValueError(
            f"{path}: [grid] axis {', '.join(map(repr, unknown))} is not a run setting nor a "
            f"setting of kind {', '.join(sorted(kinds))}"
        )


def _matches(when: dict, axes: dict, sweep: Sweep | None) -> bool:
    for key, wanted in when.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        values = {axes.get(key)} | ({sweep.label} if key == "loss" and sweep else set())
        if not values & set(options):
            return False
    return True


def matches_only(cell_id: str, pattern: str) -> bool:
    """``--only``: the whole id matches the shell-style ``pattern``, or every comma-separated
    part of the pattern matches some ``key=value`` part of the id, in any order
    (``'arch=mlp*'`` and ``'seed=0,kind=wae'`` pick cells whatever axis comes first)."""
    if fnmatch.fnmatchcase(cell_id, pattern):
        return True
    parts = cell_id.split(",")
    return all(any(fnmatch.fnmatchcase(p, want) for p in parts) for want in pattern.split(","))


#: The form of each top-level key of an experiment file.
_SHAPES = {
    "name": (str, "a string"),
    "description": (str, "a string"),
    "baseline": (str, "a loss label (a string)"),
    "base": (dict, "a table of run settings ([base])"),
    "grid": (dict, "a table of axes ([grid] with lists of values)"),
    "evaluate": (dict, "a table of evaluation settings ([evaluate])"),
    "losses": (list, "an array of tables ([[losses]])"),
    "overrides": (list, "an array of tables ([[overrides]])"),
}


def _check_size(path: Path, grid: dict, variants: int, max_cells: int) -> None:
    """At most ``max_cells`` cells (an upper bound: entries that pin an axis make fewer)."""
    count = math.prod(len(v) for v in grid.values()) * variants
    if count > max_cells:
        shape = " × ".join([*(f"{len(v)} {k}" for k, v in grid.items()), f"{variants} losses"])
        raise ValueError(
            f"{path}: the grid expands to {count} cells ({shape}), more than the limit of "
            f"{max_cells}; check its axes, or pass --max-cells {count} to run it"
        )


def _check_shapes(spec: dict, path: Path) -> None:
    """One line naming the key whose value has the wrong form."""
    for key, (kind, what) in _SHAPES.items():
        if key in spec and not isinstance(spec[key], kind):
            raise ValueError(f"{path}: {key!r} must be {what}, got {spec[key]!r}")
        if kind is list and key in spec and not all(isinstance(e, dict) for e in spec[key]):
            raise ValueError(f"{path}: every entry of {key!r} must be a table ([[{key}]])")


def load_experiment(
    path: str | Path,
    settings: dict[str, Any] | None = None,
    only: str | None = None,
    max_cells: int = MAX_CELLS,
) -> Experiment:
    """Parse an experiment file into cells.

    ``settings`` (RunConfig fields) are applied to every cell after everything else, as
    ``robustvae compare --set KEY=VALUE`` does; ``only`` keeps the cells whose id matches the
    shell-style pattern (``robustvae compare --only 'arch=mlp*'``). A grid of more than
    ``max_cells`` cells is an error before any cell is built (``--max-cells`` raises it).
    """
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    unknown = sorted(set(spec) - TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; valid: {sorted(TOP_KEYS)}")
    _check_shapes(spec, path)
    base = dict(spec.get("base", {}))
    grid = {k: v if isinstance(v, list) else [v] for k, v in spec.get("grid", {}).items()}
    empty = sorted(k for k, v in grid.items() if not v)
    if empty:
        raise ValueError(f"{path}: [grid] axis {', '.join(empty)} has no values")
    losses = spec.get("losses") or [{"loss": base.get("loss", "l2")}]
    evaluate = {**EVALUATE_KEYS, **spec.get("evaluate", {})}
    if set(evaluate) - set(EVALUATE_KEYS):
        raise ValueError(f"{path}: [evaluate] takes only {sorted(EVALUATE_KEYS)}")
    try:  # checked now, not after the cells have trained
        evaluation_settings(**evaluate)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: [evaluate]: {error}") from None
    if "loss" in grid:
        raise ValueError(f"{path}: 'loss' is not a [grid] axis; list the losses as [[losses]]")
    variants = []
    for entry in losses:
        if "loss" not in entry and "label" not in entry:
            raise ValueError(
                f"{path}: every [[losses]] entry needs a 'loss' name or a 'label' (an entry of "
                'another kind, e.g. kind = "vaegan" with its feature_loss, needs a label)'
            )
        variants += _loss_variants(entry, str(path))
    _check_size(path, grid, len(variants), max_cells)
    fixed_by_grid = sorted(set(settings or {}) & (set(grid) | {k for e in losses for k in e}))
    if fixed_by_grid:
        raise ValueError(
            f"{path}: {fixed_by_grid} vary across the grid's cells; a setting for every cell "
            "(--set) would make them identical"
        )
    labels = [label for label, _, _ in variants]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{path}: loss labels must differ, got {labels}")
    baseline = spec.get("baseline")
    if baseline is not None and baseline not in labels:
        raise ValueError(f"{path}: baseline {baseline!r} is not a loss label ({labels})")
    overrides = spec.get("overrides", [])
    for override in overrides:
        when = override.get("when")
        if not isinstance(when, dict) or not when:
            raise ValueError(f"{path}: every [[overrides]] entry needs a `when` table")
        unknown = sorted(set(when) - set(grid) - {"loss"})
        if unknown:
            raise ValueError(
                f"{path}: [[overrides]] `when` names {unknown}, not grid axes or 'loss'"
            )
    axes = list(grid) + ["loss"]
    cells = []
    used = [False] * len(overrides)
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values, strict=True))
        for label, loss_settings, sweep in variants:
            # An entry that sets a grid axis pins it: one cell per combination of the others.
            pinned = {k: v for k, v in loss_settings.items() if k in grid}
            if any(point[k] != grid[k][0] for k in pinned):
                continue
            cell_axes = {**point, **pinned, "loss": label}
            merged = {**base, **point, **loss_settings}
            _drop_axes_the_kind_lacks(merged, grid)
            for i, override in enumerate(overrides):
                if _matches(override["when"], cell_axes, sweep):
                    merged.update({k: v for k, v in override.items() if k != "when"})
                    used[i] = True
            merged.setdefault("progress", False)
            merged.update(settings or {})
            cell_id = ",".join(f"{k}={slug(v)}" for k, v in cell_axes.items())
            try:
                config = RunConfig.from_dict(merged)  # checks the model where the shape is known
            except ValueError as error:
                raise ValueError(f"{path}: cell {cell_id}: {error}") from None
            if len(cell_id.encode()) > MAX_CELL_ID:
                raise ValueError(
                    f"{path}: cell {cell_id[:60]}… has an id of {len(cell_id.encode()):,} bytes, "
                    f"longer than a directory name can be ({MAX_CELL_ID}): shorten its label or "
                    "axis values"
                )
            cells.append(Cell(cell_id, cell_axes, config, sweep))
    for override, matched in zip(overrides, used, strict=True):
        if not matched:
            raise ValueError(
                f"{path}: [[overrides]] when = {override['when']} matches no cell (values are "
                "the grid's and the loss labels as written, not as in cell ids)"
            )
    _check_axes(path, grid, {cell.config.kind for cell in cells})
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"{path}: two cells would share the id(s) {twice}; rename a label")
    if only is not None:
        cells = [c for c in cells if matches_only(c.id, only)]
        if not cells:
            raise ValueError(f"{path}: no cell matches --only {only!r}")
    description = " ".join(str(spec.get("description", "")).split())
    paired = _paired(spec, path, cells)
    return Experiment(
        spec.get("name", path.stem), baseline, cells, evaluate, axes, description, paired
    )


def _paired(spec: dict, path: Path, cells: list[Cell]) -> tuple[str, ...] | None:
    """The ``paired`` columns: a list of the cells' kinds' results columns."""
    from robustvae.evaluation.evaluators import evaluator_of

    if "paired" not in spec:
        return None
    paired = spec["paired"]
    kinds = {cell.config.kind for cell in cells}
    valid = {key for kind in kinds for key, _ in evaluator_of(kind).columns}
    if not isinstance(paired, list) or not all(isinstance(p, str) for p in paired):
        raise ValueError(f"{path}: 'paired' must be a list of column names, got {paired!r}")
    unknown = sorted(set(paired) - valid)
    if unknown:
        raise ValueError(f"{path}: paired column(s) {unknown} are not in {sorted(valid)}")
    return tuple(paired)
