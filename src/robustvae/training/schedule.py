"""Schedules over a run's epochs: the learning-rate factor, and the annealing of one fixed
loss parameter (Barron's "α annealed 2 → 0", or any other), which every model kind can use.

``anneal = "alpha=2:0"`` moves the loss's ``alpha`` from 2 in the first epoch to 0 in the last;
``anneal_shape`` is ``linear`` or ``cosine`` (slow at both ends). The value is constant within
an epoch, is set by the trainer before the epoch begins (``Task.set_loss_param``), and is
logged in ``metrics.jsonl``. It depends on the epoch and ``epochs`` only, so a resumed run sets
the same values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["ANNEAL_SHAPES", "Anneal", "lr_factor", "parse_anneal"]

ANNEAL_SHAPES = ("linear", "cosine")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf"
_PATTERN = re.compile(rf"^\s*([A-Za-z_]\w*)\s*=\s*({_NUMBER})\s*:\s*({_NUMBER})\s*$")


def lr_factor(schedule: str, epoch: int) -> float:
    """The learning-rate multiplier in ``epoch`` (0-based). 'celeba' follows Chen et al.:
    halve after 30 epochs, then divide by 5 after 50."""
    if schedule == "celeba":
        return 1.0 if epoch < 30 else 0.5 if epoch < 50 else 0.1
    return 1.0


@dataclass(frozen=True)
class Anneal:
    """One loss parameter moved from ``start`` (first epoch) to ``end`` (last epoch)."""

    name: str
    start: float
    end: float
    shape: str = "linear"

    def value(self, epoch: int, epochs: int) -> float:
        """The parameter's value in ``epoch`` (0-based) of ``epochs``."""
        t = 1.0 if epochs <= 1 else min(max(epoch / (epochs - 1), 0.0), 1.0)
        if self.shape == "cosine":
            t = 0.5 * (1.0 - math.cos(math.pi * t))
        if t == 0.0:
            return self.start
        if t == 1.0:
            return self.end
        return self.start + (self.end - self.start) * t


def parse_anneal(text: str | None, shape: str = "linear") -> Anneal | None:
    """``"NAME=START:END"`` → ``Anneal`` (None for None); ValueError naming the format."""
    if shape not in ANNEAL_SHAPES:
        raise ValueError(f"anneal_shape must be one of: {', '.join(ANNEAL_SHAPES)}; got {shape!r}")
    if text is None:
        return None
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"anneal must be NAME=START:END, a loss parameter and its first and last epoch's "
            f"values (e.g. alpha=2:0); got {text!r}"
        )
    name, start, end = match.group(1), float(match.group(2)), float(match.group(3))
    return Anneal(name, start, end, shape)
