"""Evaluate and draw a run directory with its kind's evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustvae.evaluation.evaluator import Evaluator
from robustvae.evaluation.evaluators import evaluator_of
from robustvae.evaluation.settings import evaluation_settings
from robustvae.kinds import Kind, get_kind
from robustvae.training.rundir import RunDir


def kind_of_run(run_dir: str | Path) -> Kind:
    """The registered kind a run directory was trained as (from its config.json)."""
    settings = RunDir(run_dir).saved_settings()
    if settings is None:
        raise ValueError(f"{run_dir} holds no run (no config.json)")
    return get_kind(settings.get("kind", "vae"))


def evaluator_of_run(run_dir: str | Path) -> Evaluator:
    """The evaluator of the kind a run directory was trained as."""
    return evaluator_of(kind_of_run(run_dir).name)


def evaluate_run(run_dir: str | Path, device: str = "cpu", **settings: Any) -> dict:
    """Evaluate ``run_dir`` with its kind's evaluator and write ``evaluation.json`` (atomically,
    with the settings it was computed with, and which weights were scored: the moving average
    of a run that kept one, else the trained weights). ``settings``: see
    ``evaluation_settings``."""
    chosen = evaluation_settings(**settings)
    results = evaluator_of_run(run_dir).evaluate(run_dir, chosen, device)
    results["settings"] = chosen
    decay = (RunDir(run_dir).saved_settings() or {}).get("ema") or 0
    results["weights"] = f"averaged (ema {decay})" if decay else "trained"
    RunDir(run_dir).write_evaluation(results)
    return results


def is_evaluated(run_dir: str | Path, **settings: Any) -> bool:
    """``run_dir`` holds an evaluation made with these settings."""
    saved = RunDir(run_dir).read_evaluation()
    return saved is not None and saved.get("settings") == evaluation_settings(**settings)


def draw_run(run_dir: str | Path, device: str = "cpu") -> list[Path]:
    """The kind's pictures of the run, as PNG files in ``run_dir``."""
    return evaluator_of_run(run_dir).draw(run_dir, device)
