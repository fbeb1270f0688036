import math

import numpy as np
import pytest
import reference as ref
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from robustvae.losses import functional as LF

INF = math.inf
DTYPES = [torch.float32, torch.float64]
finite_x = st.floats(-1e4, 1e4, allow_nan=False)
positive_c = st.floats(1e-3, 1e3)


def signed_logspace(lo, hi, n):
    mags = np.logspace(lo, hi, n)
    return np.concatenate([-mags[::-1], [0.0], mags])


def grad_of(fn, *tensors):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
    return out.detach(), grads


# ----------------------------------------------------------------------------- log-cosh


@pytest.mark.parametrize("a", [1e-3, 1.0, 100.0, 1e3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_log_cosh_matches_high_precision_reference(a, dtype):
    t = torch.tensor(signed_logspace(-20, 4, 121), dtype=dtype)
    got = LF.log_cosh(t, torch.zeros_like(t), a=a, reduction="none")
    want = ref.vectorize(lambda v: ref.log_cosh(v, a), t.double().numpy())
    rtol = 2e-6 if dtype == torch.float32 else 1e-13
    atol = 1e-34 if dtype == torch.float32 else 1e-300  # float32 is subnormal below ~1e-38
    np.testing.assert_allclose(got.double().numpy(), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_cosh_gradient_is_tanh_at_any_input(dtype):
    t = torch.tensor(signed_logspace(-12, 4, 81), dtype=dtype)
    for a in (1e-3, 1.0, 100.0, 1e3):
        values, (grad,) = grad_of(lambda x, a=a: LF.log_cosh(x, torch.zeros_like(x), a, "none"), t)
        assert torch.isfinite(values).all() and torch.isfinite(grad).all()
        torch.testing.assert_close(grad, torch.tanh(a * t), rtol=1e-6, atol=1e-30)


def test_log_cosh_does_not_overflow_where_naive_form_does():
    t = torch.tensor([100.0, -1e4], dtype=torch.float32)
    assert not torch.isfinite(torch.log(torch.cosh(t))).all()  # the form we avoid
    got = LF.log_cosh(t, torch.zeros_like(t), a=1.0, reduction="none")
    torch.testing.assert_close(got, t.abs() - math.log(2))


@settings(max_examples=200, deadline=None)
@given(t=finite_x, a=st.floats(1e-3, 1e3))
def test_log_cosh_lies_between_shifted_l1_and_l1(t, a):
    x = torch.tensor([t], dtype=torch.float64)
    f = LF.log_cosh(x, torch.zeros_like(x), a, "none").item()
    assert abs(t) - math.log(2) / a - 1e-12 * abs(t) <= f <= abs(t) + 1e-300


@settings(max_examples=200, deadline=None)
@given(y=st.floats(1e-8, 0.3), a=st.floats(1e-3, 1e3))
def test_log_cosh_is_half_a_t_squared_near_zero(y, a):
    t = y / a  # |a t| small
    x = torch.tensor([t], dtype=torch.float64)
    f = LF.log_cosh(x, torch.zeros_like(x), a, "none").item()
    quadratic = 0.5 * a * t * t
    assert abs(f - quadratic) <= a**3 * t**4 / 12 * (1 + 1e-9) + 1e-15 * quadratic


def test_log_cosh_gradcheck():
    x = torch.randn(20, dtype=torch.float64, requires_grad=True)
    y = torch.randn(20, dtype=torch.float64, requires_grad=True)
    for a in (0.5, 3.0, 100.0):
        assert torch.autograd.gradcheck(lambda u, v, a=a: LF.log_cosh(u, v, a, "sum"), (x, y))
        assert torch.autograd.gradgradcheck(lambda u, v, a=a: LF.log_cosh(u, v, a, "sum"), (x, y))


# ----------------------------------------------------------------------------- general ρ

ALPHAS = [
    -INF,
    -1e6,
    -2.0,
    -1e-9,
    0.0,
    1e-12,
    1e-6,
    0.5,
    1.0,
    1.5,
    2 - 1e-6,
    2.0,
    2 + 1e-6,
    3.0,
    4.0,
    1e3,
    INF,
]


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_general_matches_high_precision_reference(alpha, dtype, as_tensor):
    x = torch.tensor(signed_logspace(-6, 4, 41), dtype=dtype)
    c = 0.7
    if alpha in (1e3, INF):
        x = x[x.abs() < 8]  # exp(½(x/c)²) overflows float32 past that
    a = torch.tensor(alpha, dtype=dtype) if as_tensor else alpha
    got = LF.general(x, a, c).double().numpy()
    alpha_ref = float(torch.tensor(alpha, dtype=dtype))  # the α the dtype can hold
    want = ref.vectorize(lambda v: ref.rho(v, alpha_ref, c), x.double().numpy())
    rtol = 1e-5 if dtype == torch.float32 else 1e-11
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300)


@settings(max_examples=100, deadline=None)
@given(x=finite_x, c=positive_c)
def test_general_special_cases(x, c):
    t = torch.tensor([x], dtype=torch.float64)
    z = (x / c) ** 2
    cases = {
        2.0: 0.5 * z,
        0.0: math.log1p(0.5 * z),
        1.0: z / (math.sqrt(z + 1) + 1),
        -INF: -math.expm1(-0.5 * z),
    }
    for alpha, want in cases.items():
        for a in (alpha, torch.tensor(alpha, dtype=torch.float64)):
            got = LF.general(t, a, c).item()
            assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (alpha, type(a))


@settings(max_examples=100, deadline=None)
@given(x1=finite_x, x2=finite_x, alpha=st.floats(-50, 50), c=positive_c)
def test_general_grows_with_abs_x(x1, x2, alpha, c):
    lo, hi = sorted([abs(x1), abs(x2)])
    t = torch.tensor([lo, -hi], dtype=torch.float64)
    for a in (alpha, torch.tensor(alpha, dtype=torch.float64)):
        rho = LF.general(t, a, c)
        assert rho[0] <= rho[1] * (1 + 1e-12)
        assert rho[0] >= 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_general_gradients_finite_at_extremes(dtype):
    xs = torch.tensor([0.0, 1e-30, -1e-20, 1e-3, 1.0, -37.0, 1e4, -1e4], dtype=dtype)
    alphas = torch.tensor(
        [-INF, -1e6, -2.0, 0.0, 1e-30, 1e-8, 1.0, 2 - 1e-7, 2.0, 2 + 1e-7, 4.0, 1e6, INF],
        dtype=dtype,
    )
    scales = torch.tensor([1e-3, 1.0, 10.0], dtype=dtype)
    x, a, c = torch.meshgrid(xs, alphas, scales, indexing="ij")
    values, grads = grad_of(LF.general, x, a, c)
    finite = torch.isfinite(values)
    assert finite[torch.isfinite(a) & (a <= 4)].all()  # large α may overflow legitimately
    for g in grads:
        assert torch.isfinite(g[finite]).all()


def test_general_gradient_in_alpha_matches_reference_near_zero():
    x = torch.tensor([0.3, 1.0, 5.0, 40.0], dtype=torch.float64)
    for alpha in (0.0, 1e-9, -1e-6, 1e-3, 0.5, 1.0, 3.0):
        a = torch.full_like(x, alpha, requires_grad=True)
        (grad,) = torch.autograd.grad(LF.general(x, a, 1.0).sum(), a)
        want = [ref.drho_dalpha(v, alpha, 1.0) for v in x.tolist()]
        np.testing.assert_allclose(grad.numpy(), want, rtol=1e-8)


def test_general_gradcheck_in_x_alpha_and_scale():
    x = torch.randn(12, dtype=torch.float64) * 3
    alpha = torch.tensor(
        [-3.0, -0.5, 0.0, 0.4, 1.0, 1.7, 2.6, 5.0, 0.0, 1.0, -1.0, 3.0], dtype=torch.float64
    )
    c = torch.rand(12, dtype=torch.float64) + 0.3
    inputs = tuple(t.requires_grad_(True) for t in (x, alpha, c))
    assert torch.autograd.gradcheck(LF.general, inputs)


def test_general_broadcasts_parameters():
    x = torch.randn(5, 3, dtype=torch.float64)
    alpha = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    c = torch.tensor([[0.5], [1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    got = LF.general(x, alpha, c)
    for i in range(5):
        for j in range(3):
            want = LF.general(x[i, j : j + 1], alpha[j].item(), c[i, 0].item())
            torch.testing.assert_close(got[i, j : j + 1], want)


# ----------------------------------------------------------------------------- NLLs


@settings(max_examples=50, deadline=None)
@given(x=finite_x, c=positive_c)
def test_general_nll_special_cases(x, c):
    t = torch.tensor([x], dtype=torch.float64)
    torch.testing.assert_close(LF.general_nll(t, 2.0, c), LF.normal_nll(t, c), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(
        LF.general_nll(t, 0.0, c), LF.cauchy_nll(t, math.sqrt(2) * c), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("alpha", [0.25, 0.5, 1.0, 1.5, 1.999, 2.0, 3.0, 5.5, 8.0])
def test_general_nll_is_a_normalised_density(alpha):
    c = 0.8

    def density(v):
        return math.exp(-LF.general_nll(torch.tensor([v], dtype=torch.float64), alpha, c).item())

    total = 2 * integrate.quad(density, 0, np.inf, limit=500, epsabs=1e-12)[0]
    assert total == pytest.approx(1.0, abs=1e-6)


def test_nlls_match_scipy():
    x = torch.tensor(signed_logspace(-3, 3, 15), dtype=torch.float64)
    c = 1.7
    xs = x.numpy()
    np.testing.assert_allclose(LF.normal_nll(x, c), -stats.norm.logpdf(xs, scale=c), rtol=1e-12)
    np.testing.assert_allclose(LF.laplace_nll(x, c), -stats.laplace.logpdf(xs, scale=c), rtol=1e-12)
    np.testing.assert_allclose(LF.cauchy_nll(x, c), -stats.cauchy.logpdf(xs, scale=c), rtol=1e-12)
    for df in (0.5, 1.0, 4.0, 1e3):
        np.testing.assert_allclose(
            LF.student_t_nll(x, df, c), -stats.t.logpdf(xs, df, scale=c), rtol=1e-10
        )


def test_nll_gradcheck_in_all_parameters():
    x = (torch.randn(8, dtype=torch.float64) * 2).requires_grad_(True)
    c = (torch.rand(8, dtype=torch.float64) + 0.5).requires_grad_(True)
    df = (torch.rand(8, dtype=torch.float64) * 5 + 0.5).requires_grad_(True)
    alpha = (torch.rand(8, dtype=torch.float64) * 3.5 + 0.05).requires_grad_(True)
    assert torch.autograd.gradcheck(LF.normal_nll, (x, c))
    assert torch.autograd.gradcheck(LF.cauchy_nll, (x, c))
    assert torch.autograd.gradcheck(LF.student_t_nll, (x, df, c))
    assert torch.autograd.gradcheck(LF.general_nll, (x, alpha, c))
    assert torch.autograd.gradcheck(lambda u, s: LF.laplace_nll(u + 0.05, s), (x, c))


def test_general_nll_can_be_negative():
    x = torch.zeros(3, dtype=torch.float64)
    assert (LF.general_nll(x, 1.0, 0.01) < 0).all()


# ----------------------------------------------------------------------------- API


def test_reductions_agree():
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    for fn in (LF.squared_l2, LF.l1, LF.log_cosh):
        none = fn(x, y, reduction="none")
        assert none.shape == x.shape
        torch.testing.assert_close(fn(x, y, reduction="sum"), none.sum())
        torch.testing.assert_close(fn(x, y, reduction="mean"), none.mean())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: LF.log_cosh(x, x, a=0.0), "a must lie"),
        (lambda x: LF.log_cosh(x, x, a=-1.0), "a must lie"),
        (lambda x: LF.log_cosh(x, x, a=math.nan), "a must lie"),
        (lambda x: LF.log_cosh(x, x[:2]), "same shape"),
        (lambda x: LF.squared_l2(x, x[:2]), "same shape"),
        (lambda x: LF.l1(x, x, reduction="max"), "reduction"),
        (lambda x: LF.general(x, 1.0, 0.0), "scale must lie"),
        (lambda x: LF.general(x, 1.0, torch.tensor([1.0, -1.0, 1.0])), "scale must lie"),
        (lambda x: LF.general(x, math.nan), "alpha"),
        (lambda x: LF.general(x, torch.tensor(math.nan)), "alpha"),
        (lambda x: LF.general_nll(x, -0.5), r"alpha must lie in \[0"),
        (lambda x: LF.general_nll(x, 9.0), r"alpha must lie in \[0"),
        (lambda x: LF.student_t_nll(x, 0.0), "df must lie"),
        (lambda x: LF.cauchy_nll(x, -2.0), "scale must lie"),
    ],
)
def test_invalid_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.ones(3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_alpha_survives_overflowing_squared_residuals(dtype):
    # (x/c)² overflows although x/c does not: 1e20² in float32, 1e216² in float64
    x = torch.tensor([1e4 if dtype == torch.float32 else 1e200, 1.0], dtype=dtype)
    c = 1e-16
    for alpha in (-2.0, 0.0, 0.5, 1.5):
        a = torch.full_like(x, alpha, requires_grad=True)
        xs = x.clone().requires_grad_(True)
        rho = LF.general(xs, a, c)
        want = [ref.rho(v, alpha, c) for v in x.tolist()]
        overflows = torch.tensor([w > torch.finfo(dtype).max for w in want])
        assert torch.isfinite(rho[~overflows]).all(), alpha
        assert (rho[overflows] == math.inf).all(), alpha  # 1e216^1.5/3 overflows float64
        for g in torch.autograd.grad(rho.sum(), [xs, a]):
            assert not torch.isnan(g).any(), alpha
            assert torch.isfinite(g[~overflows]).all(), alpha
    bounded = LF.general(x, torch.tensor(-2.0, dtype=dtype), c)
    torch.testing.assert_close(bounded, torch.full_like(x, 2.0))  # ρ → |α-2|/|α| for α < 0


def test_student_t_float32_is_accurate_for_large_df():
    x = torch.tensor([0.0, 0.5, 3.0])
    for df in (1e4, 1e5, 1e6, 1e7):
        got = LF.student_t_nll(x, df, 1.0).double().numpy()
        want = -stats.t.logpdf(x.double().numpy(), df)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(x=finite_x, c=positive_c, alpha=st.floats(-20, 7.9))
def test_fixed_and_tensor_alpha_agree_in_each_dtype(dtype, x, c, alpha):
    t = torch.tensor([x], dtype=dtype)
    fixed = LF.general(t, alpha, c)
    tensor = LF.general(t, torch.tensor(alpha, dtype=dtype), c)
    assert torch.isfinite(fixed).all() or alpha > 2
    rtol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(tensor, fixed, rtol=rtol, atol=1e-30)


def test_eager_log_cosh_takes_the_one_pass_form_for_a_from_1():
    # a ≥ 1 goes through the written-out Function (the plain formula's cost); a < 1, whose
    # value needs the series near 0, and a learned a keep the general form.
    x = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(101, dtype=torch.float64)
    assert "LogCosh" in type(LF.log_cosh(x, y, 1.0, "none").grad_fn).__name__
    assert "LogCosh" in type(LF.log_cosh(x, y, torch.tensor(100.0), "none").grad_fn).__name__
    assert "LogCosh" not in type(LF.log_cosh(x, y, 0.5, "none").grad_fn).__name__
    learned = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    assert "LogCosh" not in type(LF.log_cosh_values(x, y, learned).grad_fn).__name__
    # Both forms agree with each other and with the closed form where it is computable.
    for a in (1.0, 7.0, 1e4):
        one_pass = LF.log_cosh(x, y, a, "none")
        (grad,) = torch.autograd.grad(one_pass.sum(), x)
        ax = a * x.detach()
        closed = torch.log(torch.cosh(ax)) / a  # cancels below a|x| ~ 1e-3: the series there
        closed = torch.where(ax.abs() < 1e-3, ax * x.detach() * (0.5 - ax * ax / 12), closed)
        finite = torch.isfinite(closed)
        torch.testing.assert_close(one_pass.detach()[finite], closed[finite], rtol=1e-12, atol=0)
        torch.testing.assert_close(grad, torch.tanh(a * x.detach()), rtol=1e-15, atol=0)


# Barron's general_test.py: his seven named cases at x ∈ [-20, 20) in steps of 0.1, c = 2, α
# and c passed as tensors, with his tolerances (float32 1e-6, float64 1e-15, relative and
# absolute, as numpy's assert_allclose adds them).
BARRON_TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-15}


def _barron_closed_forms(x: np.ndarray, s) -> dict:
    return {
        -math.inf: 1.0 - np.exp(-0.5 * (x / s) ** 2),
        -2.0: 2.0 * (x / s) ** 2 / ((x / s) ** 2 + 4.0),
        0.0: np.log(0.5 * (x / s) ** 2 + 1.0),
        1.0: np.sqrt((x / s) ** 2 + 1.0) - 1.0,
        2.0: 0.5 * (x / s) ** 2,
        4.0: np.square(np.square(x / s)) / 8.0 + np.square(x / s) / 2.0,
        math.inf: np.exp(0.5 * np.square(x / s)) - 1.0,
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [-math.inf, -2.0, 0.0, 1.0, 2.0, 4.0, math.inf])
def test_barron_named_cases_within_his_tolerance_of_the_exact_value(dtype, alpha):
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    x = np.arange(-20, 20, 0.1, np_dtype)
    t = torch.tensor(x)
    rho = LF.general(t, torch.tensor(alpha, dtype=dtype), torch.tensor(2.0, dtype=dtype))
    ours = rho.double().numpy()
    exact = ref.vectorize(lambda v: ref.rho(v, alpha, 2.0), x.astype(np.float64))
    tol = BARRON_TOLERANCE[dtype]
    np.testing.assert_allclose(ours, exact, rtol=tol, atol=tol)
    his = _barron_closed_forms(x, np_dtype(2.0))[alpha].astype(np.float64)
    if alpha == math.inf:
        # His own exp(½(x/c)²) - 1 is further than his tolerance from the exact value (e^w
        # magnifies the rounding of w by w = 50): 1.9e-6 (float32) and 3.5e-15 (float64).
        his_error = np.max(np.abs(his - exact) / np.abs(exact).clip(min=1.0))
        assert his_error > tol
        np.testing.assert_allclose(ours, his, rtol=tol + his_error, atol=tol)
    else:
        np.testing.assert_allclose(ours, his, rtol=tol, atol=tol)


def test_a_one_element_tensor_alpha_and_scale_are_read_as_numbers():
    x = torch.linspace(-30, 30, 301, dtype=torch.float64).reshape(1, -1)
    for alpha in (-3.0, 0.0, 1.0, 4.0, 7.5, math.inf):
        as_numbers = LF.general(x, alpha, 0.7)
        as_tensors = LF.general(
            x, torch.tensor([[alpha]]), torch.tensor([0.7], dtype=torch.float64)
        )
        assert as_tensors.shape == x.shape
        torch.testing.assert_close(as_tensors, as_numbers, rtol=0, atol=0)
    wider = LF.general(x[0], torch.tensor([[1.0]]), 0.7)  # α widens x's shape: a tensor α
    assert wider.shape == (1, 301)


ONE_PASS_FORMS = {
    "general α=3": lambda x: LF.general(x, 3.0, 0.7),
    "general α=1": lambda x: LF.general(x, 1.0, 0.7),
    "general α=4": lambda x: LF.general(x, 4.0, 0.7),
    "general tensor α": lambda x: LF.general(x, torch.tensor([1.0, 3.0, 0.5]).double(), 0.7),
    "cauchy c number": lambda x: LF.cauchy_nll(x, 0.7),
    "cauchy c tensor": lambda x: LF.cauchy_nll(x, torch.tensor([0.7, 0.2, 3.0]).double()),
    "student-t ν number": lambda x: LF.student_t_nll(x, 3.0, 0.7),
    "student-t ν tensor": lambda x: LF.student_t_nll(x, torch.tensor([3.0, 0.5, 9.0]).double()),
}


@pytest.mark.parametrize("name", ONE_PASS_FORMS)
def test_the_one_pass_forms_have_second_derivatives(name):
    x = torch.tensor([0.3, -1.2, 2.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(ONE_PASS_FORMS[name], (x,))


@pytest.mark.parametrize(
    "alpha, scale",
    [(3.0, 1e18), (torch.tensor([3.0, 3.0]), 1e18), (3.0, torch.tensor([1e18, 1e18]))],
    ids=["numbers", "tensor alpha", "tensor scale"],
)
def test_a_finite_gradient_does_not_overflow_on_its_way(alpha, scale):
    # α = 3, c = 1e18, x = 1e30 (float32): ρ = 3.3e35 and ∂ρ/∂x = 1e6, where e^((α/2−1)L)·x
    # alone overflows
    x = torch.tensor([1e30, 1e30], requires_grad=True)
    (grad,) = torch.autograd.grad(LF.general(x, alpha, scale).sum(), x)
    torch.testing.assert_close(grad, torch.full_like(grad, 1e6), rtol=1e-5, atol=0)


def test_quartic_gradient_is_finite_where_only_the_value_overflows():
    x = torch.tensor([1e30], requires_grad=True)  # ρ ≈ 1.25e59, ∂ρ/∂x = (x/c²)(1 + w) = 5e29
    value = LF.general(x, 4.0, 1e15)
    (grad,) = torch.autograd.grad(value.sum(), x)
    assert value.item() == math.inf
    assert grad.item() == pytest.approx(5e29, rel=1e-5)


def test_infinite_residuals_give_no_nan_gradient_with_a_tensor_alpha():
    x = torch.tensor([math.inf, -math.inf], requires_grad=True)
    (grad,) = torch.autograd.grad(LF.general(x, torch.tensor([1.0, 0.5]), 1.0).sum(), x)
    assert not torch.isnan(grad).any()


def test_general_loss_at_alpha_infinity_keeps_its_scale_in_float64():
    from robustvae.losses import GeneralLoss

    x = torch.linspace(0, 13.2 * 0.3, 401)
    got = GeneralLoss(math.inf, 0.3, reduction="none")(x, torch.zeros_like(x)).double()
    exact = torch.tensor(ref.vectorize(lambda v: ref.rho(v, math.inf, 0.3), x.double().numpy()))
    torch.testing.assert_close(got, exact, rtol=1e-7, atol=1e-30)
