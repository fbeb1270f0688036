"""Eager losses at the cost of a plain formula: autograd Functions that compute a loss's value
with few passes over memory and write its gradient out, instead of recording every op of an
overflow-safe formula for autograd to replay (4× the plain formula for log-cosh).

Each Function covers the parameter ranges where its short form keeps the accuracy that
``robustvae.losses.functional`` guarantees; the callers there fall back to their general form
elsewhere, and under ``torch.compile``, whose fused kernel is faster still.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["LOG_COSH_ONE_PASS_FROM", "log_cosh_one_pass"]

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
