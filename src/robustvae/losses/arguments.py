"""What a loss takes, checked: the reduction, equal shapes, parameters in their ranges (one
``ValueError`` naming the parameter and the range), and the dtype its maths runs in."""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")
#: The valid range of every scale c and of log-cosh's a: representable, with its inverse, in
#: float32 (the narrowest dtype a loss computes in; float16 and bfloat16 inputs are upcast).
SCALE_RANGE = (1e-30, 1e30)
#: Student-t's degrees of freedom ν (1/√ν within float32's range too).
DF_RANGE = (1e-30, 1e30)
#: |α| below this is α = 0 and above it α = ±∞: each differs from its limit by less than
#: float64 rounding (relative ~|α|·log(1 + z)² near 0, ~z²/|α| near ±∞).
ALPHA_ZERO_BELOW = 1e-20
ALPHA_INFINITE_FROM = 1e20


def check_reduction(reduction: str) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
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


def weighted_reduce(values: Tensor, weight: Tensor | float, reduction: str) -> Tensor:
    """``values`` weighed elementwise by ``weight`` (broadcast to them; finite, ≥ 0) and
    reduced: ``'sum'`` Σ w·v, ``'mean'`` Σ w·v / Σ w, ``'none'`` w·v."""
    weight = torch.as_tensor(weight, dtype=values.dtype, device=values.device)
    try:
        weight = torch.broadcast_to(weight, values.shape)
    except RuntimeError:
        raise ValueError(
            f"weight of shape {tuple(weight.shape)} does not broadcast to the loss's values "
            f"{tuple(values.shape)}"
        ) from None
    if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
        raise ValueError("weight must be finite and >= 0")
    weighted = values * weight
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    return weighted.sum() / weight.sum()


def check_same_shape(input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        raise ValueError(
            f"input and target must have the same shape, got {tuple(input.shape)} "
            f"and {tuple(target.shape)}"
        )


def check_number(
    name: str, value, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    """``value`` as a float, or ValueError naming ``name`` and the valid range.

    A bool, a string, None, NaN or an integer too large for a float is never a number here."""
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if not _is_number(value):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(
            f"{name} must lie in {interval}, got an integer of {len(str(abs(value)))} digits"
        ) from None
    below = number <= lo if lo_open else number < lo
    above = number >= hi if hi_open else number > hi
    if math.isnan(number) or below or above:
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return number


def check_positive(name: str, value: float | Tensor, hi: float = SCALE_RANGE[1]) -> None:
    """ValueError unless every entry of ``value`` lies in [1e-30, ``hi``] (a scale's range)."""
    lo = SCALE_RANGE[0]
    if isinstance(value, Tensor):
        if not bool(((value >= lo) & (value <= hi)).all()):
            raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}], got {_describe(value)}")
    else:
        check_number(name, value, lo, hi)


def check_range(name: str, value: float | Tensor, lo: float, hi: float) -> None:
    """ValueError unless every entry of ``value`` lies in [lo, hi] (NaN never does)."""
    if isinstance(value, Tensor):
        if not bool(((value >= lo) & (value <= hi)).all()):
            raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}], got {_describe(value)}")
    else:
        check_number(name, value, lo, hi)


def _describe(value: float | Tensor) -> str:
    if isinstance(value, Tensor):
        if value.numel() == 1:
            return repr(value.item())
        return f"a tensor with min {value.min().item()!r} and max {value.max().item()!r}"
    return repr(value)


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def with_headroom(fn, x: Tensor, *params):
    """``fn(x, *params)``, in float64 when x is float32 and a parameter is a tensor that needs
    a gradient: the chain rule through α or c multiplies terms that can each overflow (or
    underflow) float32 where their product does not; the result is cast back."""
    learned = any(isinstance(p, Tensor) and p.requires_grad for p in params)
    if x.dtype != torch.float32 or not learned:
        return fn(x, *params)
    wide = [p.double() if isinstance(p, Tensor) else p for p in params]
    return fn(x.double(), *wide).float()


def computable(*tensors: Tensor) -> list[Tensor]:
    """float16 and bfloat16 tensors as float32 (their range overflows inside the losses, e.g.
    cosh); other tensors unchanged. Losses of half-precision inputs are float32, as under
    ``torch.autocast``."""
    return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors]
