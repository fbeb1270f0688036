"""Barron's general robust loss ρ(x, α, c) ("A General and Adaptive Robust Loss Function",
CVPR 2019), elementwise, and the scaled primitives the likelihoods share (k = 1/c kept as
factors, log(1 + (k·x)²) without overflow).

Each special α has its own formula and every other α one of four power forms by its range
(``fixed_alpha_kernel``); a tensor α or c takes ``general_tensor_alpha``. Eagerly, the one-pass
forms of ``robustvae.losses.onepass`` serve where they are exact. ``robustvae.losses.functional``
re-exports ``general``; the guarantees it states hold here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from robustvae.losses.arguments import (
    ALPHA_INFINITE_FROM,
    ALPHA_ZERO_BELOW,
    check_number,
    check_positive,
    computable,
    with_headroom,
)
from robustvae.losses.closed_forms import _rho_charbonnier, _rho_exponential, _rho_quartic
from robustvae.losses.onepass import (
    general_log_space_gradient,
    general_power_one_pass,
    general_power_tensor_one_pass,
    with_given_gradient,
)
from robustvae.losses.supremum import at_most_the_supremum

__all__ = ["general", "general_fixed_alpha", "general_per_dim", "barron_terms"]

LOG2 = math.log(2.0)
SQRT_HALF = math.sqrt(0.5)

# Below this |u|, expm1(u)/u comes from its Taylor series (accurate to float64 rounding).
_EXPREL_SERIES_BELOW = 1e-2
# Past this v = α·log(1 + z/|α-2|)/2, ρ = exp(v + log(|α-2|/α)) - |α-2|/α: no overflow of e^v
# when |α-2|/α < 1 makes ρ smaller than e^v.
_POWER_LOG_FROM = 1.0
# Below (x/c)²/2 = this², ρ = ½(x/c)² to float64 rounding for every α (the relative
# difference is ~(x/c)²/4); used where (x/c)²/|α-2| would underflow first.
QUADRATIC_BELOW = math.sqrt(0.5 * 2.0**-52)
# Welsch's 1 - exp(-u²) is exactly 1 past u = 28 in float64 (e^-784 underflows).
_WELSCH_SATURATES = 28.0


def inverse_scale(scale: float | Tensor, like: Tensor | None, extra: float | Tensor = 1.0):
    """((1/c, 1/√extra), log(1/(c·√extra))): the factors of k = 1/(c·√extra), kept apart
    because their product can leave float32's range (c = 1e30, extra = ν = 1e30)."""
    if isinstance(scale, Tensor) or isinstance(extra, Tensor):
        c = torch.as_tensor(scale, dtype=like.dtype, device=like.device)
        e = torch.as_tensor(extra, dtype=like.dtype, device=like.device)
        log_kc, log_ke = -torch.log(c), -0.5 * torch.log(e)
        return (torch.exp(log_kc), torch.exp(log_ke)), log_kc + log_ke
    log_kc, log_ke = -math.log(scale), -0.5 * math.log(extra)
    return (math.exp(log_kc), math.exp(log_ke)), log_kc + log_ke


def scaled(x: Tensor, factors: tuple, log_k: float | Tensor) -> Tensor:
    """x·k, k the product of ``factors`` (log k = ``log_k``), multiplied one factor at a time.

    A tensor k gets its gradient through log k: ∂/∂(log k) = x·k, finite wherever the product
    is, where ∂/∂k = x alone can overflow (x = 1e27, k = 1e-12 in float32).
    """
    value = x
    for factor in factors:
        if isinstance(factor, Tensor):
            value = value * factor.detach()
        elif factor != 1.0:
            value = value * factor
    if isinstance(log_k, Tensor) and log_k.requires_grad:
        finite = value.detach().nan_to_num(posinf=torch.finfo(x.dtype).max)
        value = value + finite * (log_k - log_k.detach())
    return value


