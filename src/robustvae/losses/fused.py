"""Reduced losses evaluated as one fused kernel: torch.compile on large inputs, eager otherwise.

Eager PyTorch runs each op of a loss as its own pass over memory; a log-cosh or general loss
then costs 10-20× a squared error. Compiled, the forward pass and its backward each become
one loop (see BENCHMARKS.md). Compiling costs 2-20 s on the first call, which a short run never
earns back (5 epochs of a small folder run took 24 s compiled against 10 s eager). So, by
default (``ROBUSTVAE_COMPILE=auto``), each kernel runs eagerly until it has spent
``COMPILE_AFTER_SECONDS`` in eager calls, about what compiling costs, and compiles then: a run
never pays much more than twice the better of the two choices. ``ROBUSTVAE_COMPILE=1`` (or
``set_compile(True)``) compiles at the first call, ``0`` (``set_compile(False)``) never.
Inputs under ``MIN_NUMEL`` elements and reductions of ``'none'`` always run eagerly. If
compilation fails (no C compiler, an unsupported platform), robustvae warns once and stays
eager.
"""

from __future__ import annotations

import os
import sys
import time
import types
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from robustvae.losses.arguments import reduce

MIN_NUMEL = 1 << 15
#: Eager seconds a kernel spends before ``auto`` compiles it: about one cold compile here.
#: Only the forward pass is timed, so the backward's share makes compiling somewhat later.
COMPILE_AFTER_SECONDS = 10.0

_MODES = {"0": "never", "false": "never", "no": "never", "1": "always", "true": "always"}
_MODES.update({"yes": "always", "auto": "auto", "": "auto"})


def _mode_from_environment() -> str:
    value = os.environ.get("ROBUSTVAE_COMPILE", "auto").strip().lower()
    if value not in _MODES:
        raise ValueError(f"ROBUSTVAE_COMPILE must be auto, 1 or 0, got {value!r}")
    return _MODES[value]


_state = {"mode": _mode_from_environment()}


def set_compile(enabled: bool | str) -> None:
    """Fused (torch.compile) evaluation of reduced losses for this process: True compiles at
    the first call, False never, ``"auto"`` after ``COMPILE_AFTER_SECONDS`` of eager calls."""
    if enabled == "auto":
        _state["mode"] = "auto"
    elif isinstance(enabled, bool):
        _state["mode"] = "always" if enabled else "never"
    else:
        raise ValueError(f"set_compile takes True, False or 'auto', got {enabled!r}")


def compile_enabled() -> bool:
    return _state["mode"] != "never"


class Fused:
    """``fn(*args)``, compiled once per process for inputs of ``MIN_NUMEL`` elements or more
    (the first argument's) when the mode says so, eager otherwise or when compiling fails."""

    def __init__(
        self,
        fn: Callable[..., object],
        name: str | None = None,
        eager: Callable[..., object] | None = None,
    ):
        """``eager``: what runs when not compiled (by default ``fn``), e.g. ``fn`` in chunks."""
        self.fn = fn
        self.eager = eager or fn
        self.name = name or getattr(fn, "__name__", "loss")
        self._compiled: Callable[..., object] | None = None
        self.eager_seconds = 0.0

    def __call__(self, *args: Tensor):
        mode = _state["mode"]
        if torch.compiler.is_compiling():
            return self.fn(*args)
        if mode == "never" or args[0].numel() < MIN_NUMEL:
            return self.eager(*args)
        if self._compiled is None and mode == "auto":
            if self.eager_seconds < COMPILE_AFTER_SECONDS:
                started = time.perf_counter()
                result = self.eager(*args)
                self.eager_seconds += time.perf_counter() - started
                return result
        try:
            return self._compiled_fn()(*args)
        except Exception as error:  # noqa: BLE001 - any compiler failure falls back to eager
            result = self.eager(*args)  # a genuine input error raises here instead
            _state["mode"] = "never"
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
            print(
                f"robustvae: compiling the loss kernel {name} (torch.compile: 2-20 s, once per "
                "process; ROBUSTVAE_COMPILE=0 stays eager)",
                file=sys.stderr,
                flush=True,
            )
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
