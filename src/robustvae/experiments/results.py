"""Results of a grid: results.csv (one row per cell) and results.md (mean ± std over seeds,
and each loss's change against the baseline loss in %, as the papers print it)."""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from robustvae.files import atomic_write_text, write_csv
from robustvae.significance import (
    better_on,
    paired_difference,
    paired_text,
    per_image_text,
    signed_rank,
)


def columns(experiment) -> list[tuple[str, str]]:
    """(key, title) of the table's metric columns: those of the cells' kinds, in order."""
    return list(dict.fromkeys(c for e in _evaluators(experiment) for c in e.columns))


def _evaluators(experiment) -> list:
    """The cells' kinds' evaluators, imported on use (they load the metrics: seconds)."""
    from robustvae.evaluation.evaluators import evaluator_of

    kinds = dict.fromkeys(cell.config.kind for cell in experiment.cells)
    return list(dict.fromkeys(evaluator_of(k) for k in kinds))


def paired_metrics(experiment) -> list[str]:
    """The metrics each row is compared with its baseline on, seed by seed: the experiment's
    ``paired``, else its kinds' evaluators' ``paired``."""
    if experiment.paired is not None:
        return list(experiment.paired)
    return list(dict.fromkeys(m for e in _evaluators(experiment) for m in e.paired))


def per_image_unit(experiment) -> str:
    """What the per-image comparison pairs: "image", or the evaluator's ``per_image_unit``."""
    units = {e.per_image_unit for e in _evaluators(experiment) if e.per_image}
    return units.pop() if len(units) == 1 else "image"


def per_image_metrics(experiment) -> dict[str, bool]:
    """The metrics scored per test image (results column ``per_image_METRIC``), each with
    whether higher is better: each row is compared with its baseline image by image."""
    return {m: up for e in _evaluators(experiment) for m, up in e.per_image}


class Table(NamedTuple):
    header: list[str]
    body: list[list[str]]
    label_columns: int  # the leading columns that name a row; the rest hold numbers


def write_results(experiment, rows: list[dict], out_dir: Path) -> None:
    write_csv(out_dir / "results.csv", rows)
    atomic_write_text(
        out_dir / "results.md",
        f"# {experiment.name}\n\n{table_caption(experiment, rows)}\n\n"
        + markdown_table(summary_table(experiment, rows)),
    )


def table_caption(experiment, rows: list[dict]) -> str:
    """What the table's numbers are: mean ± std only where seeds are averaged, and a seeds
    column where rows average different numbers of seeds (a grid run in parts)."""
    counts = set(seed_counts(experiment, rows).values()) or {1}
    if len(counts) > 1:
        what = "mean ± std over each row's seeds (its seeds column)"
    elif counts != {1}:
        what = f"mean ± std over {counts.pop()} seeds"
    else:
        what = "one run per row"
    if not experiment.baseline:
        return what
    what += f"; (±%) against {experiment.baseline}"
    header = summary_table(experiment, rows).header
    base = experiment.baseline
    if any(title.startswith("Δ ") for title in header):
        what += (
            f". Δ: the mean of the row's differences from {base} (row − {base}), each seed "
            "paired with the same seed, with its Student-t 95% interval over those differences; "
            '"resolved" where the interval excludes 0, i.e. the difference held over the seeds'
        )
    unit = per_image_unit(experiment)
    if any(title.startswith(f"per {unit}:") for title in header):
        what += (
            f". Per {unit}: each test {unit}'s score averaged over the shared seeds, then "
            f"Wilcoxon's signed-rank p over the {unit}s, and on how many {unit}s the row scores "
            f"better than {base} with the Clopper–Pearson 95% interval of that share. It asks "
            f"whether these trained models differ {unit} by {unit}; Δ asks whether the "
            "difference survives retraining. With 5 or fewer untied values no p falls below "
            "0.0625"
        )
        if unit == "crop":
            what += (
                ". Crops of one photo are not independent draws, so p and the interval "
                "overstate how sure a difference is for photos at large"
            )
    return what


def seed_counts(experiment, rows: list[dict]) -> dict[tuple, int]:
    """The number of seeds behind each row of the table."""
    return {k: len(v) for k, v in group_by(rows, experiment.axes, ("seed",)).items()}


