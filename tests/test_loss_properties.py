"""Property tests of the losses' numerical contract.

1. values match mpmath (from the dtype-rounded inputs) to rtol = 64·eps·(1 + |ln|true||), and are
   +inf where the true value exceeds the dtype's max;
2. values are finite wherever the true ones are below max/4, gradients wherever the true
   gradient is (even where the value overflows); gradients never NaN;
3. float64 gradients in x and c match to 1e-8 (α: 1e-6), float32 ones to 1e-3, or to within
   64·eps·|ρ| per natural unit of the parameter (|x|, c, min(1, |α - 2|)); gradcheck;
4. ρ keeps its shape (bounded for α < 0, monotone in |x| and c, gradient signs);
5. special α equal their closed forms, and nearby α approach them;
6. the registry's modules are finite over the same sweep;
7. every registry loss is finite in float16, bfloat16 and under CPU autocast;
8. invalid parameters raise ValueError, naming the parameter, at construction.

The sweep spans |x| ∈ {0} ∪ [1e-30, 1e30] ∪ {max/2}, c ∈ [1e-30, 1e30] and the parameters' whole
valid ranges; its references are computed once per module (``reference.py`` caches them).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
import reference as ref
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from torch import nn

from robustvae.losses import LOSSES, get_loss, log_partition, loss_parameters
from robustvae.losses import functional as LF

INF = math.inf
NAN = math.nan
DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["float32", "float64"]
ATOL = {torch.float32: 1e-30, torch.float64: 1e-300}
GRAD_RTOL = {torch.float32: (1e-3, 1e-3), torch.float64: (1e-8, 1e-6)}  # (x and c, α)
C_LO, C_HI = 1e-30, 1e30  # the valid scales (and log-cosh a)

X_MAGNITUDES = sorted([10.0**k for k in range(-30, 31, 3)] + [0.3, 0.7, 1.5, 3.0, 7.0, 40.0])
SCALES = [1e-30, 1e-20, 1e-9, 1e-3, 0.3, 1.0, 7.0, 1e4, 1e12, 1e30]
ALPHAS = [
    -INF, -1e25, -1e6, -10.0, -2.0, -1.0, -0.5, -1e-6, -1e-8, -1e-19, 0.0, 1e-8, 0.5, 1.0, 1.5,
    2 - 1e-8, 2.0, 2 + 1e-8, 3.0, 8.0, 50.0, 1e25, INF,
]  # fmt: skip
NLL_ALPHAS = [0.0, 1e-8, 0.5, 1.0, 2 - 1e-8, 2.0, 2 + 1e-8, 3.0, 8.0]
COSH_A = [1e-30, 1e-10, 1e-3, 1.0, 100.0, 1e10, 1e30]
DFS = [1e-20, 1e-3, 0.5, 1.0, 3.0, 30.0, 1e6, 1e16, 1e30]

# No shrinking: it multiplies the run time of a failing test many times over (mpmath
# references); the falsifying example printed is the one generated.
SETTINGS = dict(deadline=None, derandomize=True, phases=(Phase.explicit, Phase.generate))


@pytest.fixture(autouse=True)
def _quiet_numpy():
    """inf - inf and the like are expected in the comparisons: they fail them, silently."""
    with np.errstate(all="ignore"):
        yield


def fmax(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).max


def eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def rounded(values, dtype: torch.dtype) -> np.ndarray:
    """The values as ``dtype`` holds them, in float64."""
    return torch.tensor(np.asarray(values, dtype=np.float64), dtype=dtype).double().numpy()


def inward(value: float, dtype: torch.dtype) -> float:
    """``value`` in ``dtype``, rounded towards 1 (float32 rounds 1e30 up, out of the range)."""
    r = torch.tensor(value, dtype=torch.float64).to(dtype)
    if 0 < value < INF and abs(math.log(r.double().item())) > abs(math.log(value)):
        r = torch.nextafter(r, torch.ones_like(r))
    return r.item()


def contract_tolerance(size, dtype: torch.dtype):
    """64·eps·(1 + |ln size|)·size + atol: contract 1's allowance for a value of this size."""
    size = np.abs(np.asarray(size, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        rtol = 64 * eps(dtype) * (1 + np.abs(np.log(size)))
        tol = np.where(size > 0, rtol * size, 0.0)
    return tol + ATOL[dtype]


def grad_tolerance(size, dtype: torch.dtype, name: str, value_size=0.0, inputs=None):
    """rtol·|∂ρ/∂p| + atol + 64·eps·|ρ|/h(p): relative, or within rounding of the value per
    natural unit h of the parameter: |p| for x and c (a change of log p), |α - 2| for α (the
    formula's scale near α = 2, 1 far from it)."""
    rtol = GRAD_RTOL[dtype][1 if name in ("alpha",) else 0]
    rounding = 64 * eps(dtype) * np.abs(np.asarray(value_size, dtype=np.float64))
    if inputs is None or name not in inputs:
        return rtol * np.abs(size) + ATOL[dtype]
    p = np.abs(inputs[name])
    if name == "alpha":
        unit = np.minimum(1.0, np.abs(inputs[name] - 2.0))
    else:
        unit = np.where(p > 0, p, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return rtol * np.abs(size) + ATOL[dtype] + np.where(unit > 0, rounding / unit, np.inf)


def describe(point: dict) -> str:
    return ", ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items()
    )


# ----------------------------------------------------------------------------- the sweep


@dataclass
class Sweep:
    """One function evaluated on a grid: inputs as the dtype holds them (float64 arrays), the
    computed values and gradients, the references and the sizes their tolerances scale with."""

    dtype: torch.dtype
    inputs: dict[str, np.ndarray]
    got: np.ndarray
    want: np.ndarray
    size: np.ndarray
    grads: dict[str, np.ndarray]
    want_grads: dict[str, np.ndarray]
    grad_sizes: dict[str, np.ndarray]
    accurate: tuple[str, ...]  # the gradients held to contract 3 (the others: finiteness only)

    def failures(self, bad: np.ndarray, got: np.ndarray, want: np.ndarray, what: str) -> str:
        """A message listing the failing points, smallest |x| first (then smallest parameters),
        and which values of each parameter fail."""
        idx = np.flatnonzero(bad)
        keys = [np.abs(self.inputs[k][idx]) for k in reversed(list(self.inputs))]
        order = idx[np.lexsort(keys)]
        dtype = str(self.dtype).removeprefix("torch.")
        lines = [f"{what} ({dtype}): {idx.size} of {bad.size} points fail, smallest |x| first:"]
        for i in order[:5]:
            point = {k: float(v[i]) for k, v in self.inputs.items()}
            lines.append(f"  {describe(point)}: got {float(got[i])!r}, want {float(want[i])!r}")
        for k, v in self.inputs.items():
            if k != "x":
                lines.append(f"  failing {k}: {sorted(set(v[idx].tolist()))[:30]}")
        return "\n".join(lines)


def _run(call, dtype, columns: dict, fixed: dict, differentiate: tuple[str, ...]):
    leaves = {
        k: torch.tensor(v, dtype=dtype, requires_grad=k in differentiate)
        for k, v in columns.items()
    }
    out = call(**leaves, **fixed)
    grads = torch.autograd.grad(
        out, [leaves[k] for k in differentiate], torch.ones_like(out), allow_unused=True
    )
    n = out.numel()
    return out.detach().double().numpy(), {
        k: np.zeros(n) if g is None else g.double().numpy()
        for k, g in zip(differentiate, grads, strict=True)
    }


POSITIVE = ("c", "a", "df")  # parameters whose range ends at 1e30, which float32 rounds up


def build(
    dtype,
    axes: dict,
    numbers: tuple,
    call,
    reference,
    accurate=("x", "c", "alpha"),
    constant=(),
):
    """Evaluate ``call(**inputs)`` over the grid of ``axes`` (rounded to ``dtype``).

    Axes named in ``numbers`` go in as Python numbers, one call per combination; the others as
    tensors, which require grad unless named in ``constant``. ``reference(**point)`` returns
    (value, size, {name: (gradient, size)}).
    """
    axes = {
        k: list(
            dict.fromkeys(
                rounded([inward(a, dtype) if k in POSITIVE else a for a in v], dtype).tolist()
            )
        )
        for k, v in axes.items()
    }
    tensor_names = [k for k in axes if k not in numbers]
    differentiate = tuple(k for k in tensor_names if k not in constant)
    mesh = np.meshgrid(*(axes[k] for k in tensor_names), indexing="ij")
    columns = {k: m.ravel() for k, m in zip(tensor_names, mesh, strict=True)}
    got, grads, inputs = [], {k: [] for k in differentiate}, {k: [] for k in axes}
    for combo in itertools.product(*(axes[k] for k in numbers)):
        fixed = dict(zip(numbers, combo, strict=True))
        value, grad = _run(call, dtype, columns, fixed, differentiate)
        got.append(value)
        for k in differentiate:
            grads[k].append(grad[k])
        for k in axes:
            inputs[k].append(columns[k] if k in columns else np.full(value.size, fixed[k]))
    inputs = {k: np.concatenate(v) for k, v in inputs.items()}
    rows = zip(*(inputs[k].tolist() for k in inputs), strict=True)
    points = [dict(zip(inputs, p, strict=True)) for p in rows]
    refs = [reference(**p) for p in points]
    return Sweep(
        dtype=dtype,
        inputs=inputs,
        got=np.concatenate(got),
        want=np.array([r[0] for r in refs]),
        size=np.array([r[1] for r in refs]),
        grads={k: np.concatenate(v) for k, v in grads.items()},
        want_grads={k: np.array([r[2][k][0] for r in refs]) for k in differentiate},
        grad_sizes={k: np.array([r[2][k][1] for r in refs]) for k in differentiate},
        accurate=tuple(k for k in differentiate if k in accurate),
    )


def x_axis(dtype) -> list[float]:
    half_max = fmax(dtype) / 2
    return [-half_max, *[-m for m in reversed(X_MAGNITUDES)], 0.0, *X_MAGNITUDES, half_max]


# references: (value, size, {input: (gradient, size)})


def _rho_ref(x, alpha, c):
    value, dx, dc, dalpha = ref.rho_with_grads(x, alpha, c)
    return value, value, {"x": (dx, dx), "c": (dc, dc), "alpha": (dalpha, dalpha)}


def _nll_ref(r: ref.NLLRef, param: str | None = None):
    grads = {"x": (r.dx, r.dx), "c": (r.dc, r.dc_size)}
    if param:
        grads[param] = (r.dparam, r.dparam)
    return r.value, r.size, grads


def _l2_ref(x):
    return x * x, x * x, {"x": (2 * x, 2 * x)}


def _l1_ref(x):
    return abs(x), abs(x), {"x": (math.copysign(1, x) if x else NAN, 1.0)}


def _log_cosh_ref(x, a):
    value, dx = ref.log_cosh_with_grad(x, a)
    return value, value, {"x": (dx, dx)}


def _general(x, alpha, c):
    return LF.general(x, alpha, c)


def _general_one_x_per_call(x, alpha, c):
    # Each residual alone: the eager one-pass form decides per tensor (from max |x|), so a
    # sweep in one tensor that holds max/2 never reaches it.
    return torch.stack([LF.general(element, alpha, c) for element in x.unbind()])


def _general_two_x_per_call(x, alpha, c):
    # As above, for tensor α and c without gradients: two elements a call (one would be read
    # as numbers), so the one-pass form with per-element constants is reached at every size.
    pieces = zip(x.split(2), alpha.split(2), c.split(2), strict=True)
    return torch.cat([LF.general(*piece) for piece in pieces])


def _one_x_per_call(fn):
    def call(x, **params):
        return torch.cat([fn(element, **params) for element in x.split(1)])

    return call


def _general_nll(x, alpha, c):
    return LF.general_nll(x, alpha, c)


def _student_t(x, df, c):
    return LF.student_t_nll(x, df, c)


def _zero_target(fn):
    def call(x, **params):
        return fn(x, torch.zeros_like(x), reduction="none", **params)

    return call


_NLLS = {
    "normal_nll": (LF.normal_nll, ref.normal_nll),
    "laplace_nll": (LF.laplace_nll, ref.laplace_nll),
    "cauchy_nll": (LF.cauchy_nll, ref.cauchy_nll),
}


def _sweep_nll(dtype, name, numbers):
    fn, reference = _NLLS[name]
    return build(
        dtype,
        {"x": x_axis(dtype), "c": SCALES},
        numbers,
        lambda x, c: fn(x, c),
        lambda x, c: _nll_ref(reference(x, c)),
    )


def _sweep_general_nll(dtype, numbers):
    s = build(
        dtype,
        {"x": x_axis(dtype), "alpha": NLL_ALPHAS, "c": SCALES},
        numbers,
        _general_nll,
        lambda x, alpha, c: _nll_ref(ref.general_nll_without_log_z(x, alpha, c), "alpha"),
        accurate=("x", "c"),  # ∂/∂α includes the tabulated log Z's slope: finiteness only
    )
    # the reference leaves out log Z(α), tabulated to ~1e-7 (checked against quadrature below)
    log_z = log_partition(torch.tensor(s.inputs["alpha"], dtype=torch.float64)).numpy()
    s.got = s.got - log_z
    s.size = s.size + np.abs(log_z)
    return s


SWEEPS = {
    "l2": lambda d: build(d, {"x": x_axis(d)}, (), _zero_target(LF.squared_l2), _l2_ref),
    "l1": lambda d: build(d, {"x": x_axis(d)}, (), _zero_target(LF.l1), _l1_ref),
    "log_cosh": lambda d: build(
        d, {"x": x_axis(d), "a": COSH_A}, ("a",), _zero_target(LF.log_cosh), _log_cosh_ref
    ),
    "general[alpha tensor]": lambda d: build(
        d, {"x": x_axis(d), "alpha": ALPHAS, "c": SCALES}, (), _general, _rho_ref
    ),
    "general[alpha number]": lambda d: build(
        d, {"x": x_axis(d), "alpha": ALPHAS, "c": SCALES}, ("alpha",), _general, _rho_ref
    ),
    "general[alpha, scale numbers]": lambda d: build(
        d, {"x": x_axis(d), "alpha": ALPHAS, "c": SCALES}, ("alpha", "c"), _general, _rho_ref
    ),
    "general[alpha, scale tensors without gradients]": lambda d: build(
        d,
        {"x": x_axis(d), "alpha": ALPHAS, "c": SCALES},
        (),
        _general,
        _rho_ref,
        constant=("alpha", "c"),  # computed in x's dtype: no float64 headroom
    ),
    "general[alpha, scale tensors without gradients, two x per call]": lambda d: build(
        d,
        {"x": x_axis(d), "alpha": ALPHAS, "c": SCALES},
        (),
        _general_two_x_per_call,
        _rho_ref,
        constant=("alpha", "c"),
    ),
    "general[alpha, scale numbers, one x per call]": lambda d: build(
        d,
        {"x": x_axis(d), "alpha": ALPHAS, "c": SCALES},
        ("alpha", "c"),
        _general_one_x_per_call,
        _rho_ref,
    ),
    "general_nll[alpha tensor]": lambda d: _sweep_general_nll(d, ()),
    "general_nll[alpha number]": lambda d: _sweep_general_nll(d, ("alpha",)),
    **{f"{n}": functools.partial(_sweep_nll, name=n, numbers=()) for n in _NLLS},
    **{f"{n}[scale number]": functools.partial(_sweep_nll, name=n, numbers=("c",)) for n in _NLLS},
    "student_t_nll": lambda d: build(
        d,
        {"x": x_axis(d), "df": DFS, "c": SCALES},
        (),
        _student_t,
        lambda x, df, c: _nll_ref(ref.student_t_nll(x, df, c), "df"),
        accurate=("x", "c"),  # ∂/∂ν: finiteness only (not in contract 3)
    ),
    "cauchy_nll[scale number, one x per call]": lambda d: build(
        d,
        {"x": x_axis(d), "c": SCALES},
        ("c",),
        _one_x_per_call(lambda x, c: LF.cauchy_nll(x, c)),
        lambda x, c: _nll_ref(ref.cauchy_nll(x, c)),
    ),
    "student_t_nll[df, scale numbers, one x per call]": lambda d: build(
        d,
        {"x": x_axis(d), "df": DFS, "c": SCALES},
        ("df", "c"),
        _one_x_per_call(_student_t),
        lambda x, df, c: _nll_ref(ref.student_t_nll(x, df, c), "df"),
    ),
    "student_t_nll[df, scale numbers]": lambda d: build(
        d,
        {"x": x_axis(d), "df": DFS, "c": SCALES},
        ("df", "c"),
        _student_t,
        lambda x, df, c: _nll_ref(ref.student_t_nll(x, df, c), "df"),
    ),
}
RHO_SWEEPS = [
    "general[alpha tensor]",
    "general[alpha number]",
    "general[alpha, scale numbers]",
    "general[alpha, scale tensors without gradients]",
    "general[alpha, scale tensors without gradients, two x per call]",
    "general[alpha, scale numbers, one x per call]",
]


@functools.cache
def sweep(label: str, dtype: torch.dtype) -> Sweep:
    return SWEEPS[label](dtype)


#: Sweeps of thousands of separate calls: in ``make test-slow`` (CI runs both).
SLOW_SWEEPS = {"general[alpha, scale tensors without gradients, two x per call]"}


def sweep_param(label: str, dtype: torch.dtype):
    marks = [pytest.mark.slow] if label in SLOW_SWEEPS else []
    return pytest.param(label, dtype, id=f"{label}-{str(dtype)[6:]}", marks=marks)


sweep_cases = pytest.mark.parametrize(
    "label, dtype", [sweep_param(k, d) for k in SWEEPS for d in DTYPES]
)


# ----------------------------------------------------------------------------- contracts 1-3


@sweep_cases
def test_value_matches_mpmath(label, dtype):
    s = sweep(label, dtype)
    big = fmax(dtype)
    tol = contract_tolerance(s.size, dtype)
    within = s.want <= big
    close = np.abs(s.got - s.want) <= tol
    rounds_up = (s.got == INF) & (s.want + tol > big)  # a true value at the edge may round up
    bad = within & ~(close | rounds_up)
    assert not bad.any(), s.failures(bad, s.got, s.want, f"{label} value vs mpmath")


@sweep_cases
def test_value_is_plus_inf_past_dtype_max(label, dtype):
    s = sweep(label, dtype)
    bad = (s.want > fmax(dtype)) & (s.got != INF)
    assert not bad.any(), s.failures(bad, s.got, s.want, f"{label} overflowing value")


@sweep_cases
def test_value_is_finite_where_true_value_is_below_max_over_4(label, dtype):
    s = sweep(label, dtype)
    bad = (np.abs(s.want) <= fmax(dtype) / 4) & ~np.isfinite(s.got)
    assert not bad.any(), s.failures(bad, s.got, s.want, f"{label} value not finite")


@sweep_cases
def test_gradients_are_never_nan(label, dtype):
    s = sweep(label, dtype)
    for name, grad in s.grads.items():
        bad = np.isnan(grad)
        assert not bad.any(), s.failures(bad, grad, s.want_grads[name], f"{label} d/d{name} NaN")


def representable_gradient(s: Sweep, name: str) -> np.ndarray:
    """Where contract 2 asks for a finite gradient: the true gradient below max/4, also where
    the value itself overflows (α = 1, c = 1e-30, x = −1e25 in float32: ρ = inf, ∂ρ/∂x = −1e30)."""
    quarter = fmax(s.dtype) / 4
    return np.abs(s.want_grads[name]) < quarter


@sweep_cases
def test_gradients_are_finite_where_true_gradients_are_below_max_over_4(label, dtype):
    s = sweep(label, dtype)
    for name, grad in s.grads.items():
        bad = representable_gradient(s, name) & ~np.isfinite(grad)
        assert not bad.any(), s.failures(
            bad, grad, s.want_grads[name], f"{label} d/d{name} not finite"
        )


@sweep_cases
def test_gradients_match_mpmath(label, dtype):
    s = sweep(label, dtype)
    messages = []
    for name in s.accurate:
        grad, want = s.grads[name], s.want_grads[name]
        tol = grad_tolerance(s.grad_sizes[name], dtype, name, s.size, s.inputs)
        bad = representable_gradient(s, name) & ~(np.abs(grad - want) <= tol)
        if bad.any():
            messages.append(s.failures(bad, grad, want, f"{label} d/d{name} vs mpmath"))
    assert not messages, "\n".join(messages)


@pytest.mark.parametrize("alpha", [0.0, 1e-8, 0.5, 1.0, 1.5, 2 - 1e-8, 2 + 1e-8, 3.0, 5.5, 8.0])
def test_log_partition_matches_mpmath_quadrature(alpha):
    got = log_partition(torch.tensor(alpha, dtype=torch.float64)).item()
    assert abs(got - ref.log_partition_by_quadrature(alpha)) <= 1e-6


# gradcheck on moderate ranges (contract 3)

moderate_x = st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3)
moderate_c = st.floats(-2, 2).map(lambda e: 10.0**e)
moderate_alpha = st.floats(-10, 10).filter(lambda a: abs(a - 2) > 0.05)  # ∂ρ/∂α diverges at 2


def t64(values, requires_grad=True):
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


@settings(max_examples=60, **SETTINGS)
@given(x=moderate_x, alpha=moderate_alpha, c=moderate_c)
def test_general_gradcheck_in_x_alpha_and_scale(x, alpha, c):
    inputs = (t64(x), t64([alpha] * 3), t64([c] * 3))
    assert torch.autograd.gradcheck(LF.general, inputs)
    assert torch.autograd.gradcheck(lambda u, s: LF.general(u, alpha, s), (inputs[0], inputs[2]))


@settings(max_examples=40, **SETTINGS)
@given(
    x=moderate_x,
    alpha=st.floats(0.05, 7.95).filter(lambda a: abs(a - 2) > 0.05),
    c=moderate_c,
    df=st.floats(-0.3, 2).map(lambda e: 10.0**e),
)
def test_nll_gradcheck_in_all_parameters(x, alpha, c, df):
    xs, cs = t64(x), t64([c] * 3)
    assert torch.autograd.gradcheck(LF.general_nll, (xs, t64([alpha] * 3), cs))
    assert torch.autograd.gradcheck(LF.normal_nll, (xs, cs))
    assert torch.autograd.gradcheck(LF.cauchy_nll, (xs, cs))
    assert torch.autograd.gradcheck(LF.student_t_nll, (xs, t64([df] * 3), cs))
    away = t64([v if abs(v) > 1e-3 else 1.0 for v in x])  # off the kink at 0
    assert torch.autograd.gradcheck(LF.laplace_nll, (away, cs))


@settings(max_examples=40, **SETTINGS)
@given(x=moderate_x, a=moderate_c)
def test_log_cosh_gradcheck(x, a):
    xs, target = t64(x), t64([0.1, -0.2, 0.3])
    assert torch.autograd.gradcheck(lambda u, v: LF.log_cosh(u, v, a, "none"), (xs, target))


# contract 2 over random points: gradients never NaN anywhere in the valid domain


def any_finite(dtype):
    return st.floats(
        allow_nan=False, allow_infinity=False, width=32 if dtype == torch.float32 else 64
    )


log_uniform_c = st.floats(-30, 30).map(lambda e: 10.0**e)
any_alpha = st.one_of(
    st.sampled_from([-INF, -2.0, 0.0, 1.0, 2.0, INF]),
    st.floats(-20, 20),
    st.floats(allow_nan=False),
)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_gradients_are_never_nan_at_random_points(dtype, data):
    x = data.draw(st.lists(any_finite(dtype), min_size=1, max_size=4))
    c = inward(data.draw(log_uniform_c), dtype)
    alpha = float(rounded([data.draw(any_alpha)], dtype)[0])
    alpha_nll = data.draw(st.floats(0, 8))
    df = inward(data.draw(st.floats(-30, 30).map(lambda e: 10.0**e)), dtype)
    calls = {
        "general[alpha tensor]": lambda u, s: LF.general(u, torch.full_like(u, alpha), s),
        "general[alpha number]": lambda u, s: LF.general(u, alpha, s),
        "general_nll": lambda u, s: LF.general_nll(u, torch.full_like(u, alpha_nll), s),
        "normal_nll": LF.normal_nll,
        "laplace_nll": LF.laplace_nll,
        "cauchy_nll": LF.cauchy_nll,
        "student_t_nll": lambda u, s: LF.student_t_nll(u, torch.full_like(u, df), s),
    }
    for name, call in calls.items():
        u = torch.tensor(x, dtype=dtype, requires_grad=True)
        s = torch.full_like(u, c).requires_grad_(True)
        out = call(u, s)
        for g in torch.autograd.grad(out.sum(), [u, s]):
            assert not torch.isnan(g).any(), (name, x, c, alpha, alpha_nll, df, g)


# ----------------------------------------------------------------------------- contract 4: shape


def rho_sweep_cases():
    return pytest.mark.parametrize(
        "label, dtype",
        [sweep_param(k, d) for k in RHO_SWEEPS for d in DTYPES],
    )


@rho_sweep_cases()
def test_rho_is_bounded_for_negative_alpha(label, dtype):
    s = sweep(label, dtype)
    alpha = s.inputs["alpha"]
    negative = alpha < 0
    with np.errstate(invalid="ignore"):
        bound = np.where(np.isinf(alpha), 1.0, np.abs(alpha - 2) / np.abs(alpha))
    exact_bound = np.array(
        [
            float((Fraction(2) - Fraction(a)) / -Fraction(a)) if n and math.isfinite(a) else b
            for a, n, b in zip(alpha.tolist(), negative.tolist(), bound.tolist(), strict=True)
        ]
    )
    if label.startswith("general"):  # never above, not even by rounding (Barron's test)
        bad = negative & ~(s.got <= exact_bound)
    else:
        bad = negative & ~(s.got <= bound * (1 + 4 * eps(dtype)))
    assert not bad.any(), s.failures(bad, s.got, bound, f"{label} ρ above |α-2|/|α|")


def _consecutive_pairs(s: Sweep, along: str):
    """Index pairs (i, j) of neighbours along ``along`` (|x| or c), the other inputs equal."""
    others = [s.inputs[k] for k in s.inputs if k != along]
    key = np.abs(s.inputs["x"]) if along == "x" else s.inputs[along]
    order = np.lexsort((key, *others))
    i, j = order[:-1], order[1:]
    same = np.ones(i.size, dtype=bool)
    for v in others:
        same &= v[i] == v[j]
    return i[same], j[same]


def _monotone_failures(s: Sweep, lo, hi, label, what):
    """Pairs where ρ[lo] ≤ ρ[hi]·(1 + 4 eps) + atol fails."""
    got = s.got
    bad_pairs = ~(got[lo] <= got[hi] * (1 + 4 * eps(s.dtype)) + ATOL[s.dtype])
    bad = np.zeros(got.size, dtype=bool)
    bad[lo[bad_pairs]] = True
    partner = np.full(got.size, np.nan)
    partner[lo[bad_pairs]] = got[hi[bad_pairs]]
    return bad, s.failures(bad, got, partner, f"{label} {what} (want: the neighbour's ρ)")


@rho_sweep_cases()
def test_rho_is_nondecreasing_in_abs_x(label, dtype):
    s = sweep(label, dtype)
    i, j = _consecutive_pairs(s, "x")  # |x_i| ≤ |x_j|
    bad, message = _monotone_failures(s, i, j, label, "ρ decreases as |x| grows")
    assert not bad.any(), message


@rho_sweep_cases()
def test_rho_is_nonincreasing_in_scale(label, dtype):
    s = sweep(label, dtype)
    i, j = _consecutive_pairs(s, "c")  # c_i < c_j: ρ_j ≤ ρ_i
    bad, message = _monotone_failures(s, j, i, label, "ρ grows with c")
    assert not bad.any(), message


@pytest.mark.parametrize("label", ["general[alpha tensor]", "general[alpha number]"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_rho_scale_gradient_is_nonpositive(label, dtype):
    s = sweep(label, dtype)
    bad = s.grads["c"] > 0
    assert not bad.any(), s.failures(bad, s.grads["c"], s.want_grads["c"], "∂ρ/∂c > 0")


@pytest.mark.parametrize("label", ["general[alpha tensor]", "general[alpha number]"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_rho_x_gradient_has_the_sign_of_x(label, dtype):
    s = sweep(label, dtype)
    g = s.grads["x"]
    bad = ~((np.sign(g) == np.sign(s.inputs["x"])) | (g == 0))
    assert not bad.any(), s.failures(bad, g, s.want_grads["x"], "sign(∂ρ/∂x) != sign(x)")


signed_x = st.one_of(
    st.just(0.0),
    st.builds(lambda sign, e: sign * 10.0**e, st.sampled_from([-1.0, 1.0]), st.floats(-30, 30)),
)


def _alpha_arg(alpha, dtype, as_tensor, like):
    """α as the dtype holds it: a Python number, or a tensor like ``like``."""
    a = float(rounded([alpha], dtype)[0])
    return torch.full_like(like, a) if as_tensor else a


@pytest.mark.parametrize("as_tensor", [False, True], ids=["alpha number", "alpha tensor"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@settings(max_examples=120, **SETTINGS)
@given(x1=signed_x, x2=signed_x, c1=log_uniform_c, c2=log_uniform_c, alpha=any_alpha)
def test_rho_shape_at_random_points(dtype, as_tensor, x1, x2, c1, c2, alpha):
    e, atol = eps(dtype), ATOL[dtype]
    # monotone in |x|
    lo, hi = sorted([abs(x1), abs(x2)])
    x = torch.tensor([math.copysign(lo, x1), math.copysign(hi, x2)], dtype=dtype)
    c = inward(c1, dtype)
    rho = LF.general(x, _alpha_arg(alpha, dtype, as_tensor, x), c).double()
    assert rho[0] <= rho[1] * (1 + 4 * e) + atol, (rho, x, c, alpha)
    a = float(rounded([alpha], dtype)[0])
    if a < 0:
        bound = 1.0 if a == -INF else abs(a - 2) / abs(a)
        assert (rho <= bound * (1 + 4 * e)).all(), (rho, bound)
    # monotone in c, and the signs of the gradients
    cs = torch.tensor(sorted([inward(c1, dtype), inward(c2, dtype)]), dtype=dtype)
    cs.requires_grad_(True)
    xs = torch.full_like(cs, x1).requires_grad_(True)
    rho = LF.general(xs, _alpha_arg(alpha, dtype, as_tensor, xs), cs)
    dx, dc = torch.autograd.grad(rho.sum(), [xs, cs])
    rho = rho.detach().double()
    assert rho[1] <= rho[0] * (1 + 4 * e) + atol, (rho, xs, cs, alpha)
    assert not (dc > 0).any(), (dc, xs, cs, alpha)
    sign = math.copysign(1.0, x1) if x1 else 0.0
    assert ((torch.sign(dx) == sign) | (dx == 0)).all(), (dx, xs, cs, alpha)


# reported cases


def _check_value(got: float, want: float, size: float, dtype, what):
    if want > fmax(dtype):
        assert got == INF, (what, got, want)
    else:
        assert abs(got - want) <= contract_tolerance(size, dtype), (what, got, want)


def _check_grad(got: float, want: float, size: float, dtype, what, name="x"):
    assert math.isfinite(got), (what, got, want)
    assert abs(got - want) <= grad_tolerance(size, dtype, name), (what, got, want)


@pytest.mark.parametrize("as_tensor", [False, True], ids=["alpha number", "alpha tensor"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "alpha, reported", [(1.0, 1e20), (0.0, 91.41), (-1e-19, 91.41), (-1e-6, 91.41)]
)
def test_reported_general_at_x_1e20(alpha, reported, dtype, as_tensor):
    x = torch.tensor([1e20], dtype=dtype, requires_grad=True)
    a = float(rounded([alpha], dtype)[0])
    value = LF.general(x, torch.full_like(x, a) if as_tensor else a, 1.0)
    (grad,) = torch.autograd.grad(value.sum(), x)
    want, want_dx, _, _ = ref.rho_with_grads(x.item(), a, 1.0)
    assert want == pytest.approx(reported, rel=1e-3)
    _check_value(value.item(), want, want, dtype, f"ρ(1e20, {alpha}, 1)")
    _check_grad(grad.item(), want_dx, want_dx, dtype, f"∂ρ/∂x(1e20, {alpha}, 1)")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_reported_cauchy_nll_at_x_1e20(dtype):
    x = torch.tensor([1e20], dtype=dtype, requires_grad=True)
    value = LF.cauchy_nll(x, 1.0)
    (grad,) = torch.autograd.grad(value.sum(), x)
    want = ref.cauchy_nll(x.item(), 1.0)
    assert want.value == pytest.approx(93.25, abs=0.01)
    _check_value(value.item(), want.value, want.size, dtype, "cauchy_nll(1e20)")
    _check_grad(grad.item(), want.dx, want.dx, dtype, "∂cauchy_nll/∂x(1e20)")


@pytest.mark.parametrize("df", [1e12, 1e15, 1e16])
def test_student_t_nll_at_zero_tends_to_the_normal_for_huge_df(df):
    got = LF.student_t_nll(torch.zeros(1, dtype=torch.float64), df, 1.0).item()
    assert got == pytest.approx(0.5 * math.log(2 * math.pi), rel=1e-9)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("df", [1e-3, 0.1, 1.0, 3.0, 30.0, 1e4, 1e8])
def test_student_t_nll_at_zero_matches_mpmath(df, dtype):
    d = float(rounded([df], dtype)[0])
    got = LF.student_t_nll(torch.zeros(1, dtype=dtype), d, 1.0).item()
    want = ref.student_t_nll(0.0, d, 1.0)
    _check_value(got, want.value, want.size, dtype, f"student_t_nll(0, ν={df})")


def test_tensor_alpha_with_overflowing_ratio_has_no_nan_gradient():
    dtype = torch.float32
    alphas = [-INF, -1e25, -2.0, -1e-19, 0.0, 0.5, 1.0, 2.0, 3.0, 8.0, 1e25, INF]
    x = torch.full((len(alphas),), 1e30, dtype=dtype, requires_grad=True)
    c = torch.full_like(x, 1e-30).requires_grad_(True)
    a = torch.tensor(alphas, dtype=dtype, requires_grad=True)
    value = LF.general(x, a, c)
    grads = dict(zip("xca", torch.autograd.grad(value.sum(), [x, c, a]), strict=True))
    quarter = fmax(dtype) / 4
    for i, alpha in enumerate(a.tolist()):
        want = dict(zip("vxca", ref.rho_with_grads(x[i].item(), alpha, c[i].item()), strict=True))
        for name, g in grads.items():
            got = g[i].item()
            assert not math.isnan(got), (alpha, name)
            if abs(want["v"]) <= quarter and abs(want[name]) < quarter:
                assert math.isfinite(got), (alpha, name, got, want[name])


def test_tiny_scale_tensor_gives_a_finite_negative_scale_gradient():
    dtype = torch.float32
    quarter = fmax(dtype) / 4
    checked = 0
    for alpha in (-INF, -2.0, 0.0, 1.0, 2.0):
        for x in (1e-26, 1e-25, 1e-20, 1.0, 1e10):
            xs = torch.tensor([x], dtype=dtype)
            c = torch.tensor([1e-25], dtype=dtype, requires_grad=True)
            (grad,) = torch.autograd.grad(LF.general(xs, alpha, c).sum(), c)
            value, _, want, _ = ref.rho_with_grads(xs.item(), alpha, c.item())
            if abs(value) <= quarter and abs(want) < quarter and want < 0:
                checked += 1
                assert math.isfinite(grad.item()) and grad.item() < 0, (alpha, x, grad, want)
    assert checked >= 10


# ----------------------------------------------------------------------------- contract 5: limits


@pytest.mark.parametrize("as_tensor", [False, True], ids=["alpha number", "alpha tensor"])
@pytest.mark.parametrize("alpha", [0.0, 2.0, -INF, INF])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@settings(max_examples=40, **SETTINGS)
@given(x=signed_x, c=log_uniform_c)
def test_special_alphas_equal_their_closed_forms(dtype, alpha, as_tensor, x, c):
    xs = torch.tensor([x], dtype=dtype)
    c = inward(c, dtype)
    got = LF.general(xs, _alpha_arg(alpha, dtype, as_tensor, xs), c).item()
    u2 = (xs.item() / c) ** 2 if abs(xs.item() / c) < 1e150 else INF
    closed = {  # float64 closed forms, where they do not overflow
        0.0: math.log1p(u2 / 2),
        2.0: u2 / 2,
        -INF: -math.expm1(-u2 / 2),
        INF: math.expm1(u2 / 2) if u2 < 1400 else INF,
    }[alpha]
    want = ref.rho_with_grads(xs.item(), alpha, c)[0]
    if math.isfinite(closed):
        assert want == pytest.approx(closed, rel=1e-13, abs=1e-300)
    _check_value(got, want, want, dtype, f"ρ({x}, {alpha}, {c})")


LIMITS = [(1e-8, 0.0), (-1e-8, 0.0), (2 - 1e-8, 2.0), (2 + 1e-8, 2.0), (1e25, INF), (-1e25, -INF)]


@pytest.mark.parametrize("as_tensor", [False, True], ids=["alpha number", "alpha tensor"])
@pytest.mark.parametrize("alpha, limit", LIMITS)
@settings(max_examples=40, **SETTINGS)
@given(u=st.floats(-3, 1).map(lambda e: 10.0**e), c=st.floats(-1, 1).map(lambda e: 10.0**e))
def test_alpha_near_a_special_value_approaches_its_limit(alpha, limit, as_tensor, u, c):
    xs = torch.tensor([u * c, -u * c], dtype=torch.float64)
    near = LF.general(xs, _alpha_arg(alpha, torch.float64, as_tensor, xs), c)
    at = LF.general(xs, _alpha_arg(limit, torch.float64, as_tensor, xs), c)
    torch.testing.assert_close(near, at, rtol=1e-6, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@settings(max_examples=150, **SETTINGS)
@given(x=signed_x, c=log_uniform_c, alpha=any_alpha)
def test_fixed_and_tensor_alpha_paths_agree(dtype, x, c, alpha):
    xs = torch.tensor([x], dtype=dtype)
    c = inward(c, dtype)
    fixed = LF.general(xs, _alpha_arg(alpha, dtype, False, xs), c).item()
    tensor = LF.general(xs, _alpha_arg(alpha, dtype, True, xs), c).item()
    if fixed == INF or tensor == INF:
        assert fixed == tensor, (fixed, tensor)
    else:
        size = max(abs(fixed), abs(tensor))
        assert abs(fixed - tensor) <= 2 * contract_tolerance(size, dtype), (fixed, tensor)


# ----------------------------------------------------------------------------- contract 6: modules


def _general_nll_ref(x, alpha, c):
    r = ref.general_nll_without_log_z(x, alpha, c)
    return r.value, r.dx


def _module_ref(name: str, params: dict):
    """(value, ∂/∂input) at a residual x, from the parameters asked for (the module's own differ
    by rounding, which moves nothing across the max/4 bounds these references decide)."""
    scale = params.get("scale", 1.0)
    if name == "l2":
        return lambda x: (x * x, 2 * x)
    if name == "l1":
        return lambda x: (abs(x), math.copysign(1, x) if x else NAN)
    if name == "logcosh":
        return lambda x: ref.log_cosh_with_grad(x, params.get("a", 1.0))
    if name == "general":
        return lambda x: ref.rho_with_grads(x, params["alpha"], scale)[:2]
    if name == "adaptive":
        alpha, c = params["alpha_init"], params["scale_init"]
        return lambda x: _general_nll_ref(x, alpha, c)
    fn = {"normal": ref.normal_nll, "laplace": ref.laplace_nll, "cauchy": ref.cauchy_nll}.get(name)
    if fn is not None:
        return lambda x: (fn(x, scale).value, fn(x, scale).dx)
    return lambda x: (
        ref.student_t_nll(x, params["df"], scale).value,
        ref.student_t_nll(x, params["df"], scale).dx,
    )


ADAPTIVE = dict(num_dims=3, alpha_lo=0.0, alpha_hi=8.0)
MODULE_CASES = [
    ("l2", {}),
    ("l1", {}),
    ("logcosh", {"a": 1e-30}),
    ("logcosh", {"a": 1.0}),
    ("logcosh", {"a": 100.0}),
    ("logcosh", {"a": 1e30}),
    ("general", {"alpha": 1.0, "scale": 0.1}),
    ("general", {"alpha": 0.0, "scale": 1e-20}),
    ("general", {"alpha": -1e-19, "scale": 1e-30}),
    ("general", {"alpha": -2.0, "scale": 1e20}),
    ("general", {"alpha": -INF, "scale": 1.0}),
    ("general", {"alpha": INF, "scale": 1.0}),
    ("general", {"alpha": 2.0, "scale": 1e-3}),
    ("general", {"alpha": 8.0, "scale": 1e3}),
    ("adaptive", {**ADAPTIVE, "alpha_init": 1e-3, "scale_init": 1e-3}),
    ("adaptive", {**ADAPTIVE, "alpha_init": 1.0, "scale_init": 1.0}),
    ("adaptive", {**ADAPTIVE, "alpha_init": 4.0, "scale_init": 10.0}),
    *[(n, {"scale": s}) for n in ("normal", "laplace", "cauchy") for s in (1e-3, 1.0)],
    *[(n, {"scale": 1e3, "learn_scale": True}) for n in ("normal", "laplace", "cauchy")],
    *[(n, {"scale": 1e-20, "scale_lo": 1e-25}) for n in ("normal", "laplace", "cauchy")],
    ("student_t", {"df": 3.0}),
    ("student_t", {"df": 1e-2, "scale": 1e-3}),
    ("student_t", {"df": 1e6, "learn_df": True, "scale": 1e3, "learn_scale": True}),
    ("student_t", {"df": 1e30}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "name, params", MODULE_CASES, ids=[f"{n}-{describe(p)}" for n, p in MODULE_CASES]
)
def test_registry_module_is_finite_on_the_sweep(name, params, dtype):
    module = get_loss(name, reduction="none", **params)
    x = torch.tensor(x_axis(dtype), dtype=dtype)
    width = params.get("num_dims", 1)
    input = x[:, None].repeat(1, width).requires_grad_(True)
    value = module(input, torch.zeros_like(input))
    (grad,) = torch.autograd.grad(value.sum(), input)
    reference = _module_ref(name, params)
    quarter = fmax(dtype) / 4
    failures = []
    for i, xi in enumerate(x.tolist()):
        want, want_dx = reference(xi)
        v, g = value[i].detach(), grad[i]
        if torch.isnan(g).any():
            failures.append(f"x={xi:.6g}: NaN gradient {g.tolist()}")
        if abs(want) <= quarter:
            if not torch.isfinite(v).all():
                failures.append(f"x={xi:.6g}: value {v.tolist()}, want {want!r}")
            elif abs(want_dx) < quarter and not torch.isfinite(g).all():
                failures.append(f"x={xi:.6g}: gradient {g.tolist()}, want {want_dx!r}")
    assert not failures, f"{name}({describe(params)}) {str(dtype)[6:]}:\n" + "\n".join(failures[:6])


# ----------------------------------------------------------------------------- contract 7: half


MIXED_CASES = {
    "l2": {},
    "l1": {},
    "logcosh": {"a": 100.0},
    "general": {"alpha": 1.0, "scale": 0.1},
    "adaptive": {"num_dims": 3},
    "normal": {"scale": 0.1},
    "laplace": {"scale": 0.1},
    "cauchy": {"scale": 0.1},
    "student_t": {"df": 3.0, "scale": 0.1},
}
HALF_MODES = ["float16", "bfloat16", "autocast-bfloat16", "autocast-float16"]


def test_mixed_precision_cases_cover_the_registry():
    assert set(MIXED_CASES) == set(LOSSES)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("mode", HALF_MODES)
@pytest.mark.parametrize("name", list(MIXED_CASES))
def test_mixed_precision_value_and_gradient_are_finite(name, mode, reduction):
    module = get_loss(name, reduction=reduction, **MIXED_CASES[name])
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 16, 16, generator=generator)
    target = torch.rand(2, 3, 16, 16, generator=generator)
    if mode.startswith("autocast"):
        conv = nn.Conv2d(3, 3, 3, padding=1)
        with torch.autocast("cpu", dtype=getattr(torch, mode.split("-")[1])):
            value = module(conv(image).sigmoid(), target)
        leaf = conv.weight
    else:
        dtype = getattr(torch, mode)
        leaf = image.to(dtype).requires_grad_(True)
        value = module(leaf, target.to(dtype))
    (grad,) = torch.autograd.grad(value.float().sum(), leaf)
    assert torch.isfinite(value).all(), value
    assert torch.isfinite(grad).all(), grad


# ----------------------------------------------------------------------- contract 8: validation


BAD_VALUES = [NAN, INF, -INF, 0, -1, 1e39, 1e-50, 10**400, True, "x", None, [1]]
# Numeric parameters: (lo, lo_open, hi, hi_open) given the other parameters' defaults, and
# the bad values whose validity the contract leaves open (skipped).
VALID_RANGES = {
    ("logcosh", "a"): (C_LO, False, C_HI, False),
    ("general", "alpha"): (-INF, False, INF, False),
    ("general", "scale"): (C_LO, False, C_HI, False),
    ("adaptive", "alpha_lo"): (0.0, False, 1.999, True),  # below the default alpha_hi
    ("adaptive", "alpha_hi"): (0.001, True, 8.0, False),  # above the default alpha_lo
    ("adaptive", "alpha_init"): (0.001, True, 1.999, True),  # inside the default range
    ("adaptive", "scale_lo"): (C_LO, False, 1.0, True),  # below the default scale_init
    ("adaptive", "scale_init"): (1e-5, True, C_HI, False),  # above the default scale_lo
    ("student_t", "df"): (1e-3, True, 1e30, False),  # above the default df_lo
    ("student_t", "df_lo"): (0.0, False, 1.0, True),  # below the default df
    **{(n, "scale"): (1e-5, True, C_HI, False) for n in ("normal", "laplace", "cauchy")},
    **{(n, "scale_lo"): (C_LO, False, 1.0, True) for n in ("normal", "laplace", "cauchy")},
    ("student_t", "scale"): (1e-5, True, C_HI, False),
    ("student_t", "scale_lo"): (C_LO, False, 1.0, True),
}
# a lower bound for c of 0 or 1e-50 lets c reach below 1e-30: the contract does not say
UNDECIDED = {"scale_lo": (0, 1e-50)}
SPECIAL = ("reduction", "num_dims")
NONE_ALLOWED = {("adaptive", "alpha_init"), ("adaptive", "scale_init")}  # None: from data


def base_params(name: str) -> dict:
    return {"num_dims": 3} if name == "adaptive" else {}


def is_valid(name: str, param: str, value) -> bool | None:
    if any(value is v or value == v for v in UNDECIDED.get(param, ())):
        return None
    if value is None:
        return (name, param) in NONE_ALLOWED
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int) and abs(value) > 1e300:
        return False  # no float holds it
    lo, lo_open, hi, hi_open = VALID_RANGES[name, param]
    v = float(value)
    if math.isnan(v):
        return False
    return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)


def numeric_parameters(name: str) -> list[str]:
    return [p for p in loss_parameters(name) if p not in SPECIAL and not p.startswith("learn_")]


def value_id(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 1e300:
        return "10**400"
    return "list" if isinstance(value, list) else repr(value)


def invalid_cases():
    cases = []
    for name in LOSSES:
        for param in numeric_parameters(name):
            if (name, param) not in VALID_RANGES:
                continue  # test_every_numeric_parameter_has_a_rule fails instead
            for value in BAD_VALUES:
                if is_valid(name, param, value) is False:
                    cases.append(
                        pytest.param(name, param, value, id=f"{name}-{param}={value_id(value)}")
                    )
    for name in LOSSES:
        cases.append(pytest.param(name, "reduction", "x", id=f"{name}-reduction='x'"))
        if "num_dims" in loss_parameters(name):
            for value in (0, -1, "x"):
                cases.append(pytest.param(name, "num_dims", value, id=f"{name}-num_dims={value!r}"))
    return cases


def test_every_numeric_parameter_has_a_rule():
    for name in LOSSES:
        for param in numeric_parameters(name):
            assert (name, param) in VALID_RANGES, f"no validity rule for {name}'s {param}"


@pytest.mark.parametrize("name, param, value", invalid_cases())
def test_invalid_parameter_raises_value_error_naming_it(name, param, value):
    try:
        get_loss(name, **{**base_params(name), param: value})
    except ValueError as error:
        assert param in str(error), f"the message does not name {param!r}: {error}"
    except Exception as error:  # noqa: BLE001 - any other type breaks the contract
        pytest.fail(f"{type(error).__name__}: {error} (want a ValueError)")
    else:
        pytest.fail(f"get_loss({name!r}, {param}={value!r}) was accepted")


@pytest.mark.parametrize(
    "name, param",
    [(n, p) for n in LOSSES for p in loss_parameters(n) if p.startswith("learn_")],
)
def test_non_bool_learn_flag_raises_value_error_naming_it(name, param):
    try:
        get_loss(name, **{**base_params(name), param: "x"})
    except ValueError as error:
        assert param in str(error), f"the message does not name {param!r}: {error}"
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"{type(error).__name__}: {error} (want a ValueError)")
    else:
        pytest.fail(f"get_loss({name!r}, {param}='x') was accepted")


def test_the_reported_general_gradient_where_the_value_overflows():
    # Issue 27's example: ρ overflows float32 (≈ 1e55) while ∂ρ/∂x = −1/c·(1 + ...) = −1e30.
    x = torch.tensor([-1e25], requires_grad=True)
    value = LF.general(x, 1.0, 1e-30)
    (grad,) = torch.autograd.grad(value.sum(), x)
    assert value.item() == INF
    assert grad.item() == pytest.approx(-1e30 * 0.99999998, rel=1e-4)


def test_a_learned_nll_scale_gets_a_finite_gradient_where_only_d_dc_overflows():
    # Issue 27's example: NormalNLL with a learned c = 2e-5 at x = 1.5e14 (float32). ∂/∂c =
    # 1/c − x²/c³ = −2.8e42 overflows float32; its latent's gradient, ∂/∂c·sigmoid(ℓ) with
    # softplus(ℓ) = c − 1e-5, is −2.8e37.
    from robustvae.losses import NormalNLL

    loss = NormalNLL(scale=2e-5, learn_scale=True, reduction="sum")
    x = torch.tensor([1.5e14])
    loss(x, torch.zeros_like(x)).backward()
    (latent,) = loss.parameters()
    softplus_slope = -math.expm1(-(2e-5 - 1e-5))  # sigmoid(ℓ) = 1 − e^(−softplus(ℓ))
    want = (1 / 2e-5 - 1.5e14**2 / 2e-5**3) * softplus_slope
    assert latent.grad.dtype == torch.float32
    assert latent.grad.item() == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_an_adaptive_latent_alpha_gets_a_finite_gradient_where_only_d_dalpha_overflows(reduction):
    # Issue 27's example: AdaptiveLoss on [0, 8] at α = 7.9, c = 2e-5, x = −3 (float32).
    # ∂ρ/∂α = 5.45e38 overflows float32; the latent's, ∂ρ/∂α·8·σ'(ℓ), is 5.4e37. The latent's
    # gradient must equal the same loss's in float64 (every part of the sum, batched).
    from robustvae.losses import AdaptiveLoss

    def latent_grads(dtype):
        torch.manual_seed(0)
        loss = AdaptiveLoss(
            2, alpha_lo=0.0, alpha_hi=8.0, alpha_init=7.9, scale_init=2e-5, reduction=reduction
        ).to(dtype)
        x = torch.tensor([[-3.0, 0.5], [-3.0, 1e-4]], dtype=dtype)
        loss(x, torch.zeros_like(x)).backward()
        return loss.latent_alpha.latent.grad.double(), loss.latent_scale.latent.grad.double()

    alpha32, scale32 = latent_grads(torch.float32)
    alpha64, scale64 = latent_grads(torch.float64)
    assert torch.isfinite(alpha32).all() and alpha32[0] > 1e37
    torch.testing.assert_close(alpha32, alpha64, rtol=1e-4, atol=0)
    representable = scale64.abs() < fmax(torch.float32) / 4
    torch.testing.assert_close(scale32[representable], scale64[representable], rtol=1e-4, atol=0)
