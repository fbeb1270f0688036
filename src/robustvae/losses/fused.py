"""Reduced losses evaluated as one fused kernel: torch.compile on large inputs, eager otherwise.

Eager PyTorch runs each op of a loss as its own pass over memory; a log-cosh or general loss
then costs 10-20× a squared error. Compiled, the forward pass and its backward each become
one loop (see BENCHMARKS.md). Compiling costs seconds on the first call, so inputs smaller
than ``MIN_NUMEL`` elements, reductions of ``'none'``, and processes where compilation is off
(``ROBUSTVAE_COMPILE=0`` or ``set_compile(False)``) run eagerly. If compilation fails (no C
compiler, an unsupported platform), robustvae warns once and stays eager.
"""

from __future__ import annotations

import os
import types
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from robustvae.losses.functional import reduce

MIN_NUMEL = 1 << 15

_state = {"enabled": os.environ.get("ROBUSTVAE_COMPILE", "1").lower() not in ("0", "false", "no")}


def set_compile(enabled: bool) -> None:
    """Turn fused (torch.compile) evaluation of reduced losses on or off for this process."""
    _state["enabled"] = bool(enabled)


def compile_enabled() -> bool:
    return _state["enabled"]


class Fused:
    """``fn(*args)``, compiled once per process for inputs of ``MIN_NUMEL`` elements or more
    (the first argument's), eager otherwise or when compilation is off or fails."""

    def __init__(self, fn: Callable[..., object], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "loss")
        self._compiled: Callable[..., object] | None = None

    def __call__(self, *args: Tensor):
        if not _state["enabled"] or args[0].numel() < MIN_NUMEL or torch.compiler.is_compiling():
            return self.fn(*args)
        try:
            return self._compiled_fn()(*args)
        except Exception as error:  # noqa: BLE001 - any compiler failure falls back to eager
            result = self.fn(*args)  # a genuine input error raises here instead
            _state["enabled"] = False
            warnings.warn(
                f"torch.compile failed ({type(error).__name__}: {error}); robustvae losses "
                "run eagerly (slower) from now on in this process",
                RuntimeWarning,
                stacklevel=2,
            )
            return result

    def _compiled_fn(self) -> Callable[..., object]:
        if self._compiled is None:
            # Dynamo keys its cache and recompile limit (8) on the code object: every kernel
            # gets its own, or a few losses would evict each other into eager mode.
            fn = self.fn
            name = self.name.replace("<", "").replace(">", "")

            def kernel(*args):
                return fn(*args)

            code = kernel.__code__.replace(co_name=name)
            fresh = types.FunctionType(code, kernel.__globals__, name, None, kernel.__closure__)
            self._compiled = torch.compile(fresh)
        return self._compiled


class ReducedLoss:
    """``values(*args)`` summed or averaged, as one ``Fused`` kernel per reduction."""

    def __init__(self, values: Callable[..., Tensor]):
        self.values = values
        self._fused: dict[str, Fused] = {}

    def eager(self, reduction: str, *args: Tensor) -> Tensor:
        return reduce(self.values(*args), reduction)

    def __call__(self, reduction: str, *args: Tensor) -> Tensor:
        if reduction == "none":
            return self.values(*args)
        if reduction not in self._fused:
            values = self.values

            def reduced(*args: Tensor) -> Tensor:
                return reduce(values(*args), reduction)

            name = f"{getattr(values, '__name__', 'loss')}_{reduction}"
            self._fused[reduction] = Fused(reduced, name)
        return self._fused[reduction](*args)