def group_by(rows: list[dict], axes: list[str], drop: tuple[str, ...]) -> dict[tuple, list[dict]]:
    """Rows grouped by their values on ``axes`` other than ``drop``, in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(a) for a in axes if a not in drop), []).append(row)
    return groups


def summary_table(experiment, rows: list[dict]) -> Table:
    """Header and body of the results table: one row per cell with the seeds pooled."""
    axes = [a for a in experiment.axes if a != "seed"]
    metrics = [(k, name) for k, name in columns(experiment) if any(k in r for r in rows)]
    groups = group_by(rows, experiment.axes, ("seed",))
    loss_index = axes.index("loss")
    seeds = {len(members) for members in groups.values()}
    label_columns = axes + (["seeds"] if len(seeds) > 1 else [])
    titles = dict(columns(experiment))
    paired, per_image = [], {}
    if experiment.baseline:
        paired = [m for m in paired_metrics(experiment) if any(m in r for r in rows)]
        per_image = {
            m: up
            for m, up in per_image_metrics(experiment).items()
            if any(f"per_image_{m}" in r for r in rows)
        }
    kinds = {cell.id: cell.config.kind for cell in experiment.cells}
    body = []
    for key, members in groups.items():
        cells = [str(v) for v in key] + ([str(len(members))] if len(seeds) > 1 else [])
        baseline_key = key[:loss_index] + (experiment.baseline,) + key[loss_index + 1 :]
        for metric, _ in metrics:
            values = [r[metric] for r in members if _is_number(r.get(metric))]
            if not values:
                cells.append("")
                continue
            mean = statistics.fmean(values)
            text = f"{mean:.4g}"
            if len(values) > 1:
                text += f" ± {statistics.stdev(values):.2g}"
            if len(values) < len(members):
                text += f" (n={len(values)})"  # some seeds lack this metric, or it is not finite
            base = _baseline_mean(groups.get(baseline_key, []), members, metric)
            if experiment.baseline and key != baseline_key and base:
                text += f" ({_percent((mean - base) / abs(base))})"
            cells.append(text)
        if paired or per_image:
            baseline = groups.get(baseline_key, [])
            mark = _mark(key, baseline_key, members, baseline, kinds)
            for metric in paired:
                cells.append(mark or _paired_cell(members, baseline, metric))
            for metric, up in per_image.items():
                cells.append(mark or _per_image_cell(members, baseline, metric, up))
        body.append(cells)
    header = label_columns + [name for _, name in metrics]
    header += [f"Δ {titles[m]} [95% interval]" for m in paired]
    unit = per_image_unit(experiment)
    header += [f"per {unit}: {titles[m]} against {experiment.baseline}" for m in per_image]
    return _without_empty_comparisons(Table(header, body, len(label_columns)), len(metrics))


def _without_empty_comparisons(table: Table, metrics: int) -> Table:
    """The table less the comparison columns no row could fill (a metric the baseline lacks)."""
    first = table.label_columns + metrics
    keep = [
        i
        for i in range(len(table.header))
        if i < first or any(row[i] not in ("", "baseline") for row in table.body)
    ]
    return Table(
        [table.header[i] for i in keep],
        [[row[i] for i in keep] for row in table.body],
        table.label_columns,
    )


def _is_number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _percent(change: float) -> str:
    """``+12%``; one decimal under 1% (no "+0%" for a change that is there)."""
    return f"{change:+.1%}" if abs(change) < 0.01 else f"{change:+.0%}"


def _mark(key: tuple, baseline_key: tuple, members: list, baseline: list, kinds: dict) -> str:
    """What a comparison cell says instead of numbers: the baseline row itself, or a row with
    no baseline of its own kind at its grid point (e.g. a VAE-GAN row beside VAEs)."""
    if key == baseline_key:
        return "baseline"
    mine = {kinds.get(r.get("cell")) for r in members} - {None}
    theirs = {kinds.get(r.get("cell")) for r in baseline} - {None}
    if not baseline or (mine and theirs and mine != theirs):
        return "no baseline row of its kind"
    return ""


def _by_seed(rows: list[dict], metric: str) -> dict:
    return {r.get("seed"): r[metric] for r in rows if _is_number(r.get(metric))}


def _paired_cell(members: list[dict], baseline: list[dict], metric: str) -> str:
    """The row's mean paired difference from the baseline over their shared seeds (how many,
    when fewer than the row has)."""
    mine, theirs = _by_seed(members, metric), _by_seed(baseline, metric)
    shared = [s for s in mine if s in theirs]
    if not mine:
        return ""
    if not shared:
        return "no shared seed"
    text = paired_text(paired_difference([mine[s] for s in shared], [theirs[s] for s in shared]))
    return text + (f" ({len(shared)} of {len(mine)} seeds)" if len(shared) < len(mine) else "")


def _image_means(rows: list[dict], metric: str, seeds: list) -> dict[str, float]:
    """Each test image's ``metric`` averaged over the rows of ``seeds`` (the images every one
    of them scored)."""
    per_run = [json.loads(r[f"per_image_{metric}"]) for r in rows if r.get("seed") in seeds]
    names = [n for n in per_run[0] if all(n in run for run in per_run)]
    return {name: statistics.fmean(run[name] for run in per_run) for name in names}


def _per_image_cell(members: list[dict], baseline: list[dict], metric: str, higher: bool) -> str:
    column = f"per_image_{metric}"
    mine = {r.get("seed") for r in members if column in r}
    shared = [s for s in mine if s in {r.get("seed") for r in baseline if column in r}]
    if not shared:
        return ""
    values = _image_means(members, metric, shared)
    reference = _image_means(baseline, metric, shared)
    names = [n for n in values if n in reference]
    if not names:
        return ""
    a, b = [values[n] for n in names], [reference[n] for n in names]
    return per_image_text(signed_rank(a, b), better_on(a, b, higher))


def _baseline_mean(baseline: list[dict], members: list[dict], metric: str) -> float | None:
    """The baseline's mean of ``metric`` over the seeds it shares with ``members`` (over all
    its seeds when it shares none), so that a row run on fewer seeds compares like for like."""
    seeds = {r.get("seed") for r in members if _is_number(r.get(metric))}
    values = [r[metric] for r in baseline if _is_number(r.get(metric))]
    shared = [r[metric] for r in baseline if r.get("seed") in seeds and _is_number(r.get(metric))]
    return statistics.fmean(shared or values) if values else None


def markdown_table(table: Table) -> str:
    """A GitHub markdown table, number columns right-aligned."""
    rule = ["---" if i < table.label_columns else "---:" for i in range(len(table.header))]
    lines = ["| " + " | ".join(cells) + " |" for cells in [table.header, rule, *table.body]]
    return "\n".join(lines) + "\n"


def _number_or_text(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def read_results(path: str | Path) -> list[dict]:
    """The rows of a results.csv, numbers as floats and empty cells left out (as
    ``write_results`` wrote them from the cells' evaluations)."""
    return [_parsed(row) for row in _read_text_rows(path)]


def _read_text_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV file as text; a row with more or fewer fields than the header (a file
    cut off, or edited by hand) is an error naming its line."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))  # per-image scores' JSON
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's BOM
        reader = csv.reader(f)
        header = next(reader, [])
        rows = []
        for fields in reader:
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                raise ValueError(
                    f"{path} line {reader.line_num}: {len(fields)} fields under a header of "
                    f"{len(header)}"
                )
            rows.append(dict(zip(header, fields, strict=True)))
        return rows


def _parsed(row: dict[str, str]) -> dict:
    return {k: v if k == "cell" else _number_or_text(v) for k, v in row.items() if v != ""}


def merge_results(experiment, paths: Sequence[str | Path]) -> list[dict[str, str]]:
    """The rows of several results.csv files of ``experiment`` (a grid run in parts, e.g.
    ``--only 'arch=mlp,*'`` on one machine and ``--only 'arch=conv,*'`` on another), in the
    grid's cell order, as text. A cell outside the grid, or there twice, is an error."""
    order = {cell.id: i for i, cell in enumerate(experiment.cells)}
    found: dict[str, tuple[Path, dict[str, str]]] = {}
    for path in map(Path, paths):
        for row in _read_text_rows(path):
            cell = row.get("cell")
            if cell is None:
                raise ValueError(f"{path}: no 'cell' column (not a results.csv)")
            if cell not in order:
                raise ValueError(f"{path}: cell {cell!r} is not a cell of {experiment.name}")
            if cell in found:
                first = found[cell][0]
                where = f"twice in {path}" if first == path else f"in both {first} and {path}"
                raise ValueError(f"cell {cell!r} is {where}")
            found[cell] = (path, row)
    return [found[cell][1] for cell in sorted(found, key=order.__getitem__)]


def results_table(experiment, paths: str | Path | Sequence[str | Path]) -> str:
    """The Markdown results table of ``experiment`` rendered from committed results.csv files:
    what ``robustvae report EXPERIMENT --results CSV`` prints and the README holds."""
    paths = [paths] if isinstance(paths, str | Path) else paths
    return table_of_rows(experiment, merge_results(experiment, paths))


def table_of_rows(experiment, text_rows: list[dict[str, str]]) -> str:
    """The Markdown results table of the rows ``merge_results`` gives."""
    rows = [_parsed(row) for row in text_rows]
    cells = {c.id: c for c in experiment.cells}
    for row in rows:  # grid axes are written as text; restore them as the grid has them
        row.update(cells[row["cell"]].axes)
    return markdown_table(summary_table(experiment, rows))


MARKER = re.compile(r"^<!-- results: ([A-Za-z0-9_.-]+)\b.*-->$")


def with_tables_rendered(
    text: str, results_dir: Path, presets_dir: Path, only: Sequence[str] | None = None
) -> str:
    """``text`` (Markdown) with the table after each ``<!-- results: NAME ... -->`` line
    replaced by the rendering of ``results_dir/NAME.csv`` under ``presets_dir/NAME.toml``
    (the NAMEs in ``only``, when given)."""
    from robustvae.experiments.grid import load_experiment

    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        found = MARKER.match(lines[i].rstrip("\r\n"))
        i += 1
        if not found:
            continue
        name = found.group(1)
        if only is not None and name not in only:
            continue
        while i < len(lines) and lines[i].startswith("|"):
            i += 1  # the old table
        experiment = load_experiment(presets_dir / f"{name}.toml")
        out.append(results_table(experiment, results_dir / f"{name}.csv"))
    return "".join(out)