def log1p_square(x: Tensor, k: tuple, log_k: float | Tensor) -> Tensor:
    """log(1 + (k·x)²) for any finite x and k > 0 (``k`` the factors of ``inverse_scale``,
    log_k = log k), without overflow.

    (k x)² overflows past ~1.8e19 in float32 (and k·x itself may), but its log does not: past
    u = k|x| = 1/√eps the value is 2·(log|x| + log k), exact to rounding.
    """
    finfo = torch.finfo(x.dtype)
    far_from = 1.0 / math.sqrt(finfo.eps)
    ax = x.abs()
    u = scaled(ax, k, log_k)
    near = torch.log1p(u.clamp(max=far_from) ** 2)
    far = 2.0 * (torch.log(ax.clamp(min=finfo.tiny)) + log_k)
    return torch.where(u < far_from, near, far)


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


def _exp_minus_one(v: Tensor) -> Tensor:
    """e^v - 1 for v ≤ 0: expm1 above -1, exp(v) - 1 below, where expm1's gradient (computed
    from its result + 1) would lose e^v to rounding."""
    return torch.where(v < -1.0, torch.exp(v.clamp(max=-1.0)) - 1.0, torch.expm1(v.clamp(min=-1.0)))


def _rho_quadratic(x: Tensor, k: float) -> Tensor:
    """½(x/c)² as (x·k)², k = √½/c: it overflows exactly where the true value does."""
    return (x * k) ** 2


def _rho_cauchy(x: Tensor, k1: float, k2: float, log_k: float) -> Tensor:
    """log(1 + ½(x/c)²), k = 1/(c√2)."""
    return log1p_square(x, (k1, k2), log_k)


def _rho_welsch(x: Tensor, k: float) -> Tensor:
    """1 - exp(-½(x/c)²), k = √½/c."""
    return -_exp_minus_one(-((x.abs() * k).clamp(max=_WELSCH_SATURATES) ** 2))


def _rho_power(
    x: Tensor, k1: float, k2: float, log_k: float, ratio: float, half_alpha: float
) -> Tensor:
    """|α-2|/α · expm1(α/2 · log(1 + (x/c)²/|α-2|)), k = 1/(c√|α-2|), for 1e-3 ≤ α ≤ 1:
    there |α-2|/α ≥ 1, so ρ overflows only where e^v does."""
    return ratio * torch.expm1(half_alpha * log1p_square(x, (k1, k2), log_k))


def _rho_power_negative(
    x: Tensor, k1: float, k2: float, log_k: float, ratio: float, half_alpha: float
) -> Tensor:
    """As ``_rho_power`` for -1e6 ≤ α ≤ -1e-3 (ρ ≤ |α-2|/|α|)."""
    return ratio * _exp_minus_one(half_alpha * log1p_square(x, (k1, k2), log_k))


def _rho_near_zero(
    x: Tensor, k1: float, k2: float, log_k: float, half_beta: float, half_alpha: float
) -> Tensor:
    """(|α-2|/2)·L·exprel(α·L/2) for 1e-20 ≤ |α| < 1e-3: no division by a tiny α (|α-2|/α
    times a tiny expm1 would lose the product to underflow)."""
    log_base = log1p_square(x, (k1, k2), log_k)
    return half_beta * log_base * _exprel(half_alpha * log_base)


def _rho_power_wide(
    x: Tensor,
    k1: float,
    k2: float,
    log_k: float,
    ratio: float,
    half_alpha: float,
    log_ratio: float,
    k_quadratic: float,
    quadratic_below: float,
) -> Tensor:
    """As ``_rho_power`` for any other α: in log space past v = 1 (|α-2|/α < 1 for α > 1, so
    ρ stays finite beyond where e^v overflows), and ½(x/c)² where (x/c)² < eps (for large
    |α-2| the term (x/c)²/|α-2| underflows long before ρ does)."""
    v = half_alpha * log1p_square(x, (k1, k2), log_k)
    power = ratio * torch.where(
        v < 0, _exp_minus_one(v.clamp(max=0.0)), torch.expm1(v.clamp(0.0, _POWER_LOG_FROM))
    )
    logged = torch.exp(v.clamp(min=_POWER_LOG_FROM) + log_ratio) - ratio
    rho = torch.where(v > _POWER_LOG_FROM, logged, power)
    q = x.abs() * k_quadratic
    return torch.where(q < quadratic_below, q.clamp(max=quadratic_below) ** 2, rho)


