"""The adaptive loss's ρ summed, with its gradients written out: one pass over the data.

Autograd through ``functional.general_per_dim`` differentiates every per-dimension term (|α-2|/2,
α/2, 1/(c√|α-2|), …) separately, and a compiled backward then reduces each over the batch: four
times the cost of the loss itself. Here the forward pass computes, elementwise, ρ, ∂ρ/∂x, ∂ρ/∂α and
∂ρ/∂c from L = log(1 + (x/c)²/|α-2|) and e^v (v = αL/2), and sums the last two over the batch in
the same loop; the backward pass only scales them. For α ≥ 0, the adaptive loss's range.

With β = |α-2|, s = dβ/dα, q = x·∂L/∂x = -c·∂L/∂c and G = ∂ρ/∂L = (β/2)·e^v:
    ∂ρ/∂x = G·∂L/∂x,   ∂ρ/∂c = -G·q/c,
    ∂ρ/∂α = (s/β)·(β·L·R/2 - G·q/2) + (β/4)·L²·R'(v)   with R = expm1(v)/v (v ≤ 1),
    ∂ρ/∂α = ρ̃·((s/β)·(1 - α·q/4) + (v-1)/α) + (β/α)·(1/α - s/β)   ρ̃ = (β/α)·e^v   (v > 1),
the last the same as (s/β)·(ρ - G·q/2) + ((v-1)·ρ̃ + β/α)/α with no product of ρ̃ that can
overflow where ∂ρ/∂α does not.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from robustvae.losses import functional as LF
from robustvae.losses.fused import Fused

# Below this |v|, R = expm1(v)/v and R' come from their Taylor series.
_SERIES_BELOW = 0.1


def _series(v: Tensor) -> tuple[Tensor, Tensor]:
    """R(v) = Σ vⁿ/(n+1)! and R'(v) to v⁷ (remainder < 1e-17 relative at |v| = 0.1)."""
    tail = 1 + v / 5 * (1 + v / 6 * (1 + v / 7 * (1 + v / 8)))
    r = 1 + v / 2 * (1 + v / 3 * (1 + v / 4 * tail))
    dr = 0.5 + v * (
        1 / 3 + v * (1 / 8 + v * (1 / 30 + v * (1 / 144 + v * (1 / 840 + v * (1 / 5760)))))
    )
    return r, dr


