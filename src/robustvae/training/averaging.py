"""Weight averaging: an exponential moving average of a model's weights, kept beside them.

After every training step each floating-point parameter's average moves towards it,
``average ← decay·average + (1 − decay)·weight``; buffers (batch norm's running statistics,
counters, learned-loss state) are copied as they are, since averaging a running statistic
makes no sense. The averages start as the initial weights. They are checkpointed with the
weights (``ema.<name>`` tensors) and resumed bit for bit; the per-epoch test terms,
evaluation, pictures and ``apply``/``predict`` use them (``load_run``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """The moving average of ``model``'s state (see the module docstring)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"the averaging decay must be in (0, 1), got {decay!r}")
        self.model, self.decay = model, decay
        self._params = dict(model.named_parameters())
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def _averaged(self) -> tuple[list[Tensor], list[Tensor]]:
        names = [n for n, p in self._params.items() if p.is_floating_point()]
        return [self.state[n] for n in names], [self._params[n].detach() for n in names]

    @torch.no_grad()
    def update(self) -> None:
        """One step: the parameters' averages move towards them; buffers are copied."""
        averages, weights = self._averaged()
        if averages:
            torch._foreach_lerp_(averages, weights, 1.0 - self.decay)
        for name, value in self.model.state_dict().items():
            if name not in self._params:
                self.state[name].copy_(value)

    def load(self, state: dict[str, Tensor], source) -> None:
        """Resume from checkpointed averages (ValueError naming ``source`` if they do not fit)."""
        if set(state) != set(self.state) or any(
            state[k].shape != self.state[k].shape for k in state
        ):
            raise ValueError(f"{source}: its averaged weights do not fit the model")
        with torch.no_grad():
            for name, value in state.items():
                self.state[name].copy_(value)

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model holds the averages inside the block, its own weights again after it."""
        own = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.state)
        try:
            yield
        finally:
            self.model.load_state_dict(own)
