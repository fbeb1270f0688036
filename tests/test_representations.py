"""Tests of robustvae.representations against independent float64 references.

References used: the BT.601 analog YUV formulas, ``scipy.fft.dctn``, the published CDF 9/7
analysis filter taps (a convolution with whole-sample symmetric extension written here),
PyWavelets' ``bior4.4`` (when installed), and Jacobians by ``torch.autograd.functional``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.fft
import torch
from conftest import DEVICES
from hypothesis import given, settings
from hypothesis import strategies as st

from robustvae import representations as R
from robustvae.losses import AdaptiveImageLoss
from robustvae.losses.adaptive import AdaptiveLoss
from robustvae.representations import (
    COLORS,
    REPRESENTATIONS,
    Representation,
    cdf97,
    dct2,
    default_levels,
    icdf97,
    idct2,
    rgb_to_yuv,
    yuv_to_rgb,
)

F32_TOL = 1e-5


def _rand(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64).to(dtype)


def _randn(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def _max_err(a, b):
    return (a.double() - b.double()).abs().max().item()


def _jacobian(fn, x):
    """Dense Jacobian of an image → image map at x (one image, shape (1, C, H, W))."""
    n = x.numel()
    return torch.autograd.functional.jacobian(fn, x, vectorize=True).reshape(n, n)


# =============================================================================== colour


@pytest.mark.parametrize("dtype, tol", [(torch.float32, F32_TOL), (torch.float64, 1e-12)])
def test_yuv_round_trip(dtype, tol):
    x = _rand(4, 3, 9, 7, dtype=dtype)
    yuv = rgb_to_yuv(x)
    assert yuv.dtype == dtype and yuv.shape == x.shape
    assert _max_err(yuv_to_rgb(yuv), x) < tol
    y = _randn(4, 3, 9, 7, dtype=dtype, seed=1)
    assert _max_err(rgb_to_yuv(yuv_to_rgb(y)), y) < tol


def test_yuv_of_gray_is_gray_with_no_chroma():
    gray = _rand(5, 1, 6, 4)
    yuv = rgb_to_yuv(gray.expand(5, 3, 6, 4))
    torch.testing.assert_close(yuv[:, 0:1], gray, rtol=0, atol=1e-12)
    assert yuv[:, 1:].abs().max().item() < 1e-12


def test_yuv_matches_bt601_analog_formulas():
    rgb = _rand(3, 3, 5, 8, seed=2)
    r, g, b = rgb.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 0.436 * (b - y) / (1 - 0.114)  # U_max (B - Y) / (1 - W_B) ≈ 0.492 (B - Y)
    v = 0.615 * (r - y) / (1 - 0.299)  # V_max (R - Y) / (1 - W_R) ≈ 0.877 (R - Y)
    yuv = rgb_to_yuv(rgb)
    torch.testing.assert_close(yuv[:, 0], y, rtol=0, atol=1e-12)  # Y exactly as BT.601
    torch.testing.assert_close(yuv[:, 1], u, rtol=0, atol=1e-4)
    torch.testing.assert_close(yuv[:, 2], v, rtol=0, atol=1e-4)
    # and the textbook inverse
    y_, u_, v_ = yuv.unbind(1)
    back = torch.stack(
        [y_ + 1.13983 * v_, y_ - 0.39465 * u_ - 0.58060 * v_, y_ + 2.03211 * u_], dim=1
    )
    torch.testing.assert_close(yuv_to_rgb(yuv), back, rtol=0, atol=1e-4)


def test_yuv_log_abs_det_constant():
    m = torch.autograd.functional.jacobian(rgb_to_yuv, _rand(3, 1, 1)).reshape(3, 3)
    assert math.isclose(R.YUV_LOG_ABS_DET, torch.linalg.slogdet(m)[1].item(), abs_tol=1e-12)


def test_yuv_accepts_extra_batch_dims_and_unbatched():
    x = _rand(2, 2, 3, 4, 5)
    torch.testing.assert_close(rgb_to_yuv(x)[1, 0], rgb_to_yuv(x[1, 0]))


@pytest.mark.parametrize("fn", [rgb_to_yuv, yuv_to_rgb])
@pytest.mark.parametrize("shape", [(2, 1, 4, 4), (2, 4, 4, 4), (3, 4), (3,)])
def test_yuv_rejects_wrong_channels(fn, shape):
    with pytest.raises(ValueError, match="3 channels"):
        fn(torch.zeros(shape))


def test_yuv_gradcheck():
    x = _rand(1, 3, 2, 3).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_yuv, (x,))
    assert torch.autograd.gradcheck(yuv_to_rgb, (x,))


# =============================================================================== DCT

DCT_SIZES = [(28, 27), (64, 64), (1, 5), (5, 1), (8, 3)]


@pytest.mark.parametrize("hw", DCT_SIZES)
def test_dct_matches_scipy(hw):
    x = _randn(2, 3, *hw)
    ref = scipy.fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(dct2(x).numpy(), ref, rtol=0, atol=1e-12)
    iref = scipy.fft.idctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(idct2(x).numpy(), iref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("hw", DCT_SIZES)
def test_dct_is_orthonormal(hw):
    x = _randn(3, 2, *hw, seed=3)
    y = dct2(x)
    # Parseval, per image and channel
    torch.testing.assert_close(
        y.square().sum((-2, -1)), x.square().sum((-2, -1)), rtol=1e-12, atol=0
    )
    # inner products preserved as well (orthogonal, not merely norm preserving per image)
    z = _randn(3, 2, *hw, seed=4)
    torch.testing.assert_close((dct2(z) * y).sum(), (z * x).sum(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("hw", DCT_SIZES)
def test_dct_round_trip_float32(hw):
    x = _rand(4, 3, *hw, dtype=torch.float32)
    y = dct2(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert _max_err(idct2(y), x) < F32_TOL
    assert _max_err(dct2(idct2(x)), x) < F32_TOL


def test_dct_of_constant_is_dc_only():
    x = torch.full((1, 1, 6, 10), 0.7, dtype=torch.float64)
    y = dct2(x)
    assert math.isclose(y[0, 0, 0, 0].item(), 0.7 * math.sqrt(60), rel_tol=1e-12)
    y[0, 0, 0, 0] = 0
    assert y.abs().max().item() < 1e-12


def test_dct_rejects_too_few_dims():
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        dct2(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        idct2(torch.zeros(4, 4))


def test_dct_gradcheck():
    x = _randn(1, 2, 3, 4).requires_grad_()
    assert torch.autograd.gradcheck(dct2, (x,))
    assert torch.autograd.gradcheck(idct2, (x,))


# =============================================================================== CDF 9/7

# Published CDF 9/7 analysis filters (Cohen, Daubechies & Feauveau; JPEG 2000's 9/7), taps at
# offsets 0, ±1, ±2, … normalised so the low-pass sums to 1 and the high-pass centre is ~1.115.
CDF97_LO = (
    0.6029490182363579,
    0.2668641184428723,
    -0.07822326652898785,
    -0.01686411844287495,
    0.02674875741080976,
)
CDF97_HI = (1.115087052456994, -0.5912717631142470, -0.05754352622849957, 0.09127176311424948)


def _wss(i: int, n: int) -> int:
    """Whole-sample symmetric extension: x[-i] = x[i], x[n-1+i] = x[n-1-i]."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i %= period
    return i if i < n else period - i


