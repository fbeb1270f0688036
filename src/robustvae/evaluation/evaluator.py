"""What a kind's evaluation side gives the generic parts of the package (the runner, the
results table, the report and its analysis): one ``Evaluator`` per kind, in
``robustvae.evaluation.evaluators``, which those parts ask, never a kind's config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Evaluator", "no_report_blocks", "no_training_loss"]


def no_report_blocks(experiment, rows: list[dict], out_dir: Path) -> list[tuple[str, str]]:
    """No figures beyond the report's shared ones."""
    return []


def no_training_loss(model_config) -> None:
    """No loss between images that the report's analysis can read off the settings."""
    return None


@dataclass(frozen=True)
class Evaluator:
    """A kind's evaluation: how a trained run is scored and drawn, and how its scores are shown.

    - ``evaluate(run_dir, settings, device)``: the run's scores, a dict written to
      ``evaluation.json`` (``settings``: ``robustvae.evaluation.evaluation_settings``);
    - ``draw(run_dir, device)``: the run's pictures, PNG files in the run directory named
      after ``panels``, which the report shows side by side, with ``pictures_note``;
    - ``columns``: (key, title) of its results-table columns, in order; ``paired``: the keys
      each row is compared with its baseline on, seed by seed;
    - ``per_image``: (key, higher is better) of the scores ``evaluate`` also gives per scored
      ``per_image_unit`` (as ``per_UNIT``), compared with the baseline unit by unit;
    - ``curve_terms(configs, histories)``: (test term, title) pairs the report plots against
      steps for these runs; ``report_blocks(experiment, rows, out_dir)``: the kind's own report
      figures, (path, caption) pairs;
    - ``training_loss(model_config)``: (the ``LossSpec`` between images it trains, its weight
      in the objective), or None: what the analysis reads a loss's curvature from.
    """

    evaluate: Callable[[Path, dict, str], dict]
    draw: Callable[[Path, str], list[Path]]
    columns: tuple[tuple[str, str], ...]
    paired: tuple[str, ...]
    panels: tuple[str, ...]
    pictures_note: str
    curve_terms: Callable[[list, dict], list[tuple[str, str]]]
    report_blocks: Callable[[Any, list[dict], Path], list[tuple[str, str]]] = no_report_blocks
    per_image: tuple[tuple[str, bool], ...] = ()
    per_image_unit: str = "image"
    training_loss: Callable[[Any], tuple[Any, float] | None] = no_training_loss

    def __post_init__(self):
        keys = {key for key, _ in self.columns}
        unknown = [key for key in self.paired if key not in keys]
        if unknown:
            raise ValueError(f"paired column(s) {unknown} are not among the columns")
