"""Every kind's evaluator (``robustvae.evaluation.evaluator.Evaluator``), by kind name: what
the runner, results, report and analysis ask about a kind's runs."""

from __future__ import annotations

from robustvae.evaluation import autoencoder, depth, restoration
from robustvae.evaluation.evaluator import Evaluator
from robustvae.kinds import get_kind

__all__ = ["EVALUATORS", "evaluator_of"]

EVALUATORS: dict[str, Evaluator] = {
    "vae": autoencoder.EVALUATOR,
    "wae": autoencoder.EVALUATOR,
    "vaegan": autoencoder.EVALUATOR,
    "gan": autoencoder.EVALUATOR,
    "restore": restoration.EVALUATOR,
    "depth": depth.EVALUATOR,
}


def evaluator_of(kind: str) -> Evaluator:
    """The evaluator of the registered kind ``kind`` (ValueError listing the kinds otherwise)."""
    get_kind(kind)
    if kind not in EVALUATORS:
        raise ValueError(f"the {kind} kind has no evaluator (robustvae.evaluation.evaluators)")
    return EVALUATORS[kind]
