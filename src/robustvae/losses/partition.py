"""log Z(α), the log partition function of Barron's general distribution, for α ∈ [0, 8].

Z(α) = ∫ exp(-ρ(x, α, 1)) dx, so that p(x | μ, α, c) = exp(-ρ(x - μ, α, c)) / (c Z(α)).
Z(0) = π√2 (a Cauchy of scale √2), Z(2) = √(2π) (a unit normal); Z diverges for α < 0.

The values come from ``partition_table.csv``, made by ``scripts/make_partition_table.py`` with
float64 quadrature. Its slope has a logarithmic singularity at α = 2, so the table holds the
smooth part g(α) = log Z(α) - (α-2)/4·log|α-2| as a C² cubic spline (values and slopes at the
knots), evaluated here as piecewise cubic Hermite and differentiable in α. The interpolant
agrees with fresh quadrature to ~1e-7 between the knots (the script prints the figure).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
import torch
from torch import Tensor

ALPHA_MAX = 8.0


@cache
def _table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    text = resources.files("robustvae.losses").joinpath("partition_table.csv").read_text()
    rows = np.loadtxt(text.splitlines(), delimiter=",", comments="#", dtype=np.float64)
    return rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy()


@cache
def _table_tensors(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    with torch.inference_mode(False):  # a cached inference tensor would break later autograd
        return tuple(torch.as_tensor(a, dtype=dtype, device=device) for a in _table())


def log_partition(alpha: Tensor | float) -> Tensor:
    """log Z(α) for α ∈ [0, 8], elementwise and differentiable in α.

    Values outside the range are clamped to it; ``general_nll`` and the adaptive losses
    validate α first. At exactly α = 2 the true slope is -∞; the gradient returned there is
    large and finite.
    """
    alpha = torch.as_tensor(alpha)
    dtype = alpha.dtype if alpha.is_floating_point() else torch.get_default_dtype()
    # In float64 whatever α's dtype: knots near 0 and 2 are closer than float32 resolves.
    knots, smooth, slope = _table_tensors(torch.float64, alpha.device)
    a = alpha.double().clamp(0.0, ALPHA_MAX)
    k = (torch.searchsorted(knots, a.detach().contiguous(), right=True) - 1).clamp(
        0, knots.numel() - 2
    )
    a0, a1 = knots[k], knots[k + 1]
    h = a1 - a0
    t = (a - a0) / h
    h00 = (1 + 2 * t) * (1 - t) ** 2
    h10 = t * (1 - t) ** 2
    h01 = t * t * (3 - 2 * t)
    h11 = t * t * (t - 1)
    g = h00 * smooth[k] + h10 * h * slope[k] + h01 * smooth[k + 1] + h11 * h * slope[k + 1]
    d = a - 2
    tiny = torch.finfo(torch.float32).tiny  # the slope at exactly α = 2 stays float32-finite
    return (g + 0.25 * d * torch.log(d.abs().clamp(min=tiny))).to(dtype)
