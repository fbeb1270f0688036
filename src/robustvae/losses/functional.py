"""Elementwise reconstruction losses and negative log-likelihoods, as pure functions.

For any finite input in float32 and float64 (float16 and bfloat16 are computed in float32),
and parameters in their valid ranges, every value is within a stated tolerance of the true
one, +inf where that overflows, and no gradient is NaN: the README's "What the losses
guarantee" states the tolerances, and ``tests/test_loss_properties.py`` checks them. Losses
taking ``(input, target)`` follow ``torch.nn.functional`` (a ``reduction`` of
``'mean'``, ``'sum'`` or ``'none'``); functions of one residual ``x`` (``general``, the NLLs) are
elementwise and broadcast their parameters against ``x``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# The guards and ranges, Barron's ρ and the likelihoods live in their own modules; this one
# adds L2, L1 and log-cosh and is their one public face (``LF.general``, ``LF.normal_nll``, …).
from robustvae.losses.arguments import (  # noqa: F401 - re-exported: LF.check_* and the ranges
    ALPHA_INFINITE_FROM,
    ALPHA_ZERO_BELOW,
    DF_RANGE,
    REDUCTIONS,
    SCALE_RANGE,
    check_number,
    check_positive,
    check_range,
    check_reduction,
    check_same_shape,
    computable,
    reduce,
    weighted_reduce,
    with_headroom,
)
from robustvae.losses.barron import (  # noqa: F401 - re-exported
    LOG2,
    WIDE_CONSTANT_KERNELS,
    barron_terms,
    fixed_alpha_kernel,
    fixed_alpha_values,
    general,
    general_fixed_alpha,
    general_per_dim,
)
from robustvae.losses.nll import (  # noqa: F401 - re-exported
    HALF_LOG_2PI,
    LOG_PI,
    cauchy_nll,
    cauchy_nll_values,
    general_nll,
    laplace_nll,
    laplace_nll_values,
    normal_nll,
    normal_nll_values,
    student_t_log_normaliser,
    student_t_nll,
    student_t_nll_values,
)
from robustvae.losses.onepass import LOG_COSH_ONE_PASS_FROM, log_cosh_one_pass
from robustvae.losses.partition import ALPHA_MAX  # noqa: F401 - re-exported

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

# Past this, log cosh(y) = y - log 2 to within float64 rounding (the remainder is < e^-40).
_LOG_COSH_LINEAR_FROM = 20.0
# Below this, log cosh(y) = y²/2 - y⁴/12 + y⁶/45 to within float64 rounding.
_LOG_COSH_SERIES_BELOW = 1e-3


# ----------------------------------------------------------------------------- L2, L1


def squared_l2(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Squared error ``(input - target)²``."""
    check_same_shape(input, target)
    input, target = computable(input, target)
    return F.mse_loss(input, target, reduction=check_reduction(reduction))


def l1(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Absolute error ``|input - target|``."""
    check_same_shape(input, target)
    input, target = computable(input, target)
    return F.l1_loss(input, target, reduction=check_reduction(reduction))


# ----------------------------------------------------------------------------- log-cosh


def log_cosh_values(input: Tensor, target: Tensor, a: float | Tensor) -> Tensor:
    """Elementwise f(t; a) = log(cosh(a t)) / a with t = input - target (no checks).

    With y = a|t|: y·|t|·(1/2 - y²/12 + y⁴/45) below y = 1e-3 (no underflow of y²);
    log1p(m² / (2(m + 1)))/a with m = expm1(y) up to y = 20; |t| - log(2)/a beyond (also where
    a·t overflows). Every branch torch.where discards sees clamped, finite inputs. Eagerly,
    for a ≥ 1 not learned, the value and its gradient come from ``robustvae.losses.onepass``
    at about the cost of a plain formula instead.
    """
    if not torch.compiler.is_compiling():
        value = a.item() if isinstance(a, Tensor) and a.numel() == 1 else a
        if isinstance(value, float | int) and value >= LOG_COSH_ONE_PASS_FROM:
            if not (isinstance(a, Tensor) and a.requires_grad):
                return log_cosh_one_pass(input, target, value)
    t = (input - target).abs()
    y = a * t
    y_series = y.clamp(max=_LOG_COSH_SERIES_BELOW)
    series = y_series * t * (0.5 - y_series * y_series * (1 / 12 - y_series * y_series / 45))
    m = torch.expm1(y.clamp(_LOG_COSH_SERIES_BELOW, _LOG_COSH_LINEAR_FROM))
    middle = torch.log1p(m * m / (2.0 * (m + 1.0))) / a
    linear = t - LOG2 / a
    return torch.where(
        y < _LOG_COSH_SERIES_BELOW, series, torch.where(y < _LOG_COSH_LINEAR_FROM, middle, linear)
    )


def log_cosh(input: Tensor, target: Tensor, a: float = 1.0, reduction: str = "mean") -> Tensor:
    """Log-cosh loss f(t; a) = (1/a)·log cosh(a·t), t = input - target (Chen et al., Eq. 5).

    Behaves as ½·a·t² near 0 and as |t| - log(2)/a for large |t|; its gradient is tanh(a·t).
    ``a`` in [1e-30, 1e30] sets the curvature at 0.
    """
    check_same_shape(input, target)
    check_positive("a", a)
    input, target = computable(input, target)
    return reduce(log_cosh_values(input, target, a), check_reduction(reduction))
