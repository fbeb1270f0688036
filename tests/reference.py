"""Independent high-precision references (mpmath, 50 digits) for the loss tests."""

from __future__ import annotations

import mpmath as mp
import numpy as np

mp.mp.dps = 50


def log_cosh(t: float, a: float) -> float:
    y = mp.mpf(a) * mp.mpf(t)
    return float(mp.log1p(2 * mp.sinh(y / 2) ** 2) / mp.mpf(a))  # = log cosh y, no cancellation


def rho(x: float, alpha: float, c: float) -> float:
    """Barron's ρ(x, α, c) from its definition, with the limits at 0, 2 and ±∞."""
    z = (mp.mpf(x) / mp.mpf(c)) ** 2
    if alpha == 2:
        return float(z / 2)
    if alpha == 0:
        return float(mp.log(z / 2 + 1))
    if alpha == -np.inf:
        return float(1 - mp.exp(-z / 2))
    if alpha == np.inf:
        return float(mp.exp(z / 2) - 1)
    a = mp.mpf(alpha)
    b = abs(a - 2)
    return float(b / a * mp.expm1(a / 2 * mp.log1p(z / b)))


def drho_dalpha(x: float, alpha: float, c: float) -> float:
    """∂ρ/∂α by mpmath's numerical differentiation (at α = 0 through the analytic form)."""
    z = (mp.mpf(x) / mp.mpf(c)) ** 2

    def f(a):
        b = abs(a - 2)
        if a == 0:
            return mp.log(z / 2 + 1)
        return b / a * mp.expm1(a / 2 * mp.log1p(z / b))

    return float(mp.diff(f, mp.mpf(alpha)))


def vectorize(fn, *arrays) -> np.ndarray:
    return np.vectorize(fn, otypes=[np.float64])(*arrays)
