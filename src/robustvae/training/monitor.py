"""The trainer's view of each step's loss terms: their epoch sums, and the stop on a NaN.

Copying the terms to the host is a synchronisation. On the CPU it costs nothing, and each
step's terms are checked before its first update, so a NaN never reaches the weights. On a GPU
a synchronisation per step would stall the queue of kernels (30% of the step time of the
papers' conv VAE on an H200, see BENCHMARKS.md), so the terms are copied without waiting and
checked one step later, before the next step's first update: the run still stops at the first
non-finite term, naming its step and term, and a model with non-finite weights is never saved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


class TrainingDiverged(RuntimeError):
    """A loss term or a weight became NaN or infinite."""


@dataclass
class _Pending:
    step: int
    epoch: int
    names: list[str]
    values: Tensor  # on the host (pinned when copied from a GPU)
    rows: int
    log: bool
    ready: torch.cuda.Event | None


class TermMonitor:
    """Collects each step's terms (``push``), checks them for NaN, and sums them per epoch.

    ``lag`` is 0 (check at once) or 1 (check a GPU step's terms at the next push or at
    ``flush``). ``agree`` is called with the stacked terms on their device and returns them
    with a NaN wherever any data-parallel rank saw a non-finite value (identity for one
    process). ``where`` names the last good checkpoint in the error message. ``weighted``
    (the task's ``term_weights``) maps a term to the term that weighs it in each batch.
    """

    def __init__(self, lag: int, agree, where, weighted: dict[str, str] | None = None):
        self.lag, self._agree, self._where = lag, agree, where
        self.weighted = dict(weighted or {})
        self._pending: _Pending | None = None
        self.last: list[float] = []
        self.start_epoch()

    def start_epoch(self) -> None:
        self.names: list[str] = []
        self.sums = torch.zeros(0, dtype=torch.float32)
        self.weights = torch.zeros(0, dtype=torch.float32)
        self.rows = 0

    def push(self, terms: dict[str, Tensor], step: int, epoch: int, rows: int, log: bool) -> None:
        """Check (now or one step later) and, with ``log``, add ``terms`` of a batch of
        ``rows`` rows to the epoch's sums."""
        values = self._agree(torch.stack([v.detach().float() for v in terms.values()]))
        if self.lag and values.is_cuda:
            host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            host.copy_(values, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record()
            entry = _Pending(step, epoch, list(terms), host, rows, log, ready)
            self.flush()
            self._pending = entry
        else:
            self.flush()
            self._resolve(_Pending(step, epoch, list(terms), values.cpu(), rows, log, None))

    def flush(self) -> None:
        """Check and sum the step waiting on the GPU, if any."""
        if self._pending is not None:
            entry, self._pending = self._pending, None
            entry.ready.synchronize()
            self._resolve(entry)

    def _resolve(self, entry: _Pending) -> None:
        if not torch.isfinite(entry.values).all():
            values = entry.values.tolist()
            bad = [n for n, v in zip(entry.names, values, strict=True) if not math.isfinite(v)]
            name = sorted(bad, key=lambda n: n == "loss")[0]  # a component before the total
            value = values[entry.names.index(name)]
            raise TrainingDiverged(
                f"step {entry.step} (epoch {entry.epoch + 1}): the {name!r} term is {value}; "
                + self._where()
            )
        if not entry.log:
            return
        if not self.names:
            self.names = entry.names
            self.sums, self.weights = torch.zeros(len(self.names)), torch.zeros(len(self.names))
        if self.weighted:
            weights = term_weights(entry.names, entry.values, self.weighted)
            self.sums += entry.values * weights * entry.rows
            self.weights += weights * entry.rows
        else:  # every step: no per-term weights to build
            self.sums += entry.values * entry.rows
            self.weights += entry.rows
        self.rows += entry.rows
        self.last = entry.values.tolist()

    def totals(self) -> Tensor:
        """The epoch's weighted sums and their weights so far (2 × terms; call ``flush``
        first): a term's mean is their ratio, undefined where its weights sum to 0."""
        return torch.stack([self.sums, self.weights])


def term_weights(names: list[str], values: Tensor, weighted: dict[str, str]) -> Tensor:
    """Each term's weight in a batch: 1, or for a term in ``weighted`` the value of the term
    that weighs it (an error over known pixels, weighed by the share of known pixels)."""
    weights = torch.ones(len(names), dtype=values.dtype)
    for i, name in enumerate(names):
        if name in weighted:
            weights[i] = values[names.index(weighted[name])]
    return weights


def weighted_means(names: list[str], totals: Tensor) -> dict[str, float]:
    """``{term: sum / weight}`` from ``totals`` (as ``TermMonitor.totals``), leaving out the
    terms whose weights sum to 0 (a term no batch defined)."""
    sums, weights = totals
    defined = weights > 0
    means = sums / torch.where(defined, weights, torch.ones_like(weights))
    return {n: m for n, m, d in zip(names, means.tolist(), defined.tolist(), strict=True) if d}
