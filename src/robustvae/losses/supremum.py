"""Barron's ρ is bounded for α < 0: ρ < sup ρ = |α−2|/|α| (Welsch's 1 at α = −∞). Rounding can
put a computed value above it; these bring such values down to the largest number of their
dtype not above the true bound, leaving gradients as they were."""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

import torch
from torch import Tensor

from robustvae.losses.arguments import ALPHA_ZERO_BELOW

__all__ = ["at_most_the_supremum", "supremum_below"]


@cache  # a fixed-α loss asks on every eager call
def supremum_below(alpha: float, dtype: torch.dtype) -> float:
    """The largest ``dtype`` number ≤ sup ρ = |α−2|/|α| for a finite α < 0 (exact rational
    arithmetic, then rounded down)."""
    exact = (Fraction(2) - Fraction(alpha)) / -Fraction(alpha)
    nearest = torch.tensor(float(exact), dtype=dtype)
    if Fraction(nearest.item()) > exact:
        nearest = torch.nextafter(nearest, torch.zeros_like(nearest))
    return nearest.item()


def at_most_the_supremum(rho: Tensor, alpha: float | Tensor) -> Tensor:
    """ρ for α < 0 (below −1e-20, where α is not 0) with values rounded above |α−2|/|α|
    brought down to it (the largest number of ρ's dtype not above it); gradients unchanged."""
    if isinstance(alpha, Tensor):
        wide = alpha.detach().double()
        negative = wide <= -ALPHA_ZERO_BELOW  # above: α = 0, unbounded
        if not bool(negative.any()):  # no bound to keep: no pass over ρ
            return rho
        exact = (2.0 - wide) / torch.where(negative, -wide, 1.0)
        bound = exact.to(rho.dtype)
        if rho.dtype != torch.float64:
            bound = torch.where(bound.double() > exact, torch.nextafter(bound, 0 * bound), bound)
        bound = torch.where(negative & torch.isfinite(wide), bound, math.inf)
    elif alpha <= -ALPHA_ZERO_BELOW and math.isfinite(alpha):
        bound = supremum_below(alpha, rho.dtype)
    else:
        return rho
    above = rho.detach() > bound
    return torch.where(above, rho - (rho.detach() - bound), rho)
