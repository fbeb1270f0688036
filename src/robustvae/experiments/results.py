"""Results of a grid: results.csv (one row per cell) and results.md (mean ± std over seeds,
and each loss's change against the baseline loss in %, as the papers print it)."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

METRICS = (
    ("sharpness_reconstructed", "sharpness (recon.)"),
    ("sharpness_generated", "sharpness (gen.)"),
    ("fid", "FID"),
    ("ssim", "SSIM"),
    ("sq_l2", "squared L2"),
)


def write_results(experiment, rows: list[dict], out_dir: Path) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "results.md").write_text(markdown_table(experiment, rows))


def _group_key(row: dict, axes: list[str], drop: tuple[str, ...]) -> tuple:
    return tuple(row.get(a) for a in axes if a not in drop)


def markdown_table(experiment, rows: list[dict]) -> str:
    axes = [a for a in experiment.axes if a != "seed"]
    metrics = [(k, name) for k, name in METRICS if any(k in r for r in rows)]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(_group_key(row, experiment.axes, ("seed",)), []).append(row)
    means = {
        key: {k: statistics.fmean(r[k] for r in members) for k, _ in metrics if k in members[0]}
        for key, members in groups.items()
    }
    lines = [
        f"# {experiment.name}",
        "",
        "mean ± std over seeds"
        + (f"; (±%) against {experiment.baseline}" if experiment.baseline else ""),
        "",
        "| " + " | ".join(axes + [name for _, name in metrics]) + " |",
        "| " + " | ".join(["---"] * len(axes) + ["---:"] * len(metrics)) + " |",
    ]
    loss_index = axes.index("loss")
    for key, members in groups.items():
        cells = [str(v) for v in key]
        baseline_key = key[:loss_index] + (experiment.baseline,) + key[loss_index + 1 :]
        for metric, _ in metrics:
            values = [r[metric] for r in members if metric in r]
            if not values:
                cells.append("")
                continue
            mean = statistics.fmean(values)
            text = f"{mean:.4g}"
            if len(values) > 1:
                text += f" ± {statistics.stdev(values):.2g}"
            base = means.get(baseline_key, {}).get(metric)
            if experiment.baseline and key != baseline_key and base:
                text += f" ({(mean - base) / abs(base):+.0%})"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
