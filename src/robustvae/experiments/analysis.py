"""The numbers a report plots, apart from the plotting: training curves as mean ± std over
seeds, sweeps as mean ± std per swept value, and a loss's curvature at 0."""

from __future__ import annotations

import math
import statistics

from robustvae.experiments.grid import Cell


def _term(row: dict, term: str):
    """A term of a metrics.jsonl row: ``"sq_l2"`` is a test term, ``"update_share/decoder"``
    the entry ``decoder`` of the row's ``update_share``; None where it was not logged."""
    section, _, name = term.rpartition("/")
    value = row.get(section or "test", {})
    return value.get(name) if isinstance(value, dict) else None


def mean_band(runs: list[list[dict]], term: str):
    """(steps, mean, std or None) of ``term`` (a test term, or ``section/name``: see
    ``_term``) over seeds (metrics.jsonl rows of each run), at the steps where every run that
    logged the term logged it; None when no run logged it. std needs two runs."""
    logged = [{row["step"]: _term(row, term) for row in r} for r in runs]
    logged = [{s: v for s, v in values.items() if v is not None} for values in logged]
    logged = [values for values in logged if values]
    if not logged:
        return None
    steps = sorted(set.intersection(*(set(values) for values in logged)))
    values = [[run[s] for run in logged] for s in steps]
    mean = [statistics.fmean(v) for v in values]
    std = [statistics.stdev(v) for v in values] if len(logged) > 1 else None
    return steps, mean, std


def sweep_summary(xs: list[float], points: list[dict], metric: str):
    """(sorted xs, mean, std) of ``metric`` over the rows at each x (std 0 for one row), or
    None when no row has the metric."""
    by_x: dict[float, list[float]] = {}
    for x, row in zip(xs, points, strict=True):
        if metric in row:
            by_x.setdefault(x, []).append(row[metric])
    if not by_x:
        return None
    order = sorted(by_x)
    means = [statistics.fmean(by_x[x]) for x in order]
    errors = [statistics.stdev(by_x[x]) if len(by_x[x]) > 1 else 0.0 for x in order]
    return order, means, errors


def curvature_at_zero(cell: Cell) -> float:
    """λ·ρ''(0) of the cell's loss by central differences in float64 (the loss and its weight
    λ in the objective as the kind's evaluator reads them, ``Evaluator.training_loss``); nan
    where ρ is not twice differentiable at 0 (l1), the kind trains no loss between images, or
    the loss cannot be built alone (learned parameters, a representation)."""
    import torch

    from robustvae.evaluation.evaluators import evaluator_of

    trained = evaluator_of(cell.config.kind).training_loss(cell.config.model)
    if trained is None:
        return math.nan
    spec, weight = trained
    try:
        loss = spec.module(1, reduction="none").double()
    except ValueError:
        return math.nan
    if any(p.requires_grad for p in loss.parameters()):
        return math.nan
    estimates = []
    for h in (1e-5, 1e-6):
        t = torch.tensor([-h, 0.0, h], dtype=torch.float64)
        with torch.no_grad():
            rho = loss(t, torch.zeros_like(t)).reshape(-1).tolist()
        estimates.append((rho[0] - 2 * rho[1] + rho[2]) / h**2)
    coarse, fine = estimates
    if not math.isfinite(fine) or abs(coarse - fine) > 1e-3 * max(abs(fine), 1e-12):
        return math.nan
    return weight * fine
