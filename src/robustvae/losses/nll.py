"""Negative log-likelihoods of one residual x, elementwise, their parameters broadcast against
x: Barron's general distribution (ρ plus log c and log Z(α)), the normal, Laplace and Cauchy
distributions, and Student's t. ``robustvae.losses.functional`` re-exports them; the guarantees
it states hold here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from robustvae.losses.arguments import (
    DF_RANGE,
    SCALE_RANGE,
    check_number,
    check_positive,
    check_range,
    computable,
    with_headroom,
)
from robustvae.losses.barron import (
    LOG2,
    as_scale,
    general,
    general_fixed_alpha,
    inverse_scale,
    log1p_square,
    scaled,
)
from robustvae.losses.onepass import general_power_tensor_one_pass
from robustvae.losses.partition import ALPHA_MAX, log_partition

__all__ = ["general_nll", "normal_nll", "laplace_nll", "cauchy_nll", "student_t_nll"]

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
LOG_PI = math.log(math.pi)
# Student-t's normaliser from its asymptotic series from ν = 50 (error < 5e-16).
_STUDENT_SERIES_FROM = 50.0
# Student-t with a number ν up to this takes the one-pass form of log(1 + (x/c)²/ν).
_STUDENT_ONE_PASS_TO = 1e6


def _log(like: Tensor, value: float | Tensor) -> Tensor | float:
    """log(value): differentiable if a tensor (in ``like``'s dtype), else a float."""
    if isinstance(value, Tensor):
        return torch.log(value.to(like.dtype))
    return math.log(value)


def general_nll(x: Tensor, alpha: float | Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log p(x | 0, α, c) = ρ(x, α, c) + log c + log Z(α), for α ∈ [0, 8] (Barron, Eq. 16).

    Can be negative: it is the negative log of a density, not a distance.
    """
    if not isinstance(alpha, Tensor):
        alpha = check_number("alpha", alpha, 0.0, ALPHA_MAX)
    check_range("alpha", alpha, 0.0, ALPHA_MAX)
    (x,) = computable(x)
    alpha_t = torch.as_tensor(alpha, dtype=x.dtype, device=x.device)
    return general(x, alpha, scale) + _log(x, scale) + log_partition(alpha_t)


def normal_nll_values(x: Tensor, scale: float | Tensor) -> Tensor:
    k, log_k = inverse_scale(scale, x, 2.0)
    return scaled(x, k, log_k) ** 2 + ((HALF_LOG_2PI - 0.5 * LOG2) - log_k)


def laplace_nll_values(x: Tensor, scale: float | Tensor) -> Tensor:
    k, log_k = inverse_scale(scale, x)
    return scaled(x.abs(), k, log_k) + (LOG2 - log_k)


def cauchy_nll_values(x: Tensor, scale: float | Tensor) -> Tensor:
    """log(1 + (x/c)²) + log πc. For a c without gradient it is Barron's ρ at α = 0 and
    scale c/√2, taking ρ's one-pass forms."""
    fast = _log1p_square_one_pass(x, scale, 1.0)
    if fast is not None:
        return fast + (LOG_PI + _log(x, scale))
    k, log_k = inverse_scale(scale, x)
    return log1p_square(x, k, log_k) + (LOG_PI - log_k)


def _log1p_square_one_pass(x: Tensor, scale: float | Tensor, df: float | Tensor) -> Tensor | None:
    """log(1 + (x/c)²/ν) as Barron's ρ at α = 0 and scale c·√(ν/2), from the one-pass forms
    (``fixed_alpha_values`` for a number c, ``general_power_tensor_one_pass`` for a tensor),
    or None: for a c that needs a gradient, a number c·√(ν/2) outside ρ's scale range, under
    torch.compile, or where the tensor form declines."""
    if torch.compiler.is_compiling():
        return None
    if not isinstance(scale, Tensor):
        c = float(scale) * math.sqrt(0.5 * df)
        return general_fixed_alpha(x, 0.0, c) if SCALE_RANGE[0] <= c <= SCALE_RANGE[1] else None
    if scale.requires_grad:
        return None
    zero = torch.zeros((), dtype=torch.float64, device=x.device)
    return general_power_tensor_one_pass(x, zero, scale.double() * (0.5 * df) ** 0.5)


def student_t_log_normaliser(df: Tensor) -> Tensor:
    """½ log(νπ) + lgamma(ν/2) - lgamma((ν+1)/2), in float64 for any ν > 0.

    The lgamma difference cancels for large ν (in float64 too: it is 0 instead of 0.918939
    at ν = 1e15); from ν = 50 it is ½ log 2π minus the asymptotic series of
    log Γ(z+½) - log Γ(z) - ½ log z in 1/z, z = ν/2 (error < 5e-16).
    """
    nu = df.double()
    exact = 0.5 * torch.log(nu * math.pi) + torch.lgamma(0.5 * nu) - torch.lgamma(0.5 * (nu + 1))
    w = 1.0 / (0.5 * nu.clamp(min=_STUDENT_SERIES_FROM))
    w2 = w * w
    series = -w / 8 * (1 - w2 / 24 * (1 - w2 * 0.3 * (1 - w2 * 17 / 22.4)))
    return torch.where(nu < _STUDENT_SERIES_FROM, exact, HALF_LOG_2PI - series)


def _log1p_over(w: Tensor) -> Tensor:
    """log(1 + w)/w for w ≥ 0 (1 at w = 0); its series below w = 1e-5 (error < 3e-16)."""
    small = w < 1e-5
    safe = torch.where(small, 1.0, w)
    series = 1.0 - w * (0.5 - w / 3)
    return torch.where(small, series, torch.log1p(safe) / safe)


def student_t_nll_values(x: Tensor, df: float | Tensor, scale: float | Tensor) -> Tensor:
    """((ν+1)/2)·log(1 + (x/c)²/ν) + log c + log normaliser. Where u = |x|/(c√ν) < 1 the first
    term is ((ν+1)/2ν)·(x/c)²·log1p(u²)/u²: u² would underflow for large ν first."""
    nu64 = torch.as_tensor(df, dtype=torch.float64, device=x.device)
    log_norm = student_t_log_normaliser(nu64).to(x.dtype)
    # ((ν+1)/2)·ρ(x, 0, c·√(ν/2)): up to ν = 1e6 the factor keeps ρ's absolute error (where
    # (x/c)²/ν is subnormal) under the guaranteed floor
    fast = None
    if not isinstance(df, Tensor) and df <= _STUDENT_ONE_PASS_TO:
        fast = _log1p_square_one_pass(x, scale, float(df))
        half_nu_plus_one = 0.5 * (df + 1.0)
    elif isinstance(df, Tensor) and not df.requires_grad and not torch.compiler.is_compiling():
        if float(nu64.max()) <= _STUDENT_ONE_PASS_TO:
            wide_scale = torch.as_tensor(scale, dtype=torch.float64, device=x.device)
            fast = _log1p_square_one_pass(x, wide_scale, nu64)
            half_nu_plus_one = (0.5 * (nu64 + 1.0)).to(x.dtype)
    if fast is not None:
        return fast * half_nu_plus_one + (log_norm + _log(x, scale))
    nu = nu64.to(x.dtype) if isinstance(df, Tensor) else float(df)
    (k_c, k_nu), log_k = inverse_scale(scale, x, nu)
    log_c = _log(x, scale)
    y = scaled(x.abs(), (k_c,), -log_c)
    u = y * (k_nu.detach() if isinstance(k_nu, Tensor) else k_nu)
    near = u < 1.0
    y_near = torch.where(near, y, 0.0)
    w = torch.where(near, u, 0.0) ** 2
    if isinstance(nu, Tensor):
        w = (y_near * y_near) / nu  # carries ν's gradient
    small = 0.5 * (1.0 + 1.0 / nu) * y_near * y_near * _log1p_over(w)
    large = 0.5 * (nu + 1) * log1p_square(x, (k_c, k_nu), log_k)
    return torch.where(near, small, large) + log_c + log_norm


def normal_nll(x: Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log N(x | 0, c²) = ½(x/c)² + log c + ½ log 2π."""
    check_positive("scale", scale)
    (x,) = computable(x)
    return with_headroom(normal_nll_values, x, as_scale(scale, x))


def laplace_nll(x: Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log Laplace(x | 0, c) = |x|/c + log 2c."""
    check_positive("scale", scale)
    (x,) = computable(x)
    return with_headroom(laplace_nll_values, x, as_scale(scale, x))


def cauchy_nll(x: Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log Cauchy(x | 0, c) = log(π c) + log(1 + (x/c)²)."""
    check_positive("scale", scale)
    (x,) = computable(x)
    return with_headroom(cauchy_nll_values, x, as_scale(scale, x))


def student_t_nll(x: Tensor, df: float | Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """-log t_ν(x | 0, c): Student's t with ν = ``df`` ∈ [1e-30, 1e30] degrees of freedom and
    scale c.

    = ((ν+1)/2)·log(1 + (x/c)²/ν) + log c + ½ log(νπ) + lgamma(ν/2) - lgamma((ν+1)/2).
    """
    check_range("df", df, *DF_RANGE)
    check_positive("scale", scale)
    (x,) = computable(x)
    return with_headroom(student_t_nll_values, x, df, as_scale(scale, x))