def fixed_alpha_kernel(alpha: float, scale: float):
    """The formula for ρ at a fixed α and c and its constants: ``fn(x, *consts)``.

    Each special case gets its own formula; every other α shares one of four by its range,
    with constants derived from α and c in float64 (so compiled kernels need not specialise).
    """
    if alpha == 2:
        return _rho_quadratic, (SQRT_HALF / scale,)
    if abs(alpha) < ALPHA_ZERO_BELOW:
        (k1, k2), log_k = inverse_scale(scale, None, 2.0)
        return _rho_cauchy, (k1, k2, log_k)
    if alpha <= -ALPHA_INFINITE_FROM:
        return _rho_welsch, (SQRT_HALF / scale,)
    if alpha >= ALPHA_INFINITE_FROM:
        return _rho_exponential, (scale,)
    if alpha == 4:
        return _rho_quartic, (scale,)
    if alpha == 1:
        return _rho_charbonnier, (scale,)
    return _power_kernel(alpha, scale)


def _power_kernel(alpha: float, scale: float):
    """``fixed_alpha_kernel``'s power forms, for a finite α ∉ {0, 2} (by its range)."""
    beta = abs(alpha - 2.0)
    (k1, k2), log_k = inverse_scale(scale, None, beta)
    ratio = beta / alpha
    if abs(alpha) < 1e-3:
        return _rho_near_zero, (k1, k2, log_k, 0.5 * beta, 0.5 * alpha)
    if 0 < alpha <= 1:
        return _rho_power, (k1, k2, log_k, ratio, 0.5 * alpha)
    if -1e6 <= alpha < 0:
        return _rho_power_negative, (k1, k2, log_k, ratio, 0.5 * alpha)
    consts = (k1, k2, log_k, ratio, 0.5 * alpha, math.log(abs(ratio)), SQRT_HALF / scale)
    return _rho_power_wide, (*consts, QUADRATIC_BELOW)


def general_fixed_alpha(x: Tensor, alpha: float, scale: float) -> Tensor:
    """ρ(x, α, c) for a Python-number α and c (no checks)."""
    fn, consts = fixed_alpha_kernel(alpha, scale)
    return fixed_alpha_values(x, fn, consts)


_POWER_KERNELS = (_rho_power, _rho_power_negative, _rho_power_wide)
#: Kernels whose constants must stay float64 (not rounded to x's dtype).
WIDE_CONSTANT_KERNELS = (_rho_exponential,)


def fixed_alpha_values(x: Tensor, fn, consts: tuple) -> Tensor:
    """``fn(x, *consts)`` (a kernel of ``fixed_alpha_kernel``; the constants numbers or 0-d
    tensors). Eagerly, for every finite α ≠ 2, the gradient is written out in log space
    (``onepass.general_log_space_gradient``: finite wherever the true one is), and for α = 0
    and 1e-3 ≤ |α| ≤ 1e6 the value too comes from ``robustvae.losses.onepass``, at about the
    cost of a plain formula, wherever this x allows."""
    if torch.compiler.is_compiling():
        return fn(x, *consts)
    if fn is _rho_charbonnier:  # eagerly, the one-pass power form is as fast and exact
        fn, consts = _power_kernel(1.0, float(consts[0]))
    if fn is _rho_quartic:  # the polynomial's value, its gradient in log space
        c = float(consts[0])
        return general_log_space_gradient(
            x,
            lambda r: fn(r, *consts),
            lambda r: log1p_square(r, (1.0 / c, SQRT_HALF), -math.log(c) - 0.5 * LOG2),
            2.0,
            -2.0 * math.log(c),
        )
    if not (fn in _POWER_KERNELS or fn is _rho_cauchy or fn is _rho_near_zero):
        return fn(x, *consts)
    k1, k2, log_k = (float(c) for c in consts[:3])
    if fn is _rho_cauchy:  # k = 1/(c√2): 1/c² = 2k²
        half_alpha, ratio, beta = 0.0, 1.0, 2.0
    elif fn is _rho_near_zero:  # (k1, k2, log_k, |α−2|/2, α/2)
        half_alpha, ratio, beta = float(consts[4]), math.nan, 2.0 * float(consts[3])
    else:  # k = 1/(c√|α−2|): |α−2| = ratio·α
        ratio, half_alpha = float(consts[3]), float(consts[4])
        beta = ratio * 2.0 * half_alpha
    rho = None
    if fn is not _rho_near_zero and abs(half_alpha) <= 5e5:
        k_sq = (k1 * k2) ** 2
        rho = general_power_one_pass(x, k_sq, half_alpha, ratio, k_sq * beta)
    if rho is None:
        log_inv_c_sq = 2.0 * log_k + math.log(beta)  # 1/c² = k²·|α−2|
        rho = general_log_space_gradient(
            x,
            lambda r: fn(r, *consts),
            lambda r: log1p_square(r, (k1, k2), log_k),
            half_alpha,
            log_inv_c_sq,
        )
    return at_most_the_supremum(rho, 2.0 * half_alpha)


