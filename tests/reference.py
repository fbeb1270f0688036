"""Independent high-precision references (mpmath, 50 digits) for the loss tests."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

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


# ----------------------------------------------------------------------------- property sweeps
# References for tests/test_loss_properties.py: plain floats (float64, ±inf past its range) of
# exact values and gradients, evaluated at 100 digits from float64 inputs and cached, since the
# sweeps ask for the same points many times (per dtype, per path, per property).

_HUGE = 10**5  # an exponent past which exp over- or underflows every floating-point format
_WORK_DPS = 40  # digits; ∂ρ/∂α takes more (see _digits)


class NLLRef(NamedTuple):
    """An NLL ρ(x/c) + log c + const and its gradients, with the sizes of its parts."""

    value: float
    size: float  # |ρ| + |log c| + |const|: what a rounding error is relative to
    dx: float
    dc: float
    dc_size: float  # |∂ρ/∂c| + 1/c
    dparam: float  # ∂/∂ν (Student-t) or ∂ρ/∂α (general); NaN where there is none
    rho: float


def _sign(u):
    return mp.mpf(1) if u > 0 else (mp.mpf(-1) if u < 0 else mp.mpf(0))


def _rho_u(u, alpha: float):
    """(ρ(u, α, 1), ∂ρ/∂u, ∂ρ/∂α) as mpf, for any α in [-∞, ∞]; ∂ρ/∂α is NaN at α = 2."""
    z = u * u
    if alpha == 2:
        return z / 2, u, mp.nan
    if alpha == 0:
        log_base = mp.log1p(z / 2)
        dalpha = -log_base / 2 + z / (4 + 2 * z) + log_base**2 / 4  # the α → 0 limit
        return log_base, 2 * u / (z + 2), dalpha
    if alpha == np.inf:
        if z / 2 > _HUGE:
            return mp.inf, _sign(u) * mp.inf, mp.mpf(0)
        e = mp.exp(z / 2)
        return mp.expm1(z / 2), u * e, mp.mpf(0)
    if alpha == -np.inf:
        e = mp.exp(-z / 2) if z / 2 < _HUGE else mp.mpf(0)
        return (-mp.expm1(-z / 2) if z < 2 else 1 - e), u * e, mp.mpf(0)
    a = mp.mpf(alpha)
    s = 1 if alpha > 2 else -1  # d|α-2|/dα
    b = abs(a - 2)
    log_base = mp.log1p(z / b)
    lp = a / 2 * log_base  # log of (1 + z/b)^(α/2)
    if lp > _HUGE:
        return mp.inf, _sign(u) * mp.inf, mp.inf
    power = mp.exp(lp) if lp > -_HUGE else mp.mpf(0)
    em1 = mp.expm1(lp) if lp > -_HUGE else mp.mpf(-1)
    lq = (a / 2 - 1) * log_base
    du = u * (mp.exp(lq) if lq > -_HUGE else mp.mpf(0))
    dlp = log_base / 2 - a / 2 * s * z / (b * (b + z))
    dalpha = (s / a - b / a**2) * em1 + b / a * power * dlp
    return b / a * em1, du, dalpha


def _digits(x: float, alpha: float, c: float) -> int:
    """Working digits for ∂ρ/∂α, whose terms (~z/α) cancel down to ~z³: 40 plus those lost."""
    lost = 0
    if x != 0:  # log10 z, from the floats (no overflow)
        lost += max(0, -int(4 * (math.log10(abs(x)) - math.log10(c))))  # to ~z³
    if math.isfinite(alpha) and alpha != 0:
        lost += max(0, -int(math.log10(abs(alpha))))
    return _WORK_DPS + lost


@functools.cache
def rho_with_grads(x: float, alpha: float, c: float) -> tuple[float, float, float, float]:
    """(ρ, ∂ρ/∂x, ∂ρ/∂c, ∂ρ/∂α) of Barron's ρ(x, α, c); ∂ρ/∂α is NaN at α = 2 (it diverges)."""
    with mp.workdps(_digits(x, alpha, c)):
        cm = mp.mpf(c)
        u = mp.mpf(x) / cm
        value, du, dalpha = _rho_u(u, alpha)
        return float(value), float(du / cm), float(-u * du / cm), float(dalpha)


