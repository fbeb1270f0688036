"""Invertible linear image representations, batched on N×C×H×W and differentiable.

Barron's VAE experiment models images not only as RGB pixels but as DCT or wavelet
coefficients in YUV. Each representation here is exactly invertible (to float rounding), keeps
the image's shape (one coefficient per pixel, so a per-coefficient α and c line up), and knows
the log-determinant of its Jacobian, so a likelihood over coefficients converts to one over
pixels:

- ``rgb_to_yuv`` / ``yuv_to_rgb``: the analog YUV of BT.601 (as ``tf.image.rgb_to_yuv``).
- ``dct2`` / ``idct2``: the orthonormal 2-D DCT-II of the whole image (determinant 1).
- ``cdf97`` / ``icdf97``: the CDF 9/7 wavelet (JPEG 2000's irreversible one) by lifting, with
  whole-sample symmetric extension, any size, several levels, packed in place (the coarsest
  band at the top-left). Its bands are scaled by √2/K and K/√2 (K = 1.2301741…): a constant
  gains √2 per dimension and level, as in an orthonormal wavelet, and the determinant is 1 on
  even lengths (the transform is biorthogonal, not orthonormal).

A loss compared in a representation is ``robustvae.losses.RepresentedLoss``.
"""

from __future__ import annotations

import math
from functools import cache

import torch
from torch import Tensor, nn

__all__ = [
    "rgb_to_yuv",
    "yuv_to_rgb",
    "dct2",
    "idct2",
    "cdf97",
    "icdf97",
    "default_levels",
    "Representation",
    "REPRESENTATIONS",
    "COLORS",
]

REPRESENTATIONS = ("pixels", "dct", "wavelet")
COLORS = ("rgb", "yuv")

# ----------------------------------------------------------------------------- colour

_RGB_TO_YUV = (
    (0.299, 0.587, 0.114),
    (-0.14714119, -0.28886916, 0.43601035),
    (0.61497538, -0.51496512, -0.10001026),
)