def general_per_dim(
    x: Tensor,
    half_beta: Tensor,
    half_alpha: Tensor,
    k: Tensor,
    log_k: Tensor,
    log_ratio: Tensor,
    ratio: Tensor | None = None,
) -> Tensor:
    """ρ(x, α, c) from per-dimension terms of finite α (see ``barron_terms``); the adaptive
    losses' elementwise kernel.

    With L = log(1 + (x/c)²/|α-2|) and v = α·L/2, ρ is (|α-2|/2)·L·exprel(v) for |v| ≤ 1: ρ
    without the division by α, exact at α = 0, with no cancellation in its α-gradient near 0.
    Past v = 1 it is exp(v + log(|α-2|/α)) - |α-2|/α, finite where e^v alone would overflow.
    Given ``ratio`` = |α-2|/α (needed only for α < 0), below v = -1 it is ratio·expm1(v),
    whose gradients do not cancel as exprel's do there.
    """
    log_base = log1p_square(x, k, log_k)
    v = half_alpha * log_base
    near = half_beta * log_base * _exprel(v.clamp(-_POWER_LOG_FROM, _POWER_LOG_FROM))
    # Where e^(v + log ratio) overflows, ρ is +inf; the clamp keeps its gradient (a sum of
    # two infinite terms of opposite sign) from being NaN.
    log_far = v.clamp(min=_POWER_LOG_FROM) + log_ratio
    log_max = math.log(torch.finfo(x.dtype).max)
    far = torch.exp(log_far.clamp(max=log_max)) - torch.exp(log_ratio)
    far = torch.where(log_far < log_max, far, math.inf)
    rho = torch.where(v > _POWER_LOG_FROM, far, near)
    if ratio is None:
        return rho
    bounded = ratio * (torch.exp(v.clamp(max=-_POWER_LOG_FROM)) - 1.0)
    return torch.where(v < -_POWER_LOG_FROM, bounded, rho)


def barron_terms(alpha: Tensor, scale: Tensor, like: Tensor, negative: bool = False):
    """The per-dimension terms ``general_per_dim`` takes, for finite α and c > 0 (with
    ``negative``, also |α-2|/α for α < 0).

    |α - 2| is kept ≥ eps, which moves ρ at exactly α = 2 by a relative ~eps·log(z/eps)/2.
    log(|α-2|/α) is only used where α > 0 makes v > 1, and |α-2|/α only where α < 0 makes
    v < -1; |α| is kept ≥ 1e-30 in each.
    """
    finfo = torch.finfo(like.dtype)
    beta = (alpha - 2).abs().clamp(min=finfo.eps)
    k, log_k = inverse_scale(scale, like, beta)  # k: its two factors
    log_ratio = torch.log(beta) - torch.log(alpha.clamp(min=1e-30))
    terms = (0.5 * beta, 0.5 * alpha, k, log_k, log_ratio)
    if negative:
        terms += (beta / alpha.clamp(max=-1e-30),)
    return terms


