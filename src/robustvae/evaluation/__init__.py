"""Evaluation of trained runs, per model kind, above the pure metrics of ``robustvae.metrics``.

``evaluate_run(run_dir, …)`` looks up the run's kind and calls its evaluator (an ``Evaluator``,
``robustvae.evaluation.evaluator``; every kind's is in ``robustvae.evaluation.evaluators``);
``draw_run`` draws the kind's pictures. Both use the checkpoint that ``RunDir.checkpoint``
picks, and always run the model in eval mode.

The names below load on first use: the evaluators import the metrics (torchmetrics, seconds),
which a command that only reads the evaluation settings (``robustvae --help``) never needs.
"""

from robustvae.evaluation.evaluator import Evaluator
from robustvae.evaluation.settings import DEFAULTS, evaluation_settings

__all__ = [
    "DEFAULTS",
    "EVALUATORS",
    "Evaluator",
    "draw_run",
    "evaluate_run",
    "evaluation_settings",
    "evaluator_of",
    "evaluator_of_run",
    "is_evaluated",
    "kind_of_run",
]

_FROM_RUNS = ("draw_run", "evaluate_run", "evaluator_of_run", "is_evaluated", "kind_of_run")


def __getattr__(name: str):
    if name in _FROM_RUNS:
        from robustvae.evaluation import runs

        return getattr(runs, name)
    if name in ("EVALUATORS", "evaluator_of"):
        from robustvae.evaluation import evaluators

        return getattr(evaluators, name)
    raise AttributeError(f"module 'robustvae.evaluation' has no attribute {name!r}")
