"""Elementwise reconstruction losses and negative log-likelihoods, as pure functions.

Every function here is finite, with a finite gradient, for any finite input in float32 and
float64. Losses taking ``(input, target)`` follow ``torch.nn.functional`` (a ``reduction`` of
``'mean'``, ``'sum'`` or ``'none'``); functions of one residual ``x`` (``general``, the NLLs) are
elementwise and broadcast their parameters against ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

import torch
import torch.nn.functional as F
from torch import Tensor

from robustvae.losses.partition import ALPHA_MAX, log_partition

__all__ = [
    "squared_l2",
    "l1",
    "log_cosh",
    "general",
    "general_nll",
    "normal_nll",
    "laplace_nll",
    "cauchy_nll",
    "student_t_nll",
]

REDUCTIONS = ("mean", "sum", "none")
LOG2 = math.log(2.0)
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
LOG_PI = math.log(math.pi)

# Past this, log cosh(y) = y - log 2 to within float64 rounding (the remainder is < e^-40).
_LOG_COSH_LINEAR_FROM = 20.0
# Below this |u|, expm1(u)/u comes from its Taylor series (accurate to float64 rounding).
_EXPREL_SERIES_BELOW = 1e-2


# ----------------------------------------------------------------------------- validation


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce(values: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        return values.mean()
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_same_shape(input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        raise ValueError(
            f"input and target must have the same shape, got {tuple(input.shape)} "
            f"and {tuple(target.shape)}"
        )


def check_positive(name: str, value: float | Tensor) -> None:
    """Raise ValueError unless every entry of ``value`` is finite and > 0."""
    if isinstance(value, Tensor):
        ok = bool(torch.isfinite(value).all()) and bool((value > 0).all())
    else:
        ok = math.isfinite(value) and value > 0
    if not ok:
        raise ValueError(f"{name} must be finite and > 0, got {_describe(value)}")


def check_range(name: str, value: float | Tensor, lo: float, hi: float) -> None:
    """Raise ValueError unless every entry of ``value`` lies in [lo, hi] (NaN never does)."""
    if isinstance(value, Tensor):
        ok = bool(((value >= lo) & (value <= hi)).all())
    else:
        ok = lo <= value <= hi
    if not ok:
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {_describe(value)}")


def _describe(value: float | Tensor) -> str:
    if isinstance(value, Tensor):
        if value.numel() == 1:
            return repr(value.item())
        return f"a tensor with min {value.min().item()!r} and max {value.max().item()!r}"
    return repr(value)


def _log(like: Tensor, value: float | Tensor) -> Tensor:
    """log(value) as a tensor with ``like``'s dtype and device (differentiable if a tensor)."""
    return torch.log(torch.as_tensor(value, dtype=like.dtype, device=like.device))


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


# ----------------------------------------------------------------------------- L2, L1