def general_finite_alpha(x: Tensor, alpha: Tensor, scale: float | Tensor) -> Tensor:
    """ρ(x, α, c) for a tensor of finite α with |α| < 1e20 (no checks)."""
    scale = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
    return general_per_dim(x, *barron_terms(alpha, scale, x, negative=True))


def general_tensor_alpha(x: Tensor, alpha: Tensor, scale: float | Tensor) -> Tensor:
    """ρ(x, α, c) for a tensor α that may hold any value in [-∞, ∞] (no checks).

    As ``general_finite_alpha``, plus: at exactly α = 2 the value is ½(x/c)²; |α| ≥ 1e20
    takes the limits at ±∞; where (x/c)² < eps, ρ is ½(x/c)² (its relative error there,
    ~(x/c)²/4, is below rounding). In both of the quadratic cases, the gradients in x and c
    are those of ½(x/c)², and the α-gradient that of the finite-α formula (at α = 2, that of
    the nearest representable α). Every branch that torch.where discards is computed on safe
    inputs, so no NaN reaches a gradient.
    """
    scale = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
    finite = alpha.abs() < ALPHA_INFINITE_FROM
    alpha_finite = torch.where(finite, alpha, torch.ones_like(alpha))
    rho = general_finite_alpha(x, alpha_finite, scale)
    (k1, k2), log_k = inverse_scale(scale, x, 2.0)
    q = scaled(x.abs(), (k1, k2), log_k)  # ½(x/c)² = q²
    exact = (alpha == 2) | (q < QUADRATIC_BELOW)
    quadratic = torch.where(exact, q, 0.0) ** 2
    if alpha.requires_grad:  # only the α-gradient of the finite-α formula
        alpha_part = general_finite_alpha(x.detach(), alpha_finite, scale.detach())
        alpha_part = torch.where(torch.isfinite(alpha_part), alpha_part, 0.0)
        quadratic = quadratic + (alpha_part - alpha_part.detach())
    rho = torch.where(exact, quadratic, rho)
    large = torch.where(alpha >= ALPHA_INFINITE_FROM, x, torch.zeros_like(x))
    at_plus_inf = _rho_exponential(large, scale)
    small = torch.where(alpha <= -ALPHA_INFINITE_FROM, q, torch.zeros_like(q))
    at_minus_inf = -_exp_minus_one(-(small.clamp(max=_WELSCH_SATURATES) ** 2))
    return torch.where(finite, rho, torch.where(alpha > 0, at_plus_inf, at_minus_inf))


