"""Samples of Barron's general distribution, p(x | α, c) = exp(−ρ(x, α, c)) / (c·Z(α)) for
α ∈ [0, ALPHA_MAX]: the likelihood the adaptive loss fits, drawn from to see what it models.

Rejection sampling from a Cauchy proposal (Barron's method): ρ(x, α, 1) grows with α, so for
α ≥ 0 it is at least ρ(x, 0, 1) = log(½x² + 1), whose density is a Cauchy of scale √2. A
proposal x is kept with probability exp(ρ(x, 0, 1) − ρ(x, α, 1)) ≤ 1 and then scaled by c.
About 56% of proposals are kept at α = 2, more at smaller α.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from robustvae.losses import functional as LF
from robustvae.losses.partition import ALPHA_MAX

__all__ = ["sample_general"]


def sample_general(
    alpha: float | Tensor,
    scale: float | Tensor = 1.0,
    shape: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Independent draws from the general distribution with shape ``alpha`` ∈ [0, ALPHA_MAX]
    and scale ``scale`` > 0 (numbers or tensors), one per element of the broadcast shape of
    ``alpha``, ``scale`` and ``shape``; in ``dtype`` (the default dtype if not given), drawn
    in float64 from ``generator``. α = 2 gives N(0, c²), α = 0 a Cauchy of scale √2·c."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    scale = torch.as_tensor(scale, dtype=torch.float64)
    LF.check_range("alpha", alpha, 0.0, ALPHA_MAX)
    LF.check_positive("scale", scale)
    size = torch.broadcast_shapes(alpha.shape, scale.shape, tuple(shape))
    alphas = alpha.expand(size).flatten()
    samples = torch.empty(alphas.numel(), dtype=torch.float64)
    pending = torch.arange(alphas.numel())
    while pending.numel():
        u = torch.rand(pending.numel(), dtype=torch.float64, generator=generator)
        proposal = math.sqrt(2.0) * torch.tan(math.pi * (u - 0.5))
        excess = LF.general(proposal, alphas[pending]) - LF.general(proposal, 0.0)
        keep = torch.rand(pending.numel(), dtype=torch.float64, generator=generator) <= torch.exp(
            -excess
        )
        samples[pending[keep]] = proposal[keep]
        pending = pending[~keep]
    drawn = samples.reshape(size) * scale.expand(size)
    return drawn.to(dtype or torch.get_default_dtype())
