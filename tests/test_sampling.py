"""Samples of the general distribution (robustvae.losses.sample_general, AdaptiveLoss.sample)
against its density by Kolmogorov–Smirnov tests: the closed forms at α = 2 (a normal) and
α = 0 (a Cauchy of scale √2·c), and the density integrated numerically elsewhere."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import cumulative_trapezoid

from robustvae.losses import AdaptiveLoss, sample_general
from robustvae.losses import functional as LF

N = 20_000


def _numeric_cdf(alpha: float, scale: float):
    """The CDF of p(x) = exp(−ρ(x, α, c) − log c − log Z(α)), integrated on a fine grid; also
    the density's total mass (1 when Z(α) is right)."""
    x = np.linspace(-80 * scale, 80 * scale, 400_001)
    t = torch.from_numpy(x)
    density = torch.exp(-LF.general_nll(t, alpha, scale)).numpy()
    cdf = cumulative_trapezoid(density, x, initial=0.0)
    return (lambda v: np.interp(v, x, cdf)), cdf[-1]


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0, 4.0])
def test_samples_follow_the_density(alpha):
    scale = 0.7
    draws = sample_general(alpha, scale, (N,), torch.Generator().manual_seed(1), torch.float64)
    assert draws.shape == (N,) and draws.dtype == torch.float64
    if alpha == 2.0:
        cdf = stats.norm(scale=scale).cdf
    elif alpha == 0.0:
        cdf = stats.cauchy(scale=math.sqrt(2) * scale).cdf
    else:
        cdf, mass = _numeric_cdf(alpha, scale)
        assert mass == pytest.approx(1.0, abs=1e-4)  # Z(α) normalises the density
    assert stats.kstest(draws.numpy(), cdf).pvalue > 1e-3


def test_a_sample_of_the_wrong_distribution_fails_the_test():
    """The KS test can fail: samples at α = 1 are not those of α = 2."""
    draws = sample_general(1.0, 1.0, (N,), torch.Generator().manual_seed(1))
    assert stats.kstest(draws.numpy(), stats.norm().cdf).pvalue < 1e-6


def test_tensor_parameters_broadcast_and_each_element_has_its_own():
    alpha = torch.tensor([0.0, 2.0])
    scale = torch.tensor([[1.0], [0.01]])
    draws = sample_general(alpha, scale, (3000, 2, 2), torch.Generator().manual_seed(0))
    assert draws.shape == (3000, 2, 2)
    spread = draws.abs().median(0).values  # Cauchy (α = 0) spreads wider than a normal
    assert spread[1, 1] < spread[0, 1] / 50 and spread[0, 0] > spread[0, 1]
    with pytest.raises(ValueError, match="alpha"):
        sample_general(-1.0)
    with pytest.raises(ValueError, match="scale"):
        sample_general(1.0, 0.0)


def test_an_adaptive_loss_samples_what_it_has_learned():
    loss = AdaptiveLoss(num_dims=3, alpha_hi=3.0, alpha_init=2.0, scale_init=0.5)
    draws = loss.sample(N, torch.Generator().manual_seed(2))
    assert draws.shape == (N, 3)
    assert stats.kstest(draws[:, 0].double().numpy(), stats.norm(scale=0.5).cdf).pvalue > 1e-3
