"""Constrained loss parameters, stored as unconstrained latents (Barron, Sec. 3.1 of the VAE
experiment): a value in (lo, hi) as lo + (hi - lo)·sigmoid(ℓ), a value > lo as lo + softplus(ℓ).

A learnable latent is an ``nn.Parameter`` (so the model's optimizer trains it and its
``state_dict`` saves it); a fixed one is a buffer (saved, moved by ``.to()``, never trained).
The bounds are saved too (a ``bounds`` buffer): the same latent means another value under
other bounds, so loading a state saved with other bounds is a ``ValueError``, never a silent
change. A state saved before bounds were kept loads with the module's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def as_shape(dims: int | Sequence[int] | None) -> tuple[int, ...]:
    if dims is None:
        return ()
    try:
        shape = (dims,) if isinstance(dims, int) else tuple(dims)
    except TypeError:
        shape = (dims,)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"num_dims must be a positive int or a tuple of them, got {dims!r}")
    return shape


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class _Latent(nn.Module):
    def __init__(
        self, shape: tuple[int, ...], latent: float, learnable: bool, bounds: tuple, name: str
    ):
        super().__init__()
        init = torch.full(shape, latent, dtype=torch.get_default_dtype())
        if learnable:
            self.latent = nn.Parameter(init)
        else:
            self.register_buffer("latent", init)
        self.register_buffer("bounds", torch.tensor(bounds, dtype=torch.float64))
        self._name = name
        self._register_load_state_dict_pre_hook(self._check_bounds)

    @property
    def learnable(self) -> bool:
        return isinstance(self.latent, nn.Parameter)

    def _check_bounds(self, state_dict, prefix, *args) -> None:
        key = prefix + "bounds"
        if key not in state_dict:  # saved before bounds were kept
            state_dict[key] = self.bounds.detach().clone()
            return
        saved = state_dict[key].detach().double().cpu()
        mine = self.bounds.detach().double().cpu()
        if saved.shape != mine.shape or not torch.allclose(saved, mine, rtol=1e-6, atol=0):
            raise ValueError(
                f"the saved {self._name} was learned within bounds {tuple(saved.tolist())}, this "
                f"module has {tuple(mine.tolist())}: the same latent would mean another "
                f"{self._name}; build the loss with the saved bounds"
            )


class BoundedParameter(_Latent):
    """A tensor of ``shape`` with values in (lo, hi): lo + (hi - lo)·sigmoid(latent)."""

    def __init__(
        self, shape, lo: float, hi: float, init: float, learnable: bool = True, name: str = "value"
    ):
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"{name}: need finite bounds lo < hi, got lo={lo!r}, hi={hi!r}")
        if not lo < init < hi:
            raise ValueError(f"initial {name} must lie strictly in ({lo}, {hi}), got {init!r}")
        latent = _logit((init - lo) / (hi - lo))
        super().__init__(as_shape(shape), latent, learnable, (float(lo), float(hi)), name)
        self.lo, self.hi = float(lo), float(hi)

    def forward(self, dtype: torch.dtype | None = None) -> Tensor:
        """The values, computed in ``dtype`` when given (the latent's own otherwise)."""
        latent = self.latent if dtype is None else self.latent.to(dtype)
        return self.lo + (self.hi - self.lo) * torch.sigmoid(latent)

    def extra_repr(self) -> str:
        shape = tuple(self.latent.shape)
        return f"shape={shape}, range=({self.lo}, {self.hi}), learnable={self.learnable}"


class PositiveParameter(_Latent):
    """A tensor of ``shape`` with values > lo: lo + softplus(latent)."""

    def __init__(self, shape, lo: float, init: float, learnable: bool = True, name: str = "value"):
        if not (math.isfinite(lo) and lo >= 0):
            raise ValueError(f"{name}: lower bound must be finite and >= 0, got {lo!r}")
        if not (math.isfinite(init) and init > lo):
            raise ValueError(f"initial {name} must be finite and > {lo}, got {init!r}")
        super().__init__(
            as_shape(shape), _softplus_inverse(init - lo), learnable, (float(lo),), name
        )
        self.lo = float(lo)

    def forward(self, dtype: torch.dtype | None = None) -> Tensor:
        """The values, computed in ``dtype`` when given (the latent's own otherwise)."""
        latent = self.latent if dtype is None else self.latent.to(dtype)
        return self.lo + F.softplus(latent)

    @torch.no_grad()
    def fill_(self, value: float) -> None:
        """Every element set to ``value`` (> lo), as if it had been the initial value."""
        if not (math.isfinite(value) and value > self.lo):
            raise ValueError(f"{self._name} must be finite and > {self.lo}, got {value!r}")
        self.latent.fill_(_softplus_inverse(value - self.lo))

    def extra_repr(self) -> str:
        return f"shape={tuple(self.latent.shape)}, lower={self.lo}, learnable={self.learnable}"