def _ref_analysis_1d(x: np.ndarray) -> np.ndarray:
    """One level along the last axis by direct convolution: [√2·low | high/√2]."""
    n = x.shape[-1]
    lo = []
    for k in range((n + 1) // 2):
        lo.append(sum(CDF97_LO[abs(m)] * x[..., _wss(2 * k + m, n)] for m in range(-4, 5)))
    hi = []
    for k in range(n // 2):
        hi.append(sum(CDF97_HI[abs(m)] * x[..., _wss(2 * k + 1 + m, n)] for m in range(-3, 4)))
    out = [math.sqrt(2) * v for v in lo] + [v / math.sqrt(2) for v in hi]
    return np.stack(out, axis=-1)


def _ref_cdf97(x: np.ndarray, levels: int) -> np.ndarray:
    out = x.copy()
    h, w = x.shape[-2:]
    for _ in range(levels):
        band = _ref_analysis_1d(out[..., :h, :w])
        band = np.swapaxes(_ref_analysis_1d(np.swapaxes(band, -1, -2)), -1, -2)
        out[..., :h, :w] = band
        h, w = (h + 1) // 2, (w + 1) // 2
    return out


def _max_levels(h: int, w: int) -> int:
    levels = 0
    while h >= 2 and w >= 2:
        levels += 1
        h, w = (h + 1) // 2, (w + 1) // 2
    return levels


def test_published_taps_reference_is_sane():
    # The reference itself: low-pass DC gain 1, high-pass with 4 vanishing moments.
    lo = np.array(CDF97_LO[:0:-1] + CDF97_LO)
    hi = np.array(CDF97_HI[:0:-1] + CDF97_HI)
    assert math.isclose(lo.sum(), 1.0, abs_tol=1e-14)
    m = np.arange(-3, 4)
    for p in range(4):
        assert abs((hi * m**p).sum()) < 1e-12
    assert abs((hi * m**4).sum()) > 1e-2


@pytest.mark.parametrize("n", [2, 3, 4, 5, 9, 16, 17])
def test_lifting_impulse_responses_are_cdf97_taps(n):
    """The lifting scheme, including the symmetric borders, is the published 9/7 filter bank
    (low-pass ×√2, high-pass ×1/√2)."""
    x = torch.eye(n, dtype=torch.float64)[:, None, None, :]  # one impulse per row
    got = R._analysis_1d(x)[:, 0, 0, :].numpy()
    ref = _ref_analysis_1d(np.eye(n))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("hw, levels", [((28, 28), 2), ((27, 31), 3), ((7, 6), 2), ((16, 9), 1)])
def test_cdf97_matches_convolution_reference(hw, levels):
    x = _randn(2, 3, *hw, seed=5)
    np.testing.assert_allclose(
        cdf97(x, levels).numpy(), _ref_cdf97(x.numpy(), levels), rtol=0, atol=1e-11
    )


@pytest.mark.parametrize("hw, levels", [((28, 27), 1), ((32, 32), 3), ((7, 6), 2), ((27, 31), 2)])
def test_cdf97_matches_pywavelets_bior44(hw, levels):
    """PyWavelets' bior4.4 in 'reflect' mode (whole-sample symmetric) is the same transform:
    drop its 2 leading boundary coefficients per axis and negate its high-pass."""
    import pywt

    x = _randn(2, 3, *hw, seed=6)
    got = cdf97(x, levels).numpy()
    ref = np.zeros_like(got)
    approx = x.numpy()
    for _ in range(levels):
        h, w = approx.shape[-2:]
        he, we = (h + 1) // 2, (w + 1) // 2
        c = pywt.dwtn(approx, "bior4.4", mode="reflect", axes=(-2, -1))
        rows, cols = slice(2, 2 + he), slice(2, 2 + we)
        rows_hi, cols_hi = slice(2, 2 + h // 2), slice(2, 2 + w // 2)
        approx = c["aa"][..., rows, cols]
        ref[..., :he, :we] = approx
        ref[..., :he, we:w] = -c["ad"][..., rows, cols_hi]  # low along H, high along W
        ref[..., he:h, :we] = -c["da"][..., rows_hi, cols]
        ref[..., he:h, we:w] = c["dd"][..., rows_hi, cols_hi]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "hw, levels",
    [
        ((28, 28), 1),
        ((28, 28), 2),
        ((64, 64), 4),
        ((64, 64), 6),
        ((27, 31), 3),
        ((7, 6), 2),
        ((7, 6), 3),
        ((2, 2), 1),
        ((3, 3), 2),
        ((3, 2), 1),
    ],
)
@pytest.mark.parametrize("dtype, tol", [(torch.float32, F32_TOL), (torch.float64, 1e-10)])
def test_cdf97_round_trip(hw, levels, dtype, tol):
    x = _rand(3, 2, *hw, dtype=dtype, seed=7)
    y = cdf97(x, levels)
    assert y.shape == x.shape and y.dtype == dtype
    assert _max_err(icdf97(y, levels), x) < tol
    assert _max_err(cdf97(icdf97(x, levels), levels), x) < tol


@settings(max_examples=40, deadline=None)
@given(h=st.integers(2, 40), w=st.integers(2, 40), data=st.data())
def test_cdf97_round_trip_any_size_and_levels(h, w, data):
    levels = data.draw(st.integers(1, _max_levels(h, w)), label="levels")
    x = _randn(1, 1, h, w, seed=h * 100 + w)
    assert _max_err(icdf97(cdf97(x, levels), levels), x) < 1e-10
    with pytest.raises(ValueError, match="wavelet levels"):
        cdf97(x, _max_levels(h, w) + 1)
    with pytest.raises(ValueError, match="wavelet levels"):
        icdf97(x, _max_levels(h, w) + 1)


@pytest.mark.parametrize("hw, levels", [((8, 8), 4), ((1, 5), 1), ((5, 1), 1), ((28, 28), 6)])
def test_cdf97_too_many_levels_raises(hw, levels):
    x = torch.zeros(1, 1, *hw)
    with pytest.raises(ValueError, match="fewer than"):
        cdf97(x, levels)
    with pytest.raises(ValueError, match="fewer than"):
        icdf97(x, levels)


def test_cdf97_negative_levels_raise():
    with pytest.raises(ValueError, match=">= 1"):
        cdf97(torch.zeros(1, 1, 8, 8), -1)


def test_cdf97_zero_levels_raise():
    with pytest.raises(ValueError, match=">= 1"):
        cdf97(torch.zeros(1, 1, 8, 8), 0)


@pytest.mark.parametrize("hw", [(28, 28), (27, 31), (7, 6), (64, 64)])
def test_default_levels(hw):
    x = _randn(1, 1, *hw)
    levels = default_levels(*hw)
    torch.testing.assert_close(cdf97(x), cdf97(x, levels), rtol=0, atol=0)
    torch.testing.assert_close(icdf97(cdf97(x)), x, rtol=0, atol=1e-10)
    coarsest = min(hw)
    for _ in range(levels):
        coarsest = (coarsest + 1) // 2
    if min(hw) >= 8:  # smaller images get the minimum, 1 level
        assert 4 <= coarsest <= 8  # "halve until the coarsest band is about 4-7 pixels"
    else:
        assert levels == 1
    assert default_levels(28, 28) == 2 and default_levels(64, 64) == 4


@pytest.mark.parametrize("hw", [(16, 16), (7, 6), (9, 11), (2, 3)])
def test_cdf97_constant_image(hw):
    """Whole-sample symmetric extension keeps a constant constant: every detail band is 0,
    borders included, and each level multiplies the low band by 2 (√2 per dimension)."""
    levels = _max_levels(*hw)
    x = torch.full((1, 2, *hw), 0.3, dtype=torch.float64)
    for lev in range(1, levels + 1):
        y = cdf97(x, lev)
        h, w = hw
        for _ in range(lev):
            h, w = (h + 1) // 2, (w + 1) // 2
        torch.testing.assert_close(
            y[..., :h, :w], torch.full_like(y[..., :h, :w], 0.3 * 2**lev), rtol=1e-12, atol=0
        )
        y[..., :h, :w] = 0
        assert y.abs().max().item() < 1e-12


def _bands(y, h, w):
    he, we = (h + 1) // 2, (w + 1) // 2
    return {
        "low H, high W": y[..., :he, we:],
        "high H, low W": y[..., he:, :we],
        "high H, high W": y[..., he:, we:],
    }


def test_cdf97_four_vanishing_moments_in_the_interior():
    h, w = 32, 30
    i = torch.arange(h, dtype=torch.float64)[:, None] / h
    j = torch.arange(w, dtype=torch.float64)[None, :] / w
    cubic = 1 + 2 * i - 3 * j + 0.5 * i * j - 2 * i**2 + j**2 + 0.7 * i**3 - 1.3 * j**3
    cubic = cubic + 0.9 * i**2 * j - 0.4 * i * j**2  # total degree 3
    y = cdf97(cubic[None, None], 1)
    inner = (slice(2, -3), slice(2, -3))  # away from the symmetric extension's reach
    for name, band in _bands(y, h, w).items():
        assert band[..., inner[0], inner[1]].abs().max().item() < 1e-12, name
    # ... and no more than 4: a quartic along W leaks into the high-W bands
    quartic = (j**4).expand(h, w)
    yq = _bands(cdf97(quartic[None, None], 1), h, w)
    assert yq["low H, high W"][..., 2:-3, 2:-3].abs().min().item() > 1e-6
    assert yq["high H, low W"].abs().max().item() < 1e-12  # constant along H


def test_cdf97_linear_ramp_details_vanish_in_the_interior_only():
    h, w = 20, 24
    ramp = torch.arange(w, dtype=torch.float64).expand(1, 1, h, w)
    y = cdf97(ramp, 1)
    hi_w = _bands(y, h, w)["low H, high W"]
    assert hi_w[..., :, 1:-2].abs().max().item() < 1e-12
    # the symmetric extension turns the ramp into a "V" at the far border: not annihilated
    assert hi_w[..., :, -1].abs().min().item() > 1e-3


@pytest.mark.parametrize("levels", [1, 2])
def test_cdf97_gradcheck(levels):
    x = _randn(1, 2, 7, 6, seed=8).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: cdf97(t, levels), (x,))
    assert torch.autograd.gradcheck(lambda t: icdf97(t, levels), (x,))


@pytest.mark.parametrize("hw, levels", [((8, 8), 2), ((7, 6), 2), ((5, 9), 1), ((16, 10), 3)])
def test_cdf97_log_abs_det(hw, levels):
    x = _randn(1, 1, *hw)
    jac = _jacobian(lambda t: cdf97(t, levels), x)
    expected = torch.linalg.slogdet(jac)[1].item()
    assert math.isclose(R._cdf97_log_abs_det(*hw, levels), expected, abs_tol=1e-9)
    if hw[0] % 2 == 0 and hw[1] % 2 == 0 and levels == 1:
        assert abs(expected) < 1e-9  # volume preserving on even lengths


# =============================================================================== Representation

COMBOS = list(itertools.product(REPRESENTATIONS, COLORS))


@pytest.mark.parametrize("representation, color", COMBOS)
@pytest.mark.parametrize("chw", [(3, 6, 5), (3, 8, 8), (3, 28, 28)])
def test_representation_round_trip(representation, color, chw):
    t = Representation(chw[1:], chw[0], representation, color)
    for dtype, tol in ((torch.float32, F32_TOL), (torch.float64, 1e-10)):
        x = _rand(4, *chw, dtype=dtype)
        y = t(x)
        assert y.shape == x.shape and y.dtype == dtype
        assert _max_err(t.inverse(y), x) < tol
        assert _max_err(t(t.inverse(x)), x) < tol


@pytest.mark.parametrize("representation, color", COMBOS)
def test_representation_composes_the_functions(representation, color):
    x = _rand(2, 3, 8, 8)
    t = Representation(8, 3, representation, color, wavelet_levels=2)
    z = rgb_to_yuv(x) if color == "yuv" else x
    z = {"pixels": z, "dct": dct2(z), "wavelet": cdf97(z, 2)}[representation]
    torch.testing.assert_close(t(x), z, rtol=0, atol=1e-14)


@pytest.mark.parametrize("representation, color", COMBOS)
@pytest.mark.parametrize("chw, levels", [((3, 6, 5), None), ((3, 8, 8), 2), ((3, 7, 6), 2)])
def test_representation_log_abs_det_matches_jacobian(representation, color, chw, levels):
    t = Representation(chw[1:], chw[0], representation, color, wavelet_levels=levels)
    jac = _jacobian(t, _rand(1, *chw))
    expected = torch.linalg.slogdet(jac)[1].item()
    assert math.isclose(t.log_abs_det(), expected, abs_tol=1e-9)
    inv_jac = _jacobian(t.inverse, _rand(1, *chw))
    assert math.isclose(-t.log_abs_det(), torch.linalg.slogdet(inv_jac)[1].item(), abs_tol=1e-9)


def test_representation_single_channel_and_int_size():
    t = Representation(10, 1, "wavelet")
    assert t.shape == (1, 10, 10) and t.levels == default_levels(10, 10)
    x = _rand(2, 1, 10, 10)
    torch.testing.assert_close(t.inverse(t(x)), x, rtol=0, atol=1e-12)
    assert Representation((4, 7), 2, "dct").shape == (2, 4, 7)


def test_representation_has_no_state():
    t = Representation(8, 3, "wavelet", "yuv")
    assert list(t.parameters()) == [] and t.state_dict() == {}
    assert "wavelet" in repr(t) and "yuv" in repr(t)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(representation="fourier"), r"representation must be one of \('pixels', 'dct'"),
        (dict(color="hsv"), r"color must be one of \('rgb', 'yuv'\)"),
        (dict(channels=1, color="yuv"), "3 channels"),
        (dict(channels=4, color="yuv"), "3 channels"),
        (dict(channels=0), "positive"),
        (dict(image_size=(0, 4)), "positive"),
        (dict(image_size=(1, 5), representation="wavelet"), "wavelet levels"),
        (dict(image_size=8, representation="wavelet", wavelet_levels=4), "wavelet levels"),
    ],
)
def test_representation_invalid_arguments(kwargs, match):
    args = dict(image_size=8, channels=3) | kwargs
    with pytest.raises(ValueError, match=match):
        Representation(**args)


