"""Loss modules: thin ``nn.Module`` wrappers over ``robustvae.losses.functional``.

Each takes ``forward(input, target)`` of equal shapes (or ``forward(x)``, residuals, and an
optional per-element ``weight``: see ``Loss``) and a ``reduction`` of ``'mean'`` (default, as
in torch), ``'sum'`` or ``'none'``. Sums and means of large inputs run as one fused
kernel (``robustvae.losses.fused``). Parameters are validated at construction.
"""

from __future__ import annotations

import math
from functools import cache

import torch
from torch import Tensor, nn

from robustvae.losses import functional as LF
from robustvae.losses.fused import ReducedLoss
from robustvae.losses.onepass import scaled_nll_sum
from robustvae.losses.parameters import PositiveParameter, as_shape

__all__ = [
    "SquaredL2Loss",
    "L1Loss",
    "LogCoshLoss",
    "GeneralLoss",
    "NormalNLL",
    "LaplaceNLL",
    "CauchyNLL",
    "StudentTNLL",
]


class Loss(nn.Module):
    """Base: holds and validates ``reduction``. ``loss(input, target)`` is the loss of
    ``input - target``; ``loss(x)`` the loss of residuals ``x`` (the target 0);
    ``loss(input, target, weight=w)`` weighs each element's value by ``w`` (broadcastable to
    them, finite, ≥ 0): ``'sum'`` gives Σ w·ρ, ``'mean'`` the weighted mean Σ w·ρ / Σ w
    (BasicSR's convention), ``'none'`` w·ρ. Subclasses implement ``values(input, target,
    reduction)``."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = LF.check_reduction(reduction)

    def forward(
        self, input: Tensor, target: Tensor | None = None, weight: Tensor | float | None = None
    ) -> Tensor:
        if target is None:
            target = torch.zeros_like(input)
        if weight is None:
            return self.values(input, target, self.reduction)
        return LF.weighted_reduce(self.values(input, target, "none"), weight, self.reduction)

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class SquaredL2Loss(Loss):
    """(input - target)², reduced."""

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        return LF.squared_l2(input, target, reduction)


class L1Loss(Loss):
    """|input - target|, reduced."""

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        return LF.l1(input, target, reduction)


_LOG_COSH = ReducedLoss(LF.log_cosh_values)


class LogCoshLoss(Loss):
    """Log-cosh loss (1/a)·log cosh(a·(input - target)).

    Args:
        a: curvature at 0, in [1e-30, 1e30]: the loss is ½·a·t² for small t and
            |t| - log(2)/a for large. The papers use a = 100 on images in [0, 1].
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
    """

    def __init__(self, a: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        LF.check_positive("a", a)
        self.register_buffer("a", torch.tensor(float(a), dtype=torch.float64), persistent=False)

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        LF.check_same_shape(input, target)
        input, target = LF.computable(input, target)
        return _LOG_COSH(reduction, input, target, self.a.to(input.dtype))

    def extra_repr(self) -> str:
        return f"a={self.a.item():g}, " + super().extra_repr()


@cache
def _fixed_alpha_loss(rho) -> ReducedLoss:
    def values(input, target, *consts):
        return LF.fixed_alpha_values(input - target, rho, consts)

    values.__name__ = f"general{rho.__name__}"
    return ReducedLoss(values)


class GeneralLoss(Loss):
    """Barron's general robust loss ρ(input - target, α, c) with fixed α and c.

    Args:
        alpha: shape α ∈ [-∞, ∞]: 2 is L2, 1 pseudo-Huber, 0 Cauchy/Lorentzian,
            -2 Geman-McClure, -∞ Welsch. For learned α and c use ``AdaptiveLoss``.
        scale: c ∈ [1e-30, 1e30], the size of the quadratic bowl around 0.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
    """

    def __init__(self, alpha: float = 1.0, scale: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.alpha = LF.check_number("alpha", alpha, -math.inf, math.inf)
        LF.check_positive("scale", scale)
        self.scale = float(scale)
        rho, consts = LF.fixed_alpha_kernel(self.alpha, self.scale)
        self._kernel = _fixed_alpha_loss(rho)
        # α = ∞ carries ½(x/c)² wider than x, so its c stays float64
        self._wide = rho in LF.WIDE_CONSTANT_KERNELS
        self.register_buffer("consts", torch.tensor(consts, dtype=torch.float64), persistent=False)

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        LF.check_same_shape(input, target)
        input, target = LF.computable(input, target)
        consts = self.consts if self._wide else self.consts.to(input.dtype)
        return self._kernel(reduction, input, target, *consts.unbind())

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, scale={self.scale:g}, " + super().extra_repr()


def check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


class _ScaledNLL(Loss):
    """An NLL with a scale c > 0: one fixed number, or per dimension and learnable."""

    def __init__(
        self,
        scale: float = 1.0,
        num_dims: int | tuple[int, ...] | None = None,
        learn_scale: bool = False,
        scale_lo: float = 1e-5,
        reduction: str = "mean",
    ):
        super().__init__(reduction)
        LF.check_positive("scale_lo", scale_lo)
        LF.check_number("scale", scale, scale_lo, LF.SCALE_RANGE[1], lo_open=True)
        check_flag("learn_scale", learn_scale)
        self.dims = as_shape(num_dims)
        self.scale = PositiveParameter(self.dims, scale_lo, scale, learn_scale, name="scale")

    @staticmethod
    def _value_for(parameter: PositiveParameter, x: Tensor) -> Tensor:
        """A parameter's values for residuals ``x``: in float64 when it is learned and x is
        float32, so that the chain rule into its latent runs where ``with_headroom`` computes
        the loss (∂/∂c can overflow float32 where ∂/∂latent = ∂/∂c·softplus' does not)."""
        if x.dtype == torch.float32 and parameter.learnable:
            return parameter(torch.float64)
        return parameter().to(x.dtype)

    def _one_pass(self, x: Tensor, kind: str, reduction: str, df: float | None = None):
        """The reduced NLL from ``onepass.scaled_nll_sum`` (c in x's dtype: its checks keep
        ∂/∂c within range), or None: for 'none', a learned ν, no gradient wanted, under
        torch.compile, or where the one-pass form declines."""
        if reduction == "none" or not torch.is_grad_enabled() or torch.compiler.is_compiling():
            return None
        c = self.scale().to(x.dtype)
        if x.dtype not in (torch.float32, torch.float64):
            return None
        weight = 1.0 / x.numel() if reduction == "mean" else 1.0
        total = scaled_nll_sum(x, c, kind, weight, df)
        if total is None:
            return None
        return total + self._constant(df) * (x.numel() * weight)

    @staticmethod
    def _constant(df) -> float:
        return 0.0

    def _residual(self, input: Tensor, target: Tensor) -> Tensor:
        LF.check_same_shape(input, target)
        input, target = LF.computable(input, target)
        n = len(self.dims)
        if n and tuple(input.shape[-n:]) != self.dims:
            raise ValueError(
                f"{type(self).__name__} has parameters of shape {self.dims}: input must end with "
                f"those dimensions, got shape {tuple(input.shape)}"
            )
        return input - target


class NormalNLL(_ScaledNLL):
    """-log N(target | input, c²). Args: scale c, num_dims (per-dimension c), learn_scale."""

    _constant = staticmethod(lambda df: LF.HALF_LOG_2PI)

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        x = self._residual(input, target)
        fast = self._one_pass(x, "normal", reduction)
        if fast is not None:
            return fast
        values = LF.with_headroom(LF.normal_nll_values, x, self._value_for(self.scale, x))
        return LF.reduce(values, reduction)


class LaplaceNLL(_ScaledNLL):
    """-log Laplace(target | input, c). Args: scale c, num_dims, learn_scale."""

    _constant = staticmethod(lambda df: LF.LOG2)

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        x = self._residual(input, target)
        fast = self._one_pass(x, "laplace", reduction)
        if fast is not None:
            return fast
        values = LF.with_headroom(LF.laplace_nll_values, x, self._value_for(self.scale, x))
        return LF.reduce(values, reduction)


class CauchyNLL(_ScaledNLL):
    """-log Cauchy(target | input, c). Args: scale c, num_dims, learn_scale."""

    _constant = staticmethod(lambda df: LF.LOG_PI)

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        x = self._residual(input, target)
        fast = self._one_pass(x, "cauchy", reduction)
        if fast is not None:
            return fast
        values = LF.with_headroom(LF.cauchy_nll_values, x, self._value_for(self.scale, x))
        return LF.reduce(values, reduction)


class StudentTNLL(_ScaledNLL):
    """-log t_ν(target | input, c): Student's t with ``df`` ν > 0, optionally learned
    (``learn_df``), and scale c (see ``NormalNLL``)."""

    def __init__(self, df: float = 1.0, learn_df: bool = False, df_lo: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        LF.check_positive("df_lo", df_lo)
        LF.check_number("df", df, df_lo, LF.DF_RANGE[1], lo_open=True)
        check_flag("learn_df", learn_df)
        self.df = PositiveParameter(self.dims, df_lo, df, learn_df, name="df")

    @staticmethod
    def _constant(df) -> float:
        return float(LF.student_t_log_normaliser(torch.tensor(df, dtype=torch.float64)))

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        x = self._residual(input, target)
        if not self.df.learnable:
            nu = self.df().detach()
            if nu.numel() and bool((nu == nu.reshape(-1)[0]).all()):  # one ν: a number
                fast = self._one_pass(x, "student_t", reduction, float(nu.reshape(-1)[0]))
                if fast is not None:
                    return fast
        df, scale = self._value_for(self.df, x), self._value_for(self.scale, x)
        values = LF.with_headroom(LF.student_t_nll_values, x, df, scale)
        return LF.reduce(values, reduction)