def squared_l2(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Squared error ``(input - target)²``."""
    check_same_shape(input, target)
    return F.mse_loss(input, target, reduction=check_reduction(reduction))


def l1(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Absolute error ``|input - target|``."""
    check_same_shape(input, target)
    return F.l1_loss(input, target, reduction=check_reduction(reduction))


# ----------------------------------------------------------------------------- log-cosh


def log_cosh_of_abs(y: Tensor) -> Tensor:
    """log cosh(y) for y ≥ 0, to within a few ulps of the float64 value, for any finite y.

    Uses log cosh y = log1p(m² / (2(m + 1))) with m = expm1(y), which keeps full relative
    precision near 0 (where it is y²/2), and y - log 2 past y = 20. The argument of expm1 is
    clamped so that neither branch overflows.
    """
    m = torch.expm1(y.clamp(max=_LOG_COSH_LINEAR_FROM))
    near = torch.log1p(m * m / (2.0 * (m + 1.0)))
    return torch.where(y < _LOG_COSH_LINEAR_FROM, near, y - LOG2)


def log_cosh_values(input: Tensor, target: Tensor, a: float | Tensor) -> Tensor:
    """Elementwise f(t; a) = log(cosh(a t)) / a with t = input - target (no checks)."""
    return log_cosh_of_abs((a * (input - target)).abs()) / a


def log_cosh(input: Tensor, target: Tensor, a: float = 1.0, reduction: str = "mean") -> Tensor:
    """Log-cosh loss f(t; a) = (1/a)·log cosh(a·t), t = input - target (Chen et al., Eq. 5).

    Behaves as ½·a·t² near 0 and as |t| - log(2)/a for large |t|; its gradient is tanh(a·t).
    ``a`` > 0 sets the curvature at 0.
    """
    check_same_shape(input, target)
    check_positive("a", a)
    return reduce(log_cosh_values(input, target, a), check_reduction(reduction))


# ----------------------------------------------------------------------------- Barron's ρ


def _exprel(u: Tensor) -> Tensor:
    """expm1(u) / u, equal to 1 at u = 0, with gradients free of cancellation near 0."""
    small = u.abs() < _EXPREL_SERIES_BELOW
    s = u.clamp(-_EXPREL_SERIES_BELOW, _EXPREL_SERIES_BELOW)
    if u.dtype == torch.float64:  # Taylor terms to u⁶: the remainder is < 3e-19 relative
        series = 1 + s / 2 * (1 + s / 3 * (1 + s / 4 * (1 + s / 5 * (1 + s / 6 * (1 + s / 7)))))
    else:  # to u³: the remainder is < 1e-10 relative, below float32 rounding
        series = 1 + s / 2 * (1 + s / 3 * (1 + s / 4))
    safe = torch.where(small, torch.ones_like(u), u)
    return torch.where(small, series, torch.expm1(safe) / safe)


def _rho_quadratic(x: Tensor, scale) -> Tensor:
    return 0.5 * (x / scale) ** 2


def _rho_cauchy(x: Tensor, scale) -> Tensor:
    return torch.log1p(0.5 * (x / scale) ** 2)


def _rho_welsch(x: Tensor, scale) -> Tensor:
    return -torch.expm1(-0.5 * (x / scale) ** 2)


def _rho_exponential(x: Tensor, scale) -> Tensor:
    return torch.expm1(0.5 * (x / scale) ** 2)


def _rho_power(x: Tensor, scale, ratio, half_alpha, inv_beta) -> Tensor:
    return ratio * torch.expm1(half_alpha * torch.log1p((x / scale) ** 2 * inv_beta))


def fixed_alpha_kernel(alpha: float) -> tuple[Callable[..., Tensor], tuple[float, ...]]:
    """The formula for ρ at a fixed α and its α-derived constants: ``fn(x, scale, *consts)``.

    Each special case gets its own formula; every other α shares one, with the constants
    |α-2|/α, α/2 and 1/|α-2| (so compiled kernels need not specialise on α).
    """
    if alpha == 2:
        return _rho_quadratic, ()
    if abs(alpha) < 1e-20:  # ρ differs from its α = 0 limit by ~α·ρ: below any rounding
        return _rho_cauchy, ()
    if alpha == -math.inf:
        return _rho_welsch, ()
    if alpha == math.inf:
        return _rho_exponential, ()
    beta = abs(alpha - 2.0)
    return _rho_power, (beta / alpha, 0.5 * alpha, 1.0 / beta)


def general_fixed_alpha(x: Tensor, alpha: float, scale: float | Tensor) -> Tensor:
    """ρ(x, α, c) for a Python-number α (no checks)."""
    fn, consts = fixed_alpha_kernel(alpha)
    return fn(x, scale, *consts)


def general_finite_alpha(x: Tensor, alpha: Tensor, scale: float | Tensor) -> Tensor:
    """ρ(x, α, c) for a tensor of finite α (no checks); the adaptive losses' kernel.

    Written as (|α-2|/2)·L·exprel(α·L/2) with L = log1p(z/|α-2|): ρ with the division by α
    removed, so it is exact at α = 0 and its α-gradient has no cancellation near 0.
    |α - 2| is kept ≥ eps, which moves ρ at exactly α = 2 by a relative ~eps·log(z/eps)/2.
    ρ saturates for |x/c| beyond ~6e15 in float32 (where (x/c)² would overflow).
    """
    finfo = torch.finfo(x.dtype)
    # |x/c| is capped where (x/c)²/|α-2| would overflow: beyond 6e15 (float32), 7e145 (float64)
    bound = 0.5 * math.sqrt(finfo.max * finfo.eps)
    z = (x / scale).clamp(-bound, bound) ** 2
    beta = (alpha - 2).abs().clamp(min=finfo.eps)
    log_base = torch.log1p(z / beta)
    return (0.5 * beta) * log_base * _exprel((0.5 * alpha) * log_base)


def general_tensor_alpha(x: Tensor, alpha: Tensor, scale: float | Tensor) -> Tensor:
    """ρ(x, α, c) for a tensor α that may hold any value in [-∞, ∞] (no checks).

    As ``general_finite_alpha``, plus: at exactly α = 2 the value is z/2 (the α-gradient that
    of the nearest representable α); infinite α take their limits. Every branch that
    torch.where discards is computed on safe inputs, so no NaN reaches a gradient.
    """
    z = (x / scale) ** 2
    finite = torch.isfinite(alpha)
    rho = general_finite_alpha(x, torch.where(finite, alpha, torch.ones_like(alpha)), scale)
    rho = torch.where(alpha == 2, rho + (0.5 * z - rho).detach(), rho)
    zero = torch.zeros_like(z)
    at_plus_inf = torch.expm1(0.5 * torch.where(alpha == math.inf, z, zero))
    at_minus_inf = -torch.expm1(-0.5 * torch.where(alpha == -math.inf, z, zero))
    return torch.where(finite, rho, torch.where(alpha > 0, at_plus_inf, at_minus_inf))


def general(x: Tensor, alpha: float | Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """Barron's general robust loss ρ(x, α, c), elementwise.

    ρ = |α-2|/α · (((x/c)²/|α-2| + 1)^(α/2) - 1), with its limits: ½(x/c)² at α = 2,
    log(½(x/c)² + 1) at α = 0, 1 - exp(-½(x/c)²) at α = -∞, exp(½(x/c)²) - 1 at α = +∞.
    α = 1 is the pseudo-Huber/Charbonnier loss √((x/c)² + 1) - 1, α = -2 Geman-McClure.

    Args:
        x: residuals, any shape.
        alpha: shape α ∈ [-∞, ∞], a number or a tensor broadcastable against ``x``.
        scale: scale c > 0 (the width of the quadratic bowl), a number or broadcastable tensor.
    Returns:
        ρ with the broadcast shape of ``x``, ``alpha`` and ``scale``.
    """
    check_positive("scale", scale)
    if isinstance(alpha, Tensor):
        if torch.isnan(alpha).any():
            raise ValueError("alpha must lie in [-inf, inf], got NaN")
        return general_tensor_alpha(x, alpha.to(x.dtype), scale)
    if not _is_number(alpha) or math.isnan(alpha):
        raise ValueError(f"alpha must be a number or tensor in [-inf, inf], got {alpha!r}")
    return general_fixed_alpha(x, float(alpha), scale)


# ----------------------------------------------------------------------------- NLLs


def general_nll(x: Tensor, alpha: float | Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log p(x | 0, α, c) = ρ(x, α, c) + log c + log Z(α), for α ≥ 0 (Barron, Eq. 16).

    Can be negative: it is the negative log of a density, not a distance.
    """
    alpha_t = torch.as_tensor(alpha, dtype=x.dtype, device=x.device)
    check_range("alpha", alpha_t, 0.0, ALPHA_MAX)
    return general(x, alpha, scale) + _log(x, scale) + log_partition(alpha_t)


def normal_nll_values(x: Tensor, scale: float | Tensor) -> Tensor:
    return 0.5 * (x / scale) ** 2 + _log(x, scale) + HALF_LOG_2PI


def laplace_nll_values(x: Tensor, scale: float | Tensor) -> Tensor:
    return x.abs() / scale + _log(x, scale) + LOG2


def cauchy_nll_values(x: Tensor, scale: float | Tensor) -> Tensor:
    return torch.log1p((x / scale) ** 2) + _log(x, scale) + LOG_PI


def student_t_nll_values(x: Tensor, df: float | Tensor, scale: float | Tensor) -> Tensor:
    # The normaliser in float64: in float32, lgamma(ν/2) - lgamma((ν+1)/2) cancels for large ν.
    nu = torch.as_tensor(df, device=x.device).double()
    log_norm = 0.5 * torch.log(nu * math.pi) + torch.lgamma(0.5 * nu) - torch.lgamma(0.5 * (nu + 1))
    nu = nu.to(x.dtype)
    return (
        0.5 * (nu + 1) * torch.log1p((x / scale) ** 2 / nu) + _log(x, scale) + log_norm.to(x.dtype)
    )


def normal_nll(x: Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log N(x | 0, c²) = ½(x/c)² + log c + ½ log 2π."""
    check_positive("scale", scale)
    return normal_nll_values(x, scale)


def laplace_nll(x: Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log Laplace(x | 0, c) = |x|/c + log 2c."""
    check_positive("scale", scale)
    return laplace_nll_values(x, scale)


def cauchy_nll(x: Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log Cauchy(x | 0, c) = log(π c) + log(1 + (x/c)²)."""
    check_positive("scale", scale)
    return cauchy_nll_values(x, scale)


def student_t_nll(x: Tensor, df: float | Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log t_ν(x | 0, c): Student's t with ν = ``df`` > 0 degrees of freedom and scale c.

    = ((ν+1)/2)·log(1 + (x/c)²/ν) + log c + ½ log(νπ) + lgamma(ν/2) - lgamma((ν+1)/2).
    """
    check_positive("df", df)
    check_positive("scale", scale)
    return student_t_nll_values(x, df, scale)