def adaptive_rho_and_gradients(
    input: Tensor,
    target: Tensor,
    weight: float,
    half_beta: Tensor,
    half_alpha: Tensor,
    k: Tensor,
    log_k: Tensor,
    log_ratio: Tensor,
    ratio: Tensor,
    slope_over_beta: Tensor,
    inv_alpha: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """w·(Σρ, ∂ρ/∂x, ∂ρ/∂α, c·∂ρ/∂c) at x = input - target, elementwise but for the sum
    (w = ``weight``: 1 for a sum, 1/n for a mean).

    The per-dimension terms are those of ``functional.barron_terms``, plus ``ratio`` = β/α,
    ``slope_over_beta`` = (dβ/dα)/β and ``inv_alpha`` = 1/α (1 where α = 0): computed once
    per dimension, not per element. Summing the last two over the batch here would make the
    compiler run the elementwise pass once per sum.
    """
    finfo = torch.finfo(input.dtype)
    far_from = 1.0 / math.sqrt(finfo.eps)
    log_max = math.log(finfo.max)

    x = input - target
    xk = x * k
    un = xk.abs().clamp(max=far_from)
    far_l = xk.abs() >= far_from
    near_den = 1.0 / (1.0 + un * un)
    log_base = torch.where(
        far_l, 2.0 * (torch.log(x.abs().clamp(min=finfo.tiny)) + log_k), torch.log1p(un * un)
    )
    q = torch.where(far_l, 2.0, 2.0 * un * un * near_den)
    dl_dx = torch.where(far_l, 2.0 / torch.where(far_l, x, 1.0), 2.0 * xk * k * near_den)

    v = half_alpha * log_base
    far = v > 1.0
    # One exponential: e^v (v ≤ 1) or ρ̃ = exp(v + log(β/α)) (v > 1, +inf past the maximum)
    log_e = torch.where(far, v + log_ratio, v)
    overflow = log_e >= log_max
    e = torch.exp(log_e.clamp(max=log_max))
    # v ≤ 1: ρ = (β/2)·L·R(v), R from e^v - 1 (at most 10 ulps off above v = 0.1) or series
    vn = v.clamp(max=1.0)
    small = vn < _SERIES_BELOW
    r_series, dr_series = _series(vn.clamp(max=_SERIES_BELOW))
    inv_v = 1.0 / torch.where(small, 1.0, vn)
    r = torch.where(small, r_series, (e - 1.0) * inv_v)
    dr = torch.where(small, dr_series, (e - r) * inv_v)
    half_l = 0.5 * log_base
    # v > 1: ρ = ρ̃ - β/α
    rho = torch.where(far, torch.where(overflow, math.inf, e - ratio), half_beta * log_base * r)
    g = torch.where(far, half_alpha, half_beta) * e
    gq = g * q
    # v > 1: ρ̃ factored out, ρ̃·[(s/β)(1 − (α/2)q/2) + (v − 1)/α] + (β/α)(1/α − s/β), so that
    # no product of ρ̃ overflows where the gradient does not (G·q past the maximum would make
    # it inf − inf).
    near_alpha = slope_over_beta * (rho - 0.5 * gq) + half_beta * half_l * log_base * dr
    bracket = slope_over_beta * (1.0 - 0.5 * half_alpha * q) + (v - 1.0) * inv_alpha
    far_alpha = e * bracket + ratio * (inv_alpha - slope_over_beta)
    d_alpha = torch.where(far, far_alpha, near_alpha)
    d_alpha = torch.where(far & overflow, math.inf, d_alpha)
    return weight * rho.sum(), (weight * g) * dl_dx, weight * d_alpha, (-weight) * gq


def adaptive_rho_and_input_gradient(*args) -> tuple[Tensor, Tensor]:
    """w·(Σρ, ∂ρ/∂x), for fixed α and c."""
    total, d_x, _, _ = adaptive_rho_and_gradients(*args)
    return total, d_x


def adaptive_rho_and_gradients_into(*args) -> tuple[Tensor, Tensor]:
    """w·(Σρ, ∂ρ/∂x), writing ∂ρ/∂α and c·∂ρ/∂c into the last two arguments."""
    *args, out_alpha, out_scale = args
    total, d_x, d_alpha, c_d_scale = adaptive_rho_and_gradients(*args)
    out_alpha.copy_(d_alpha)
    out_scale.copy_(c_d_scale)
    return total, d_x


class Scratch:
    """Two arrays shaped like the last input, kept for the next call: the per-element ∂ρ/∂α
    and c·∂ρ/∂c are summed over the batch as soon as they are written. On the CPU a fresh
    64 MB array costs about 20 ms of first-touch page faults, as much as the rest of the
    pass. Only arrays of the latest shape are kept; a call that finds them taken (another
    thread) gets fresh ones."""

    def __init__(self):
        self._kept: dict[tuple, tuple[Tensor, Tensor]] = {}

    def take(self, like: Tensor) -> tuple[Tensor, Tensor]:
        key = (tuple(like.shape), like.dtype, like.device)
        pair = self._kept.pop(key, None)
        if pair is None:
            pair = (torch.empty_like(like), torch.empty_like(like))
        return pair

    def give(self, like: Tensor, pair: tuple[Tensor, Tensor]) -> None:
        self._kept = {(tuple(like.shape), like.dtype, like.device): pair}


#: Eagerly, the pass runs on slices of about this many elements along the batch dimension:
#: its ~45 elementwise operations then read and write arrays that stay in the CPU's cache,
#: where whole-batch arrays go to memory each time (2^24 elements: about 2× faster).
EAGER_CHUNK = 1 << 16


def _in_chunks(fn):
    """``fn`` applied to slices of the input and target along dim 0 (``fn``'s results: the
    total, then per-element arrays; the ``_into`` form's last two arguments are per-element
    arrays written slice by slice too)."""

    def chunked(input: Tensor, target: Tensor, weight: float, *rest):
        per_row = max(1, input[0].numel()) if input.dim() else 1
        rows = max(1, EAGER_CHUNK // per_row)
        n_terms = len(rest) - (2 if fn is adaptive_rho_and_gradients_into else 0)
        if input.dim() <= rest[0].dim() or input.shape[0] <= rows:  # no batch dim to slice
            return fn(input, target, weight, *rest)
        terms, outs = rest[:n_terms], rest[n_terms:]
        total, d_x = None, torch.empty_like(input)
        for start in range(0, input.shape[0], rows):
            part = slice(start, start + rows)
            part_outs = tuple(o[part] for o in outs)
            t, dx = fn(input[part], target[part], weight, *terms, *part_outs)
            total = t if total is None else total + t
            d_x[part] = dx
        return total, d_x

    return chunked


_INPUT_ONLY = Fused(
    adaptive_rho_and_input_gradient, eager=_in_chunks(adaptive_rho_and_input_gradient)
)
_INTO = Fused(adaptive_rho_and_gradients_into, eager=_in_chunks(adaptive_rho_and_gradients_into))
_SCRATCH = Scratch()


def _kernel_arguments(input: Tensor, target: Tensor, alpha: Tensor, scale: Tensor) -> tuple:
    """(input, target, then the per-dimension terms ``adaptive_rho_and_gradients`` takes)."""
    half_beta, half_alpha, (k_c, k_beta), log_k, log_ratio = LF.barron_terms(alpha, scale, input)
    k = k_c * k_beta  # within float32's range for α ∈ [0, 8] and c ∈ [1e-30, 1e30]
    beta = 2.0 * half_beta
    slope = torch.sign(alpha - 2) * ((alpha - 2).abs() >= torch.finfo(input.dtype).eps)
    safe_alpha = torch.where(alpha > 0, alpha, 1.0)
    terms = (half_beta, half_alpha, k, log_k, log_ratio)
    return (input, target, *terms, beta / safe_alpha, slope / beta, 1.0 / safe_alpha)


def _sums(d_alpha: Tensor, c_d_scale: Tensor, batch: tuple, scale: Tensor):
    """(Σ ∂ρ/∂α, Σ ∂ρ/∂c) over the batch dimensions."""
    # sum((), …) would sum everything; without batch dimensions, copy out of the scratch
    d_alpha_sum = d_alpha.sum(batch) if batch else d_alpha.clone()
    return d_alpha_sum, (c_d_scale.sum(batch) if batch else c_d_scale.clone()) / scale


class AdaptiveRhoSum(torch.autograd.Function):
    """w·Σρ(input - target, α, c) over all elements, α ≥ 0 and c per trailing dimension."""

    @staticmethod
    def forward(
        ctx, input: Tensor, target: Tensor, alpha: Tensor, scale: Tensor, weight: float = 1.0
    ) -> Tensor:
        """α and c may be wider than the input (float64 for float32): the pass runs in the
        input's dtype, and where a summed ∂ρ/∂α or ∂ρ/∂c leaves that dtype's range, those
        sums are computed again in α's dtype (returned in it, for the latents' chain rule)."""
        args = _kernel_arguments(input, target, alpha.to(input.dtype), scale.to(input.dtype))
        args = (args[0], args[1], weight, *args[2:])
        if not (ctx.needs_input_grad[2] or ctx.needs_input_grad[3]):
            total, d_x = _INPUT_ONLY(*args)
            ctx.save_for_backward(d_x, torch.zeros_like(alpha), torch.zeros_like(scale))
            return total
        d_alpha, c_d_scale = _SCRATCH.take(input)
        total, d_x = _INTO(*args, d_alpha, c_d_scale)
        batch = tuple(range(input.dim() - alpha.dim()))
        d_alpha_sum, d_scale_sum = _sums(d_alpha, c_d_scale, batch, scale.to(input.dtype))
        _SCRATCH.give(input, (d_alpha, c_d_scale))
        if alpha.dtype != input.dtype and not bool(
            torch.isfinite(d_alpha_sum).all() & torch.isfinite(d_scale_sum).all()
        ):
            wide = _kernel_arguments(input.to(alpha.dtype), target.to(alpha.dtype), alpha, scale)
            _, _, d_alpha_wide, c_d_scale_wide = adaptive_rho_and_gradients(
                wide[0], wide[1], weight, *wide[2:]
            )
            d_alpha_sum, d_scale_sum = _sums(d_alpha_wide, c_d_scale_wide, batch, scale)
        ctx.save_for_backward(d_x, d_alpha_sum.to(alpha.dtype), d_scale_sum.to(alpha.dtype))
        return total

    @staticmethod
    def backward(ctx, grad: Tensor):
        d_x, d_alpha, d_scale = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_x = None
        if needs[0] or needs[1]:
            # the usual loss.backward(): the gradient is d_x itself, with no pass to scale it
            unit = grad.device.type == "cpu" and grad.item() == 1.0
            grad_x = d_x if unit else grad * d_x
        return (
            grad_x if needs[0] else None,
            -grad_x if needs[1] else None,
            grad * d_alpha if needs[2] else None,
            grad * d_scale if needs[3] else None,
            None,
        )