@functools.cache
def log_cosh_with_grad(t: float, a: float) -> tuple[float, float]:
    """((1/a)·log cosh(a·t), tanh(a·t))."""
    with mp.workdps(_WORK_DPS):
        am = mp.mpf(a)
        y = am * mp.mpf(t)
        ay = abs(y)
        if ay > _HUGE:
            return float((ay - mp.log(2)) / am), float(_sign(y))
        value = mp.log1p(2 * mp.sinh(ay / 2) ** 2) if ay < 40 else ay - mp.log(2)
        if ay >= 40:
            value += mp.log1p(mp.exp(-2 * ay))
        return float(value / am), float(mp.tanh(y))


def _nll(rho, drho_du, u, c, const, dparam=mp.nan) -> NLLRef:
    log_c = mp.log(c)
    drho_dc = -u * drho_du / c
    return NLLRef(
        value=float(rho + log_c + const),
        size=float(abs(rho) + abs(log_c) + abs(const)),
        dx=float(drho_du / c),
        dc=float(drho_dc + 1 / c),
        dc_size=float(abs(drho_dc) + 1 / c),
        dparam=float(dparam),
        rho=float(rho),
    )


@functools.cache
def normal_nll(x: float, c: float) -> NLLRef:
    with mp.workdps(_WORK_DPS):
        cm = mp.mpf(c)
        u = mp.mpf(x) / cm
        return _nll(u * u / 2, u, u, cm, mp.log(2 * mp.pi) / 2)


@functools.cache
def laplace_nll(x: float, c: float) -> NLLRef:
    """∂/∂x is NaN at x = 0 (the kink)."""
    with mp.workdps(_WORK_DPS):
        cm = mp.mpf(c)
        u = mp.mpf(x) / cm
        ref = _nll(abs(u), _sign(u), u, cm, mp.log(2))
        return ref if x != 0 else ref._replace(dx=np.nan)


@functools.cache
def cauchy_nll(x: float, c: float) -> NLLRef:
    with mp.workdps(_WORK_DPS):
        cm = mp.mpf(c)
        u = mp.mpf(x) / cm
        return _nll(mp.log1p(u * u), 2 * u / (1 + u * u), u, cm, mp.log(mp.pi))


@functools.cache
def _student_t_constant(df: float) -> tuple:
    """½ log(νπ) + lgamma(ν/2) - lgamma((ν+1)/2) and its ν-derivative (lgamma(ν/2) ~ ν log ν
    cancels: the digits of ν's magnitude come on top)."""
    with mp.workdps(_WORK_DPS + max(0, int(math.log10(df)))):
        return _student_t_constant_at_working_precision(mp.mpf(df))


def _student_t_constant_at_working_precision(nu) -> tuple:
    const = mp.log(nu * mp.pi) / 2 + mp.loggamma(nu / 2) - mp.loggamma((nu + 1) / 2)
    dconst = 1 / (2 * nu) + (mp.digamma(nu / 2) - mp.digamma((nu + 1) / 2)) / 2
    return const, dconst


@functools.cache
def student_t_nll(x: float, df: float, c: float) -> NLLRef:
    """dparam is ∂/∂ν."""
    with mp.workdps(_WORK_DPS):
        cm, nu = mp.mpf(c), mp.mpf(df)
        u = mp.mpf(x) / cm
        z = u * u
        const, dconst = _student_t_constant(df)
        rho = (nu + 1) / 2 * mp.log1p(z / nu)
        drho_dnu = mp.log1p(z / nu) / 2 - (nu + 1) / 2 * z / (nu * (nu + z))
        return _nll(rho, (nu + 1) * u / (nu + z), u, cm, const, drho_dnu + dconst)


@functools.cache
def general_nll_without_log_z(x: float, alpha: float, c: float) -> NLLRef:
    """ρ(x, α, c) + log c: the general NLL less log Z(α) (whose table holds ~1e-7);
    dparam is ∂ρ/∂α."""
    with mp.workdps(_digits(x, alpha, c)):
        cm = mp.mpf(c)
        u = mp.mpf(x) / cm
        rho, du, dalpha = _rho_u(u, alpha)
        return _nll(rho, du, u, cm, mp.mpf(0), dalpha)


@functools.cache
def log_partition_by_quadrature(alpha: float) -> float:
    """log Z(α) = log ∫ exp(-ρ(x, α, 1)) dx, by mpmath quadrature (to well below 1e-9)."""
    with mp.workdps(25):

        def density(t):
            return mp.exp(-_rho_u(t, alpha)[0])

        return float(mp.log(2 * mp.quad(density, [0, 1, 10, 100, mp.inf])))
