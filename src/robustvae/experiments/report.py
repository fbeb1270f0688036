"""The report of a grid: ``report.md`` and ``report.html`` (the same content) beside
results.csv, with pictures under ``report/``:

- the results table (mean ± std over seeds, % against the baseline);
- every cell's pictures (its kind's ``PANELS``: samples, reconstructions, restorations …),
  the losses side by side (first seed of each group);
- training curves: the test terms each kind's evaluator names (``curve_terms``: squared L2
  and the latent term of an autoencoder, Chen et al., Fig. 6a/b) against steps;
- each kind's own figures (``report_blocks``: a restorer's Fig. 10 and 11);
- sweep plots for losses with a swept setting: FID and squared L2 against the loss's
  curvature at 0, λ·ρ''(0) (a for logcosh, 2λ for λ-scaled l2; Chen et al., Fig. 6c).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from robustvae.experiments.analysis import curvature_at_zero, mean_band, sweep_summary  # noqa: E402
from robustvae.experiments.grid import Cell, Experiment, slug  # noqa: E402
from robustvae.experiments.results import (  # noqa: E402
    Table,
    group_by,
    markdown_table,
    summary_table,
    table_caption,
)
from robustvae.files import atomic_write_text  # noqa: E402
from robustvae.kinds import get_kind  # noqa: E402

CURVATURE = "curvature of the loss at 0, λ·ρ''(0)"
SWEEP_METRICS = (
    ("fid", "FID (lower is better)"),
    ("fid_inception", "FID, Inception (lower is better)"),
    ("sharpness_generated", "sharpness of samples"),
    ("sq_l2", "test squared L2"),
    ("ssim", "SSIM of restored test images (higher is better)"),
)


@dataclass
class Section:
    title: str
    blocks: list  # str (a paragraph), Table, or Figure


@dataclass
class Figure:
    path: str  # relative to the report
    caption: str


def write_report(
    experiment: Experiment, rows: list[dict], out_dir: str | Path, missing: list[str] = ()
) -> Path:
    """Write report.md, report.html and report/*.png under ``out_dir``; return report.html.
    ``missing``: lines naming the grid's cells not in the report (failed or unfinished)."""
    out_dir = Path(out_dir)
    (out_dir / "report").mkdir(exist_ok=True)
    cells = {cell.id: cell for cell in experiment.cells}
    results: list = [table_caption(experiment, rows), summary_table(experiment, rows)]
    if missing:
        results.append(
            f"Not in this report: {len(missing) - 1} cell(s) of the grid — "
            + "; ".join(missing)
            + "."
        )
    sections = [
        Section("Results", results),
        Section("Settings", _settings(experiment, _devices(experiment, out_dir))),
        Section("Pictures", _picture_tables(experiment)),
        Section("Training curves", _curves(experiment, out_dir)),
    ]
    for kind in dict.fromkeys(c.config.kind for c in experiment.cells):
        figures = _evaluator(kind).report_blocks(experiment, rows, out_dir)
        if figures:
            blocks = [Figure(path, caption) for path, caption in figures]
            sections.append(Section(get_kind(kind).summary, blocks))
    sweeps = _sweeps(experiment, rows, cells, out_dir)
    if sweeps:
        sections.append(Section("Sweeps", sweeps))
    intro = experiment.description or ""
    atomic_write_text(out_dir / "report.md", _markdown(experiment.name, intro, sections))
    path = atomic_write_text(out_dir / "report.html", _html(experiment.name, intro, sections))
    return path


# ----------------------------------------------------------------------------- content


def _devices(experiment: Experiment, out_dir: Path) -> dict[str, int]:
    """How many cells trained on each device, as their metrics.jsonl rows record it (a cell
    resumed elsewhere counts for each)."""
    from robustvae.training import RunDir

    counts: dict[str, int] = {}
    for cell in experiment.cells:
        rows = RunDir(out_dir / "cells" / cell.id).read_metrics()
        used = {r.get("device") for r in rows if isinstance(r, dict)}
        for device in sorted(d for d in used if isinstance(d, str)):
            counts[device] = counts.get(device, 0) + 1
    return counts


def _settings(experiment: Experiment, devices: dict[str, int]) -> list:
    """The settings every cell shares (``--set`` included), what varies, the devices the
    cells trained on, and the evaluation."""
    configs = [c.config.to_dict() for c in experiment.cells]
    keys = dict.fromkeys(k for config in configs for k in config)
    shared = {
        k: configs[0].get(k)
        for k in keys
        if k != "progress" and all(config.get(k) == configs[0].get(k) for config in configs)
    }
    varying = [k for k in keys if k not in shared and k != "progress"]
    evaluation = ", ".join(f"{k} = {v}" for k, v in experiment.evaluate.items())
    blocks: list = [f"Evaluation: {evaluation}."]
    if varying:
        blocks.append("Varying between cells (see the cell ids): " + ", ".join(varying) + ".")
    body = [[k, _setting_text(v)] for k, v in shared.items()]
    if devices:
        blocks.append(
            "Trained on: "
            + ", ".join(f"{d} ({n} cell{'s' * (n > 1)})" for d, n in devices.items())
            + "."
        )
    blocks.append(Table(["setting shared by every cell", "value"], body, 2))
    return blocks


def _setting_text(value) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_setting_text(v) for v in value) or "none"
    return "none" if value is None else str(value)


def _evaluator(kind: str):
    """The kind's evaluator, imported on use: the evaluators load the metrics (torchmetrics,
    seconds), which reading a grid for ``--help`` or ``--dry-run`` never needs."""
    from robustvae.evaluation.evaluators import evaluator_of

    return evaluator_of(kind)


#: Picture tables hold at most this many losses side by side; more wrap into further tables.
PICTURE_COLUMNS = 6


def _picture_tables(experiment: Experiment) -> list:
    """Per group of cells that differ only in the loss: one table, a column per loss."""
    notes = {
        _evaluator(k).pictures_note for k in {c.config.kind for c in experiment.cells}
    }  # kinds sharing an evaluator share its note: say it once
    blocks: list = [" ".join(sorted(notes))]
    seeds = {c.axes.get("seed") for c in experiment.cells}
    first_seed = next((c.axes["seed"] for c in experiment.cells if "seed" in c.axes), None)
    if len(seeds) > 1:
        blocks[0] += f" Seed {first_seed} of each group is shown."
    groups: dict[tuple, list[Cell]] = {}
    for cell in experiment.cells:
        if cell.axes.get("seed", first_seed) != first_seed:
            continue
        key = tuple((a, v) for a, v in cell.axes.items() if a not in ("loss", "seed"))
        groups.setdefault(key, []).append(cell)
    for key, members in groups.items():
        if key:
            blocks.append("**" + ", ".join(f"{a} = {v}" for a, v in key) + "**")
        for start in range(0, len(members), PICTURE_COLUMNS):
            chunk = members[start : start + PICTURE_COLUMNS]
            header = [""] + [c.axes["loss"] for c in chunk]
            panels = dict.fromkeys(p for c in chunk for p in _evaluator(c.config.kind).panels)
            body = [
                [panel] + [Figure(f"cells/{c.id}/{panel}.png", f"{c.id} {panel}") for c in chunk]
                for panel in panels
            ]
            blocks.append(Table(header, body, 1))
    return blocks


def _curves(experiment: Experiment, out_dir: Path) -> list:
    from robustvae.training import RunDir

    blocks: list = []
    groups: dict[tuple, list[Cell]] = {}
    mixed = len({c.config.kind for c in experiment.cells}) > 1
    for cell in experiment.cells:  # kinds log different terms: one figure per kind
        key = tuple((a, v) for a, v in cell.axes.items() if a not in ("loss", "seed"))
        key += (("kind", cell.config.kind),) if mixed and "kind" not in cell.axes else ()
        groups.setdefault(key, []).append(cell)
    for key, members in groups.items():
        histories = {c.id: RunDir(out_dir / "cells" / c.id).read_metrics() for c in members}
        evaluator = _evaluator(members[0].config.kind)
        terms = evaluator.curve_terms([c.config for c in members], histories)
        wide = 2.2 if len({c.axes["loss"] for c in members}) > 6 else 0.0
        fig, axes = plt.subplots(
            1,
            len(terms),
            figsize=(5.2 * len(terms) + wide, 3.8),
            squeeze=False,
            layout="constrained",
        )
        _enough_colours(axes[0], len({c.axes["loss"] for c in members}))
        for ax, (term, title) in zip(axes[0], terms, strict=True):
            by_loss: dict[str, list[list[dict]]] = {}
            for cell in members:
                by_loss.setdefault(cell.axes["loss"], []).append(histories[cell.id])
            for label, runs in by_loss.items():
                _plot_mean_band(ax, runs, term, label)
            ax.set_xlabel("step")
            ax.set_title(title, fontsize=10)
            ax.grid(alpha=0.3)
            if term in ("sq_l2", "clean_mse"):
                ax.set_yscale("log")
        _legend(fig, axes[0][-1], len({c.axes["loss"] for c in members}))
        name = "curves-" + (slug("-".join(f"{a}-{v}" for a, v in key)) or "all") + ".png"
        caption = ", ".join(f"{a} = {v}" for a, v in key) or experiment.name
        fig.suptitle(caption, fontsize=11)
        fig.savefig(out_dir / "report" / name, dpi=100)
        plt.close(fig)
        blocks.append(Figure(f"report/{name}", f"test terms during training: {caption}"))
    return blocks


def _enough_colours(axes, series: int) -> None:
    if series > 10:
        colours = plt.get_cmap("tab20").colors
        for ax in axes:
            ax.set_prop_cycle(color=colours)


def _legend(fig, ax, series: int) -> None:
    """Inside the first panel for a few series, else to the right of the figure."""
    if series <= 6:
        ax.legend(fontsize=8)
    else:
        fig.legend(*ax.get_legend_handles_labels(), loc="outside right center", fontsize=8)


def _plot_mean_band(ax, runs: list[list[dict]], term: str, label: str) -> None:
    """Mean over seeds as a line, ± std as a band."""
    band = mean_band(runs, term)
    if band is None:
        return
    steps, mean, std = band
    (line,) = ax.plot(steps, mean, label=label, marker="." if len(steps) < 30 else None)
    if std is not None:
        low = [m - s for m, s in zip(mean, std, strict=True)]
        high = [m + s for m, s in zip(mean, std, strict=True)]
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)


def _sweeps(experiment: Experiment, rows: list[dict], cells: dict, out_dir: Path) -> list:
    swept = [r for r in rows if cells[r["cell"]].sweep is not None]
    if not swept:
        return []
    blocks: list = []
    metrics = [(k, title) for k, title in SWEEP_METRICS if any(k in r for r in swept)][:2]
    if "sq_l2" not in [k for k, _ in metrics] and any("sq_l2" in r for r in swept):
        metrics.append(("sq_l2", "test squared L2"))
    others = [a for a in experiment.axes if a not in ("loss", "seed")]
    for key, members in group_by(swept, others, ()).items():
        # One figure per x quantity: the curvature at 0 where it tells the sweep's values
        # apart, else each swept setting on its own axis.
        by_x: dict[str, list[tuple[str, list[float], list[dict]]]] = {}
        series: dict[str, list[dict]] = {}
        for row in members:
            series.setdefault(cells[row["cell"]].sweep.label, []).append(row)
        for label, points in series.items():
            sweep = cells[points[0]["cell"]].sweep
            values = [cells[r["cell"]].sweep.value for r in points]
            curv = [curvature_at_zero(cells[r["cell"]]) for r in points]
            distinct = len({round(c, 6) for c in curv}) == len(set(values))
            if all(math.isfinite(c) and c > 0 for c in curv) and distinct:
                by_x.setdefault(CURVATURE, []).append((label, curv, points))
            else:
                by_x.setdefault(sweep.setting, []).append((label, values, points))
        caption = ", ".join(f"{a} = {v}" for a, v in zip(others, key, strict=True))
        for x_title, plotted in by_x.items():
            fig, axes = plt.subplots(
                1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False
            )
            for label, xs, points in plotted:
                legend = f"{label} ({cells[points[0]['cell']].sweep.setting} swept)"
                for ax, (metric, title) in zip(axes[0], metrics, strict=True):
                    _plot_sweep(ax, xs, points, metric, legend)
                    ax.set_title(title, fontsize=10)
            for ax in axes[0]:
                ax.set_xlabel(x_title)
                ax.grid(alpha=0.3)
            axes[0][0].legend(fontsize=8)
            fig.suptitle(caption or experiment.name, fontsize=11)
            fig.tight_layout()
            parts = [*map(str, key), "" if x_title == CURVATURE else x_title]
            name = "sweep-" + (slug("-".join(p for p in parts if p)) or "all") + ".png"
            fig.savefig(out_dir / "report" / name, dpi=100)
            plt.close(fig)
            blocks.append(Figure(f"report/{name}", f"sweeps: {caption or experiment.name}"))
    return blocks


def _plot_sweep(ax, xs: list[float], points: list[dict], metric: str, label: str) -> None:
    summary = sweep_summary(xs, points, metric)
    if summary is None:
        return
    order, means, errors = summary
    ax.errorbar(order, means, yerr=errors, marker="o", capsize=3, label=label)
    if min(order) > 0 and max(order) / min(order) > 20:
        ax.set_xscale("log")


# ----------------------------------------------------------------------------- rendering


def _url(path: str) -> str:
    return quote(path, safe="/=,+")


def _markdown(title: str, intro: str, sections: list[Section]) -> str:
    parts = [f"# {title}", intro] if intro else [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append(markdown_table(block._replace(body=_md_cells(block.body))))
            elif isinstance(block, Figure):
                parts.append(f"![{block.caption}]({_url(block.path)})")
            else:
                parts.append(str(block))
    return "\n\n".join(parts) + "\n"


def _md_cells(body: list[list]) -> list[list[str]]:
    return [
        [f"![{c.caption}]({_url(c.path)})" if isinstance(c, Figure) else str(c) for c in row]
        for row in body
    ]


STYLE = """
body { font-family: DejaVu Sans, sans-serif; margin: 2em auto; max-width: 1400px; }
div.wide { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; image-rendering: pixelated; }
figure { margin: 1em 0; }
"""


def _html(title: str, intro: str, sections: list[Section]) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p>{esc(intro)}</p>")
    for section in sections:
        parts.append(f"<h2>{esc(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append(_html_table(block))
            elif isinstance(block, Figure):
                parts.append(
                    f'<figure><img src="{esc(_url(block.path))}" alt="{esc(block.caption)}">'
                    f"<figcaption>{esc(block.caption)}</figcaption></figure>"
                )
            else:
                text = esc(str(block))
                if text.startswith("**") and text.endswith("**"):
                    text = f"<strong>{text[2:-2]}</strong>"
                parts.append(f"<p>{text}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_table(table: Table) -> str:
    esc = html.escape
    rows = ["<tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in table.header) + "</tr>"]
    for body_row in table.body:
        cells = []
        for i, cell in enumerate(body_row):
            if isinstance(cell, Figure):
                cells.append(
                    f'<td><img src="{esc(_url(cell.path))}" alt="{esc(cell.caption)}"></td>'
                )
            elif i >= table.label_columns:
                cells.append(f'<td class="num">{esc(str(cell))}</td>')
            else:
                cells.append(f"<td>{esc(str(cell))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<div class="wide"><table>\n' + "\n".join(rows) + "\n</table></div>"
