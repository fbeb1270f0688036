import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate

from robustvae.losses import log_partition
from robustvae.losses.partition import ALPHA_MAX

ROOT = Path(__file__).resolve().parents[1]


def log_z_by_quadrature(alpha: float) -> float:
    """Independent float64 quadrature of ∫ exp(-ρ(x, α, 1)) dx."""

    def integrand(x):
        z = x * x
        if alpha == 2:
            return math.exp(-z / 2)
        if alpha == 0:
            return 1 / (1 + z / 2)
        b = abs(alpha - 2)
        return math.exp(-b / alpha * math.expm1(alpha / 2 * math.log1p(z / b)))

    half = integrate.quad(integrand, 0, np.inf, epsabs=1e-14, epsrel=1e-12, limit=1000)[0]
    return math.log(2 * half)


def test_closed_form_values():
    got = log_partition(torch.tensor([0.0, 2.0], dtype=torch.float64))
    want = torch.tensor(
        [math.log(math.pi * math.sqrt(2)), 0.5 * math.log(2 * math.pi)], dtype=torch.float64
    )
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_matches_quadrature_everywhere_in_range():
    rng = np.random.default_rng(0)
    alphas = np.concatenate(
        [
            rng.uniform(0, ALPHA_MAX, 25),
            [
                1e-7,
                0.003,
                0.0137,
                0.49,
                1.0,
                1.9999,
                2 - 3e-9,
                2 + 3e-9,
                2.0001,
                2.0137,
                3.99,
                7.999,
            ],
        ]
    )
    got = log_partition(torch.tensor(alphas, dtype=torch.float64)).numpy()
    want = np.array([log_z_by_quadrature(a) for a in alphas])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # the spec asks 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_finite_everywhere_including_the_singular_point(dtype):
    alpha = torch.tensor(
        [0.0, 1e-6, 1.0, 2 - 1e-6, 2.0, 2 + 1e-6, 4.0, ALPHA_MAX], dtype=dtype, requires_grad=True
    )
    (grad,) = torch.autograd.grad(log_partition(alpha).sum(), alpha)
    assert torch.isfinite(grad).all()
    assert grad[4] < -3  # d log Z/dα → -∞ at α = 2 (logarithmically)


def test_slope_matches_quadrature_difference_quotient():
    for alpha in (0.3, 1.0, 1.7, 2.5, 5.0):
        a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(log_partition(a), a)
        h = 1e-4
        fd = (log_z_by_quadrature(alpha + h) - log_z_by_quadrature(alpha - h)) / (2 * h)
        assert grad.item() == pytest.approx(fd, abs=1e-6)


def test_gradcheck_away_from_two():
    alpha = torch.tensor([0.05, 0.7, 1.3, 2.6, 3.3, 6.1], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(log_partition, (alpha,))


def test_decreasing_in_alpha():
    values = log_partition(torch.linspace(0, ALPHA_MAX, 2001, dtype=torch.float64))
    assert (values.diff() < 0).all()


def test_shipped_table_is_what_the_script_makes(tmp_path):
    out = tmp_path / "table.csv"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/make_partition_table.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    shipped = np.loadtxt(ROOT / "src/robustvae/losses/partition_table.csv", delimiter=",")
    remade = np.loadtxt(out, delimiter=",")
    np.testing.assert_allclose(remade, shipped, rtol=1e-12, atol=1e-14)


def test_float32_gradient_agrees_with_float64_near_zero_and_two():
    alphas = [1e-9, 2e-8, 1e-6, 0.3, 1.9999998, 2 + 3e-7, 2.5]
    grads = {}
    same_alphas = torch.tensor(alphas, dtype=torch.float32)  # α as float32 holds them
    for dtype in (torch.float32, torch.float64):
        a = same_alphas.to(dtype).requires_grad_(True)
        (grads[dtype],) = torch.autograd.grad(log_partition(a).sum(), a)
    torch.testing.assert_close(
        grads[torch.float32].double(), grads[torch.float64], rtol=1e-3, atol=1e-3
    )