def general(x: Tensor, alpha: float | Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """Barron's general robust loss ρ(x, α, c), elementwise.

    ρ = |α-2|/α · (((x/c)²/|α-2| + 1)^(α/2) - 1), with its limits: ½(x/c)² at α = 2,
    log(½(x/c)² + 1) at α = 0, 1 - exp(-½(x/c)²) at α = -∞, exp(½(x/c)²) - 1 at α = +∞.
    α = 1 is the pseudo-Huber/Charbonnier loss √((x/c)² + 1) - 1, α = -2 Geman-McClure.

    Args:
        x: residuals, any shape (float16 and bfloat16 are computed in float32).
        alpha: shape α ∈ [-∞, ∞], a number or a tensor broadcastable against ``x``; |α| below
            1e-20 is 0 and beyond 1e20 is ±∞ (each equal to float64 rounding).
        scale: scale c ∈ [1e-30, 1e30] (the width of the quadratic bowl), a number or
            broadcastable tensor.
    Returns:
        ρ with the broadcast shape of ``x``, ``alpha`` and ``scale``.
    """
    check_positive("scale", scale)
    (x,) = computable(x)
    alpha, scale = _as_numbers(x, alpha), _as_numbers(x, scale)
    if isinstance(alpha, Tensor):
        if torch.isnan(alpha).any():
            raise ValueError("alpha must lie in [-inf, inf], got NaN")
        rho = _general_tensor(x, alpha.to(x.dtype), as_scale(scale, x))
        return at_most_the_supremum(rho, alpha)
    alpha = check_number("alpha", alpha, -math.inf, math.inf)
    if isinstance(scale, Tensor):
        alpha_t = torch.tensor(alpha, dtype=x.dtype, device=x.device)
        rho = _general_tensor(x, alpha_t, scale.to(x.dtype))
        return at_most_the_supremum(rho, alpha)
    return general_fixed_alpha(x, alpha, float(scale))


def _general_tensor(x: Tensor, alpha: Tensor, scale: float | Tensor) -> Tensor:
    """ρ for a tensor α or c, with ∂ρ/∂x written out in log space where ρ·max(1, |α|/2) is
    within a factor 4 of the dtype's maximum, at a finite α:

        ∂ρ/∂x = sign(x)·exp(log|x| − 2·log c + (α/2 − 1)·L),   L = log(1 + (x/c)²/|α−2|)

    There the chain rule through e^v multiplies ρ by α/2 before the small ∂v/∂x, and
    overflows where the truth is finite (α = 8, c = 7, x = 1e6 in float32: ρ = 1.0e38,
    ∂ρ/∂x = 8.0e32), or gives 0 where ρ itself overflows (α = 1, c = 1e-30, x = −1e25:
    ρ = inf, ∂ρ/∂x = −1e30). Costs a pass over ρ when x needs a gradient; where some
    element is that large, ρ is evaluated again with those elements at x = 0, so that no
    masked infinite derivative turns into NaN (a learned α or c gets no gradient from them;
    float32 x with a learned α or c is computed in float64 and needs none of this)."""
    learned = any(isinstance(p, Tensor) and p.requires_grad for p in (alpha, scale))
    if not learned and not torch.compiler.is_compiling():
        rho = general_power_tensor_one_pass(x, alpha, scale)
        if rho is not None:
            return rho
    rho = with_headroom(general_tensor_alpha, x, alpha, scale)
    if not x.requires_grad or (learned and x.dtype == torch.float32):  # float64 inside
        return rho
    a = alpha.detach()
    size = rho.detach().abs() * (0.5 * a.abs()).clamp(min=1.0)
    large = ~(size <= torch.finfo(x.dtype).max / 4) & (a.abs() < ALPHA_INFINITE_FROM)
    if not bool(large.any()):
        return rho
    with torch.no_grad():  # in float64: the exponent's terms reach ~±140 in float32
        xd = x.detach().double()
        c = torch.as_tensor(scale, device=x.device).detach().double()
        a = torch.where(large, a, 0.0).double()
        beta = (a - 2).abs().clamp(min=torch.finfo(x.dtype).eps)
        k, log_k = inverse_scale(c, xd, beta)
        exponent = (
            torch.log(xd.abs()) - 2.0 * torch.log(c) + (0.5 * a - 1.0) * log1p_square(xd, k, log_k)
        )
        slope = torch.sign(xd) * torch.exp(exponent)  # NaN at x = ±∞ (∞ − ∞): 0 there
        slope = torch.where(large & torch.isfinite(xd), slope, 0.0).to(x.dtype)
    tame = with_headroom(general_tensor_alpha, torch.where(large, 0.0, x), alpha, scale)
    return torch.where(large, with_given_gradient(rho, x, slope), tame)


def _as_numbers(x: Tensor, param: float | Tensor) -> float | Tensor:
    """A parameter given as a tensor of one element that needs no gradient and does not widen
    x's shape, as a number: the fixed-α path, faster and at least as accurate."""
    if (
        isinstance(param, Tensor)
        and param.numel() == 1
        and param.dim() <= x.dim()
        and not param.requires_grad
    ):
        return param.item()
    return param


def as_scale(scale: float | Tensor, like: Tensor) -> float | Tensor:
    return scale.to(like.dtype) if isinstance(scale, Tensor) else float(scale)