@cache
def _yuv_matrices(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    with torch.inference_mode(False):  # a cached inference tensor would break later autograd
        forward = torch.tensor(_RGB_TO_YUV, dtype=torch.float64)
        inverse = torch.linalg.inv(forward)
        return forward.to(dtype=dtype, device=device), inverse.to(dtype=dtype, device=device)


YUV_LOG_ABS_DET = math.log(abs(torch.linalg.det(torch.tensor(_RGB_TO_YUV, dtype=torch.float64))))


def _check_image(x: Tensor, channels: int | None = None) -> None:
    if not x.is_floating_point():
        raise ValueError(f"images must be floating point (e.g. in [0, 1]), got {x.dtype}")
    if x.dim() < 3 or (channels is not None and x.shape[-3] != channels):
        want = f"{channels} channels" if channels else "at least 3 dimensions"
        raise ValueError(f"expected images shaped (N, C, H, W) with {want}, got {tuple(x.shape)}")


def _mix_channels(matrix: Tensor, x: Tensor) -> Tensor:
    return torch.einsum("oc,...chw->...ohw", matrix, x)


def rgb_to_yuv(rgb: Tensor) -> Tensor:
    """RGB → YUV on (..., 3, H, W)."""
    _check_image(rgb, 3)
    return _mix_channels(_yuv_matrices(rgb.dtype, rgb.device)[0], rgb)


def yuv_to_rgb(yuv: Tensor) -> Tensor:
    """YUV → RGB, the exact inverse of ``rgb_to_yuv``."""
    _check_image(yuv, 3)
    return _mix_channels(_yuv_matrices(yuv.dtype, yuv.device)[1], yuv)


# ----------------------------------------------------------------------------- DCT


@cache
def _dct_matrix(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    with torch.inference_mode(False):  # a cached inference tensor would break later autograd
        k = torch.arange(n, dtype=torch.float64)[:, None]
        i = torch.arange(n, dtype=torch.float64)[None, :]
        basis = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
        basis[0] /= math.sqrt(2.0)
        return basis.to(dtype=dtype, device=device)


def dct2(x: Tensor) -> Tensor:
    """Orthonormal 2-D DCT-II over the last two dimensions."""
    _check_image(x)
    rows = _dct_matrix(x.shape[-2], x.dtype, x.device)
    cols = _dct_matrix(x.shape[-1], x.dtype, x.device)
    return rows @ x @ cols.T


def idct2(y: Tensor) -> Tensor:
    """Inverse of ``dct2`` (its transpose)."""
    _check_image(y)
    rows = _dct_matrix(y.shape[-2], y.dtype, y.device)
    cols = _dct_matrix(y.shape[-1], y.dtype, y.device)
    return rows.T @ y @ cols


# ----------------------------------------------------------------------------- CDF 9/7

_LIFT = (-1.586134342059924, -0.052980118572961, 0.882911075530934, 0.443506852043971)
_K = 1.230174104914001
_LOW_GAIN = math.sqrt(2.0) / _K  # the high band gets 1 / _LOW_GAIN


def _neighbour_sum_of_odd(even: Tensor, n_odd: int) -> Tensor:
    """For each odd sample 2i+1, x[2i] + x[2i+2], mirroring x[n] = x[n-2] at the end."""
    padded = torch.cat([even, even[..., -1:]], dim=-1) if even.shape[-1] == n_odd else even
    return padded[..., :n_odd] + padded[..., 1 : n_odd + 1]


def _neighbour_sum_of_even(odd: Tensor, n_even: int) -> Tensor:
    """For each even sample 2i, x[2i-1] + x[2i+1], mirroring x[-1] = x[1] and x[n] = x[n-2]."""
    parts = [odd[..., :1], odd] + ([odd[..., -1:]] if n_even > odd.shape[-1] else [])
    padded = torch.cat(parts, dim=-1)
    return padded[..., :n_even] + padded[..., 1 : n_even + 1]


def _analysis_1d(x: Tensor) -> Tensor:
    """One level along the last dimension: [low band | high band], same length."""
    even, odd = x[..., 0::2], x[..., 1::2]
    n_even, n_odd = even.shape[-1], odd.shape[-1]
    for i, c in enumerate(_LIFT):
        if i % 2 == 0:
            odd = odd + c * _neighbour_sum_of_odd(even, n_odd)
        else:
            even = even + c * _neighbour_sum_of_even(odd, n_even)
    return torch.cat([even * _LOW_GAIN, odd / _LOW_GAIN], dim=-1)


def _synthesis_1d(y: Tensor) -> Tensor:
    n = y.shape[-1]
    n_even = (n + 1) // 2
    even, odd = y[..., :n_even] / _LOW_GAIN, y[..., n_even:] * _LOW_GAIN
    n_odd = odd.shape[-1]
    for i in reversed(range(len(_LIFT))):
        c = _LIFT[i]
        if i % 2 == 0:
            odd = odd - c * _neighbour_sum_of_odd(even, n_odd)
        else:
            even = even - c * _neighbour_sum_of_even(odd, n_even)
    x = y.new_empty(y.shape)
    x[..., 0::2] = even
    x[..., 1::2] = odd
    return x


def _along(fn, x: Tensor, dim: int) -> Tensor:
    return fn(x.transpose(dim, -1)).transpose(dim, -1)


def default_levels(height: int, width: int) -> int:
    """Levels used when none are given: halve until the coarsest band is about 4-7 pixels."""
    return max(1, int(math.log2(min(height, width))) - 2)


def _level_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    if levels < 1:
        raise ValueError(f"wavelet levels must be >= 1, got {levels}")
    sizes, h, w = [], height, width
    for _ in range(levels):
        if h < 2 or w < 2:
            raise ValueError(
                f"a {height}×{width} image allows fewer than {levels} wavelet levels "
                f"(each level needs a band at least 2×2)"
            )
        sizes.append((h, w))
        h, w = (h + 1) // 2, (w + 1) // 2
    return sizes


def cdf97(x: Tensor, levels: int | None = None) -> Tensor:
    """Multi-level 2-D CDF 9/7 wavelet transform over the last two dimensions, packed in place."""
    _check_image(x)
    if levels is None:
        levels = default_levels(x.shape[-2], x.shape[-1])
    out = x
    for h, w in _level_sizes(x.shape[-2], x.shape[-1], levels):
        band = out[..., :h, :w]
        band = _along(_analysis_1d, _analysis_1d(band), -2)
        out = out.clone()
        out[..., :h, :w] = band
    return out


def icdf97(y: Tensor, levels: int | None = None) -> Tensor:
    """Inverse of ``cdf97`` with the same ``levels``."""
    _check_image(y)
    if levels is None:
        levels = default_levels(y.shape[-2], y.shape[-1])
    out = y
    for h, w in reversed(_level_sizes(y.shape[-2], y.shape[-1], levels)):
        band = out[..., :h, :w]
        band = _synthesis_1d(_along(_synthesis_1d, band, -2))
        out = out.clone()
        out[..., :h, :w] = band
    return out


def _cdf97_log_abs_det(height: int, width: int, levels: int) -> float:
    """Per channel: only odd lengths, with one more low than high sample, scale volume."""
    total = 0.0
    for h, w in _level_sizes(height, width, levels):
        total += (h * (w % 2) + w * (h % 2)) * math.log(_LOW_GAIN)
    return total


# ----------------------------------------------------------------------------- objects


class Representation(nn.Module):
    """A colour space (``'rgb'`` | ``'yuv'``) followed by a spatial transform (``'pixels'`` |
    ``'dct'`` | ``'wavelet'``), for images of a fixed (C, H, W). No state: nothing to save."""

    def __init__(
        self,
        image_size: int | tuple[int, int],
        channels: int,
        representation: str = "pixels",
        color: str = "rgb",
        wavelet_levels: int | None = None,
    ):
        super().__init__()
        if representation not in REPRESENTATIONS:
            raise ValueError(
                f"representation must be one of {REPRESENTATIONS}, got {representation!r}"
            )
        if color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}, got {color!r}")
        if color == "yuv" and channels != 3:
            raise ValueError(f"color='yuv' needs 3 channels, got {channels}")
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if h < 1 or w < 1 or channels < 1:
            raise ValueError(f"need a positive image size and channels, got {(channels, h, w)}")
        self.shape = (channels, h, w)
        self.representation, self.color = representation, color
        self.levels = None
        if representation == "wavelet":
            self.levels = default_levels(h, w) if wavelet_levels is None else wavelet_levels
            _level_sizes(h, w, self.levels)

    def forward(self, images: Tensor) -> Tensor:
        """Images (N, C, H, W) → coefficients of the same shape."""
        self._check(images)
        x = rgb_to_yuv(images) if self.color == "yuv" else images
        if self.representation == "dct":
            return dct2(x)
        if self.representation == "wavelet":
            return cdf97(x, self.levels)
        return x

    def inverse(self, coefficients: Tensor) -> Tensor:
        self._check(coefficients)
        x = coefficients
        if self.representation == "dct":
            x = idct2(x)
        elif self.representation == "wavelet":
            x = icdf97(x, self.levels)
        return yuv_to_rgb(x) if self.color == "yuv" else x

    def log_abs_det(self) -> float:
        """log |det ∂coefficients/∂pixels| for one image."""
        c, h, w = self.shape
        total = h * w * YUV_LOG_ABS_DET if self.color == "yuv" else 0.0
        if self.representation == "wavelet":
            total += c * _cdf97_log_abs_det(h, w, self.levels)
        return total

    def _check(self, x: Tensor) -> None:
        if tuple(x.shape[-3:]) != self.shape or x.dim() < 4:
            raise ValueError(
                f"expected images shaped (N, {', '.join(map(str, self.shape))}), "
                f"got {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return f"shape={self.shape}, representation={self.representation!r}, color={self.color!r}"