@pytest.mark.parametrize("shape", [(2, 3, 8, 7), (2, 1, 8, 8), (3, 8, 8), (2, 3, 7, 8)])
def test_representation_rejects_wrong_input_shape(shape):
    t = Representation(8, 3, "dct", "yuv")
    with pytest.raises(ValueError, match=r"\(N, 3, 8, 8\)"):
        t(torch.zeros(shape))
    with pytest.raises(ValueError, match=r"\(N, 3, 8, 8\)"):
        t.inverse(torch.zeros(shape))


def test_representation_zero_wavelet_levels_raise():
    with pytest.raises(ValueError):
        Representation(16, 3, "wavelet", wavelet_levels=0)


@pytest.fixture
def _fresh_caches():
    R._yuv_matrices.cache_clear()
    R._dct_matrix.cache_clear()
    yield
    R._yuv_matrices.cache_clear()
    R._dct_matrix.cache_clear()


@pytest.mark.usefixtures("_fresh_caches")
def test_cached_matrices_survive_inference_mode():
    t = Representation(8, 3, "dct", "yuv")
    with torch.inference_mode():
        t(torch.rand(1, 3, 8, 8))
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    t(x).sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "cpu"] or ["cpu"])
@pytest.mark.parametrize("representation, color", COMBOS)
def test_representation_on_each_device_matches_cpu(representation, color, device):
    t = Representation((12, 10), 3, representation, color)
    x = _rand(2, 3, 12, 10)
    y = t(x.to(device))
    assert y.device.type == device
    torch.testing.assert_close(y.cpu(), t(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(t.inverse(y).cpu(), x, rtol=0, atol=1e-10)


# =============================================================================== AdaptiveImageLoss


def _randomise(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("representation, color", COMBOS)
@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_adaptive_image_loss_is_coefficient_nll_minus_log_det(representation, color, reduction):
    chw = (3, 6, 5)
    loss = AdaptiveImageLoss(chw[1:], 3, representation, color, reduction=reduction)
    _randomise(loss)  # α and c differ per coefficient
    ref = AdaptiveLoss(chw, reduction="none")
    ref.load_state_dict(loss.adaptive.state_dict())
    x, y = _rand(4, *chw, seed=1), _rand(4, *chw, seed=2)

    def coefficients(img):
        z = rgb_to_yuv(img) if color == "yuv" else img
        return {"pixels": z, "dct": dct2(z), "wavelet": cdf97(z, default_levels(6, 5))}[
            representation
        ]

    per_element = ref(coefficients(x), coefficients(y))
    log_det = torch.linalg.slogdet(_jacobian(lambda t: coefficients(t), x[:1]))[1].item()
    got = loss(x, y)
    if reduction == "sum":
        expected = per_element.sum() - 4 * log_det
    elif reduction == "mean":
        expected = per_element.mean() - log_det / math.prod(chw)
    else:
        expected = per_element - log_det / math.prod(chw)
        assert got.shape == x.shape
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_adaptive_image_loss_on_rgb_pixels_is_adaptive_loss(reduction):
    loss = AdaptiveImageLoss((5, 4), 3, reduction=reduction)
    _randomise(loss, seed=3)
    ref = AdaptiveLoss((3, 5, 4), reduction=reduction)
    ref.load_state_dict(loss.adaptive.state_dict())
    x, y = _rand(2, 3, 5, 4, seed=4), _rand(2, 3, 5, 4, seed=5)
    torch.testing.assert_close(loss(x, y), ref(x, y), rtol=0, atol=0)
    assert loss.reduction == reduction


def test_adaptive_image_loss_parameters():
    loss = AdaptiveImageLoss((6, 5), 3, "wavelet", "yuv", alpha_init=1.5, scale_init=0.25)
    assert loss.alpha().shape == (3, 6, 5) and loss.scale().shape == (3, 6, 5)
    torch.testing.assert_close(loss.alpha(), torch.full((3, 6, 5), 1.5))
    torch.testing.assert_close(loss.scale(), torch.full((3, 6, 5), 0.25))
    params = list(loss.parameters())
    assert len(params) == 2
    assert all(isinstance(p, torch.nn.Parameter) and p.shape == (3, 6, 5) for p in params)
    assert loss.log_det_per_element * 90 == pytest.approx(loss.transform.log_abs_det())


def test_adaptive_image_loss_gradient_step_reduces_loss():
    loss = AdaptiveImageLoss((8, 8), 3, "dct", "yuv", reduction="sum")
    x = _rand(16, 3, 8, 8, dtype=torch.float32, seed=6)
    y = x + 0.05 * _randn(16, 3, 8, 8, dtype=torch.float32, seed=7)
    opt = torch.optim.Adam(loss.parameters(), lr=0.05)
    first = loss(x, y)
    values = []
    for _ in range(10):
        opt.zero_grad()
        value = loss(x, y)
        value.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in loss.parameters())
        opt.step()
        values.append(value.item())
    assert loss(x, y).item() < first.item() - 1.0
    assert values == sorted(values, reverse=True)


def test_adaptive_image_loss_gradient_reaches_the_input():
    loss = AdaptiveImageLoss((6, 5), 3, "wavelet", "yuv")
    x = _rand(2, 3, 6, 5, seed=8).requires_grad_()
    loss(x, _rand(2, 3, 6, 5, seed=9)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0


def test_adaptive_image_loss_validates_like_representation():
    with pytest.raises(ValueError, match="representation must be one of"):
        AdaptiveImageLoss(8, 3, "fourier")
    with pytest.raises(ValueError, match="color must be one of"):
        AdaptiveImageLoss(8, 3, color="lab")
    loss = AdaptiveImageLoss(8, 3, "dct")
    with pytest.raises(ValueError, match=r"\(N, 3, 8, 8\)"):
        loss(torch.zeros(1, 3, 8, 7), torch.zeros(1, 3, 8, 7))


def test_integer_images_are_rejected():
    for fn in (R.rgb_to_yuv, R.dct2, R.cdf97):
        with pytest.raises(ValueError, match="floating point"):
            fn(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
