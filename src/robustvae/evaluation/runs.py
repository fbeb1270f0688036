"""Evaluate and draw a run directory with its kind's evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustvae.evaluation.settings import evaluation_settings
from robustvae.kinds import get_kind
from robustvae.training.rundir import RunDir


def kind_of_run(run_dir: str | Path):
    """The registered kind a run directory was trained as (from its config.json)."""
    settings = RunDir(run_dir).saved_settings()
    if settings is None:
        raise ValueError(f"{run_dir} holds no run (no config.json)")
    return get_kind(settings.get("kind", "vae"))


def evaluate_run(run_dir: str | Path, device: str = "cpu", **settings: Any) -> dict:
    """Evaluate ``run_dir`` with its kind's evaluator and write ``evaluation.json`` (atomically,
    with the settings it was computed with, and which weights were scored: the moving average
    of a run that kept one, else the trained weights). ``settings``: see
    ``evaluation_settings``."""
    chosen = evaluation_settings(**settings)
    results = kind_of_run(run_dir).evaluator().evaluate(run_dir, chosen, device)
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
    return kind_of_run(run_dir).evaluator().draw(run_dir, device)


def run_label(config) -> str:
    """A run's loss as a row label: ``logcosh (a=10)``, ``adaptive [dct, yuv]``, with its
    annealing (``general (alpha=2.0, scale=0.01), alpha=2:0 linear``) and ``N2C`` for a
    restorer trained on clean targets."""
    label = config.model.loss_spec().label
    if config.anneal:
        label += f", {config.anneal} {config.anneal_shape}"
    return label + (" N2C" if config.model.to_dict().get("clean_targets") else "")


def unique_labels(labels: list[str], run_dirs: list) -> list[str]:
    """Row labels for runs compared side by side: their loss labels, else their folder names,
    else their paths; repeats numbered (the same run twice)."""
    for candidate in (labels, [Path(r).name for r in run_dirs], [str(r) for r in run_dirs]):
        if len(set(candidate)) == len(candidate):
            return candidate
    seen: dict[str, int] = {}
    out = []
    for label in map(str, run_dirs):
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out
