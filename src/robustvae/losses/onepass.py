"""Eager losses at the cost of a plain formula: autograd Functions that compute a loss's value
with few passes over memory and write its gradient out, instead of recording every op of an
overflow-safe formula for autograd to replay (4× the plain formula for log-cosh).

Each Function covers the parameter ranges where its short form keeps the accuracy that
``robustvae.losses.functional`` guarantees; the callers (``barron``, ``nll``, ``functional``)
fall back to their general form elsewhere, and under ``torch.compile``, whose fused kernel is
faster still.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "LOG_COSH_ONE_PASS_FROM",
    "general_log_space_gradient",
    "general_power_one_pass",
    "log_cosh_one_pass",
]

#: The one-pass log-cosh serves a ≥ this: there (1/a)·log1p(2 sinh²(a|t|/2)) underflows only
#: where the true value is below the guaranteed absolute floor (1e-30 in float32).
LOG_COSH_ONE_PASS_FROM = 1.0
#: Past y = a|t| = this, log cosh y = y − log 2 to float64 rounding (the remainder is e^−2y).
_LOG_COSH_LINEAR_FROM = 20.0


class _LogCosh(torch.autograd.Function):
    """(1/a)·log cosh(a·t), t = input − target, elementwise; its gradient is tanh(a·t).

    log cosh y = log1p(2·sinh²(y/2)) has no cancellation near 0; it is taken at y clamped to
    20 and continued linearly (slope 1) beyond, so nothing overflows where the value does not.
    """

    @staticmethod
    def forward(ctx, input: Tensor, target: Tensor, a: float) -> Tensor:
        t = input - target
        magnitude = t.abs()
        clamped = magnitude.clamp(max=_LOG_COSH_LINEAR_FROM / a)
        half_sinh = torch.sinh(clamped * (0.5 * a))
        log_cosh = torch.log1p(torch.addcmul(t.new_zeros(()), half_sinh, half_sinh, value=2.0))
        ctx.save_for_backward(input, target)
        ctx.a = a
        return (magnitude - clamped).add_(log_cosh, alpha=1.0 / a)

    @staticmethod
    def backward(ctx, grad: Tensor):
        # From the saved inputs, in differentiable ops: a second derivative works too.
        input, target = ctx.saved_tensors
        d_input = torch.tanh((input - target) * ctx.a) * grad
        d_target = -d_input if ctx.needs_input_grad[1] else None
        return (d_input if ctx.needs_input_grad[0] else None), d_target, None


def log_cosh_one_pass(input: Tensor, target: Tensor, a: float) -> Tensor:
    """(1/a)·log cosh(a·(input − target)) elementwise, for a ≥ ``LOG_COSH_ONE_PASS_FROM``
    (a Python number); inputs of one shape and a floating dtype of float32 or wider."""
    return _LogCosh.apply(input, target, float(a))


class _GeneralPower(torch.autograd.Function):
    """Barron's ρ at a fixed α ≠ 2 from z = (x·k)², k = 1/(c·√|α−2|), L = log1p(z):
    ρ = L at α = 0, else (|α−2|/α)·expm1(α·L/2); ∂ρ/∂x = (x/c²)·exp((α/2 − 1)·L).
    The backward recomputes L from the input, in differentiable ops."""

    @staticmethod
    def forward(ctx, x: Tensor, k_sq, half_alpha, ratio, inv_c_sq):
        log_base = _log_base(x, k_sq)
        ctx.save_for_backward(x)
        ctx.constants = (k_sq, half_alpha, inv_c_sq)
        if isinstance(half_alpha, float) and half_alpha == 0:
            return log_base
        return torch.expm1(log_base.mul_(half_alpha)).mul_(ratio)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        k_sq, half_alpha, inv_c_sq = ctx.constants
        # ∂ρ/∂x = e^((α/2−1)L)·x/c², multiplied in an order that cannot overflow where the
        # result does not: x first where the factor is ≤ 1 (α < 2), x/c² first elsewhere
        # (the callers bound x/c² by the gradient there, and the tensor form everywhere).
        x_first = isinstance(half_alpha, float) and half_alpha < 1.0
        if torch.is_grad_enabled():  # a second derivative: no in-place ops on the graph
            factor = torch.exp(_log_base(x, k_sq, inplace=False) * (half_alpha - 1.0))
            slope = factor * x * inv_c_sq if x_first else factor * (x * inv_c_sq)
            return slope * grad, None, None, None, None
        factor = torch.exp(_log_base(x, k_sq).mul_(half_alpha - 1.0))
        slope = factor.mul_(x).mul_(inv_c_sq) if x_first else factor.mul_(x * inv_c_sq)
        return slope.mul_(grad), None, None, None, None


def _log_base(x: Tensor, k_sq, inplace: bool = True) -> Tensor:
    """log(1 + k²x²), for a number or a tensor k² (broadcast against x)."""
    if isinstance(k_sq, Tensor):  # x·k² first: x² alone can fall below float32's normals
        return torch.log1p((x * k_sq).mul_(x) if inplace else x * k_sq * x)
    return torch.log1p(torch.addcmul(x.new_zeros(()), x, x, value=k_sq))


def general_power_one_pass(
    x: Tensor, k_sq: float, half_alpha: float, ratio: float, inv_c_sq: float
) -> Tensor | None:
    """ρ(x) as ``_GeneralPower`` computes it, or None where that could lose accuracy on this
    ``x`` (decided once for the tensor, from max |x|): where z, e^(αL/2), the gradient or the
    constants leave the dtype's range (the general form's log-space branches are needed), or
    x holds a NaN or an infinity. Callers keep |α| ≥ 1e-3 (or α = 0) and |α| ≤ 1e6, where
    the tiny values that underflow here are below the guaranteed absolute floor."""
    largest = x.detach().abs().max().item() if x.numel() else 0.0
    bounds = (k_sq, k_sq, inv_c_sq, inv_c_sq)
    if not _in_range(x.dtype, largest, *bounds, half_alpha, half_alpha - 1.0):
        return None
    return _GeneralPower.apply(x, k_sq, float(half_alpha), ratio, inv_c_sq)


def _in_range(dtype, largest, k_lo, k_hi, inv_lo, inv_hi, value_power, slope_power) -> bool:
    """Whether ``_GeneralPower`` stays within ``dtype``'s range for every |x| ≤ ``largest``
    and constants k² in [k_lo, k_hi], 1/c² in [inv_lo, inv_hi]: z = k²x², e^(p·L) for the
    value's and the slope's powers p of L = log1p(z), and the slope (x/c²)·e^(p·L)."""
    finfo = torch.finfo(dtype)
    most = math.log(finfo.max / 4)
    if not (finfo.tiny < min(k_lo, inv_lo) and max(k_hi, inv_hi) < finfo.max):
        return False
    if not math.isfinite(largest) or largest * largest * k_hi >= finfo.max / 4:
        return False
    log_base = math.log1p(largest * largest * k_hi)
    value, slope = value_power * log_base, slope_power * log_base
    return max(value, slope) < most and math.log(max(largest * inv_hi, finfo.tiny)) + slope < most


def general_power_tensor_one_pass(x: Tensor, alpha: Tensor, scale) -> Tensor | None:
    """ρ(x, α, c) for a tensor α or c that needs no gradient, as ``_GeneralPower`` computes it
    with per-element constants, or None where some α is not in [1e-3, 1e6] or -[1e-3, 1e6]
    (or all 0), or where the bounds of ``general_power_one_pass`` fail for the extremes of
    x and the constants (decided once for the tensors). The output's shape is the broadcast
    of x, α and c."""
    a = alpha.detach().to(torch.float64)
    c = torch.as_tensor(scale, dtype=torch.float64, device=x.device).detach()
    if a.numel() == 0 or x.numel() == 0:
        return None
    a_abs = a.abs()
    beta = (a - 2).abs()
    inv_c_sq = 1.0 / (c * c)
    k_sq = inv_c_sq / beta
    half_alpha = 0.5 * a
    extremes = [a_abs.min(), a_abs.max(), beta.min(), k_sq.min(), inv_c_sq.min()]
    extremes += [k_sq.max(), inv_c_sq.max(), half_alpha.max(), x.detach().abs().max()]
    low, high, beta_lo, k_lo, inv_lo, k_hi, inv_hi, half_hi, largest = torch.stack(
        [e.double() for e in extremes]
    ).tolist()  # one read from the device
    if not (high == 0 or (low >= 1e-3 and high <= 1e6)) or beta_lo == 0:
        return None
    # powers clamped at 0: x/c² itself must fit, the backward's first product here
    powers = (max(half_hi, 0.0), max(half_hi - 1.0, 0.0))
    if not _in_range(x.dtype, largest, k_lo, k_hi, inv_lo, inv_hi, *powers):
        return None
    if high == 0:
        half, ratio = 0.0, 1.0
    else:
        half, ratio = half_alpha.to(x.dtype), (beta / a).to(x.dtype)
    return _GeneralPower.apply(x, k_sq.to(x.dtype), half, ratio, inv_c_sq.to(x.dtype))


class _GeneralLogSpaceGradient(torch.autograd.Function):
    """ρ(x) from ``rho`` (any overflow-safe form, evaluated without a graph), with the gradient
    of Barron's ρ at a fixed finite α ≠ 2 written out in log space:

        ∂ρ/∂x = sign(x)·exp(log|x| + log(1/c²) + (α/2 − 1)·L),   L = log(1 + (x/c)²/|α−2|)

    (``log_base(x)`` gives L without overflow). It is finite wherever the true gradient is,
    also where ρ itself overflows (α = 1, c = 1e-30, x = −1e25 in float32: ρ = inf,
    ∂ρ/∂x = −1e30), where the chain rule through e^v would give inf."""

    @staticmethod
    def forward(ctx, x: Tensor, rho, log_base, half_alpha: float, log_inv_c_sq: float):
        with torch.no_grad():
            value = rho(x)
        ctx.save_for_backward(x)
        ctx.log_base, ctx.constants = log_base, (half_alpha, log_inv_c_sq)
        return value

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        half_alpha, log_inv_c_sq = ctx.constants
        exponent = torch.log(x.abs()) + log_inv_c_sq
        if half_alpha != 1.0:
            exponent = exponent + (half_alpha - 1.0) * ctx.log_base(x)
        slope = torch.exp(exponent) * torch.sign(x)
        return slope * grad, None, None, None, None


def general_log_space_gradient(
    x: Tensor, rho, log_base, half_alpha: float, log_inv_c_sq: float
) -> Tensor:
    """``rho(x)`` with ``_GeneralLogSpaceGradient``'s gradient (see there)."""
    return _GeneralLogSpaceGradient.apply(x, rho, log_base, half_alpha, log_inv_c_sq)


