"""Schedules over a run: the learning rate's, step by step, and the annealing of one fixed loss
parameter (Barron's "α annealed 2 → 0", or any other), epoch by epoch; every kind can use both.

The learning rate of every parameter group is its own rate times ``LRSchedule.factor(step)``:

- ``constant``: 1;
- ``step``: multiplied by ``lr_gamma`` at each epoch of ``lr_milestones`` (one factor for
  all, or one per milestone: WAE's CelebA schedule is milestones 30, 50 with factors 0.5, 0.2);
- ``cosine``: ½·(1 + cos(π·t)), t the share of the run's steps done, from 1 down to 0;
- ``rampdown``: Noise2Noise's: 1, then over the last ``rampdown_fraction`` of the steps
  ((1 + cos(π·p))/2)², p going 0 → 1;

and with ``warmup_steps`` > 0 it first rises linearly, (step + 1)/warmup_steps, over that many
steps. The factor depends on the step and the run's settings only, so a resumed run sets the
same rates; ``cosine`` and ``rampdown`` follow the run's ``epochs``, so training on with more
epochs stretches them from where the run stands.

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

__all__ = ["ANNEAL_SHAPES", "LR_SCHEDULES", "Anneal", "LRSchedule", "parse_anneal"]

LR_SCHEDULES = ("constant", "step", "cosine", "rampdown")

ANNEAL_SHAPES = ("linear", "cosine")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf"
_PATTERN = re.compile(rf"^\s*([A-Za-z_]\w*)\s*=\s*({_NUMBER})\s*:\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class LRSchedule:
    """The learning-rate factor of every step of a run (see the module docstring)."""

    kind: str
    total_steps: int
    steps_per_epoch: int
    warmup_steps: int = 0
    milestones: tuple[int, ...] = ()  # epochs
    gamma: tuple[float, ...] = (0.1,)  # one factor for every milestone, or one each
    rampdown_fraction: float = 0.3

    def factor(self, step: int) -> float:
        """The factor of ``step`` (0-based, counted over the whole run)."""
        factor = 1.0
        if self.kind == "step":
            for i, milestone in enumerate(self.milestones):
                if step >= milestone * self.steps_per_epoch:
                    factor *= self.gamma[i] if len(self.gamma) > 1 else self.gamma[0]
        elif self.kind == "cosine":
            t = min(step / max(self.total_steps - 1, 1), 1.0)
            factor = 0.5 * (1.0 + math.cos(math.pi * t))
        elif self.kind == "rampdown":
            length = self.rampdown_fraction * self.total_steps
            start = self.total_steps - length
            if length > 0 and step >= start:
                p = min((step - start) / length, 1.0)
                factor = (0.5 + 0.5 * math.cos(math.pi * p)) ** 2
        if self.warmup_steps > 0 and step < self.warmup_steps:
            factor *= (step + 1) / self.warmup_steps
        return factor


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
