"""Barron's ρ at three special α, each in a closed form evaluated to a few units of rounding
over the whole finite range: α = ∞ (exp(½(x/c)²) − 1, with ½(x/c)² carried wider than x),
α = 4 (a polynomial) and α = 1 (square roots only, the compiled kernel's fast form). The
fixed-α kernels of ``robustvae.losses.barron`` include them."""

from __future__ import annotations

import torch
from torch import Tensor


def _rho_exponential(x: Tensor, c: float | Tensor) -> Tensor:
    """exp(½(x/c)²) - 1, to a few units of rounding.

    e^w magnifies an error in w = ½(x/c)² by w (up to 88 in float32, 709 in float64), so w is
    carried wider than x: in float64 for float32 x, and for float64 x (eagerly) as a sum of
    two float64 numbers, q² split exactly by Dekker's product. Compiled, float64 x takes the
    plain formula (its error up to ~w·eps)."""
    if x.dtype != torch.float64:
        wide = c.double() if isinstance(c, Tensor) else c
        return torch.expm1(0.5 * (x.double() / wide) ** 2).to(x.dtype)
    q = x / c
    rho = torch.expm1(0.5 * q * q)
    if torch.compiler.is_compiling():
        return rho
    with torch.no_grad():  # ½(x/c)² - ½q², below w's rounding: a correction of value only
        q_ = q.clamp(-64.0, 64.0)  # beyond, e^w overflows anyway
        product, error = _two_product(q_, c)
        d = ((x.clamp(-64.0 * c, 64.0 * c) - product) - error) / c  # x/c = q + d
        square, square_error = _two_product(q_, q_)
        low = 0.5 * (square_error + 2.0 * q_ * d)
        correction = torch.where(torch.isfinite(rho), (rho + 1.0) * low, 0.0)
    return rho + correction


def _split(a: Tensor | float):
    """Dekker's split of float64 a into a high half of 26 bits and the rest, exactly."""
    t = 134217729.0 * a  # 2^27 + 1
    high = t - (t - a)
    return high, a - high


def _two_product(a: Tensor, b: Tensor | float):
    """(p, e) with p = fl(a·b) and p + e = a·b exactly (float64, |a·b| < 1e300), no FMA."""
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _rho_charbonnier(x: Tensor, c: float | Tensor) -> Tensor:
    """α = 1: √((x/c)² + 1) − 1 = u²/(√(u² + 1) + 1), u = x/c, with square roots only, where
    the power form needs log1p, log and expm1 (the fused kernel's cost: 0.58× ``mse_loss``
    against 1.3×). Past |u| = 1e15 (1e150 in float64) it is |u| − 1, to rounding; the
    clamp keeps u² and its gradient's intermediates finite, and the far branch's gradient,
    ±1/c, is the truth's there (also where u itself overflows)."""
    big = 1e150 if x.dtype == torch.float64 else 1e15
    a = (x / c).abs()
    near = a.clamp(max=big)
    near_sq = near * near
    return torch.where(a < big, near_sq / (torch.sqrt(near_sq + 1.0) + 1.0), a - 1.0)


def _rho_quartic(x: Tensor, c: float | Tensor) -> Tensor:
    """α = 4: ½((1 + ½(x/c)²)² - 1) = w·(1 + w/2), w = ½(x/c)²: a polynomial with no
    cancellation, where the power form's exp and log each add rounding times v."""
    w = 0.5 * (x / c) ** 2
    return w * (1.0 + 0.5 * w)