class _GivenGradient(torch.autograd.Function):
    """``value`` (no gradient of its own) whose derivative in ``x`` is ``slope``, elementwise
    (a constant slope: no second derivative)."""

    @staticmethod
    def forward(ctx, value: Tensor, x: Tensor, slope: Tensor):
        ctx.save_for_backward(slope)
        return value.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        (slope,) = ctx.saved_tensors
        return None, grad * slope, None


def with_given_gradient(value: Tensor, x: Tensor, slope: Tensor) -> Tensor:
    """``value``, with ∂/∂x = ``slope`` (both of x's shape, computed without a graph)."""
    return _GivenGradient.apply(value.detach(), x, slope.detach())


class _ScaledNLLSum(torch.autograd.Function):
    """w·Σ [f(x/c) + log c] over all elements, c per trailing dimension (broadcast), with the
    gradients written out from u = x/c in the same pass: ∂/∂x = f'(u)/c and
    ∂/∂c = (1 − u·f'(u))/c, the latter summed over the batch at once. ``f`` and ``f'`` come
    from ``profile(u)``. The constant of the NLL is added by the caller."""

    @staticmethod
    def forward(ctx, x: Tensor, c: Tensor, profile, weight: float):
        inv_c = 1.0 / c
        u = x * inv_c
        value, slope = profile(u)
        total = (value.sum() + torch.log(c).sum() * (x.numel() // c.numel())) * weight
        if ctx.needs_input_grad[1]:
            batch = tuple(range(x.dim() - c.dim()))
            c_term = torch.addcmul(torch.ones_like(u), u, slope, value=-1.0)
            d_c = (c_term.sum(batch) if batch else c_term) * (inv_c * weight)
        else:
            d_c = None
        ctx.save_for_backward(slope.mul_(inv_c * weight), d_c)
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        d_x, d_c = ctx.saved_tensors
        needs = ctx.needs_input_grad
        return (
            grad * d_x if needs[0] else None,
            grad * d_c if needs[1] else None,
            None,
            None,
        )


def _normal_profile(u: Tensor):
    return 0.5 * u * u, u.clone()


def _laplace_profile(u: Tensor):
    return u.abs(), torch.sign(u)


def _cauchy_profile(u: Tensor):
    u_sq = u * u
    return torch.log1p(u_sq), (2.0 * u) / (1.0 + u_sq)


def _student_profile(nu: float):
    half = 0.5 * (nu + 1.0)

    def profile(u: Tensor):
        u_sq = u * u
        return half * torch.log1p(u_sq / nu), ((nu + 1.0) * u) / (nu + u_sq)

    return profile


NLL_PROFILES = {"normal": _normal_profile, "laplace": _laplace_profile, "cauchy": _cauchy_profile}


def scaled_nll_sum(x: Tensor, c: Tensor, kind: str, weight: float, df: float | None = None):
    """w·Σ (f(x/c) + log c) for an NLL ``kind`` ('normal', 'laplace', 'cauchy', 'student_t'
    with a number ``df``) and a scale c per trailing dimension, in one pass in x's dtype; or
    None where that could overflow: u = x/c, u² or ∂/∂c = (1 − u·f'(u))/c within a factor 4
    of the dtype's maximum, judged from max |x| and min c (one read from the device), or a
    non-finite x."""
    if x.numel() == 0 or x.dim() < c.dim():
        return None
    finfo = torch.finfo(x.dtype)
    largest, least = torch.stack([x.detach().abs().max(), c.detach().min()]).double().tolist()
    if not (math.isfinite(largest) and least > 0):
        return None
    u_max = largest / least
    if u_max * u_max / min(least, 1.0) >= finfo.max / 4:
        return None
    profile = _student_profile(float(df)) if kind == "student_t" else NLL_PROFILES[kind]
    return _ScaledNLLSum.apply(x, c, profile, weight)
