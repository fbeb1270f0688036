"""The self-supervised stereo objective's two parts: warping the right view into the left
one by a disparity map (differentiable bilinear sampling), and the edge-aware smoothness of
the disparity (Godard et al.; Monodepth2's mean-normalised form).

Convention (Middlebury, KITTI): a left pixel (y, x) with disparity d sees right pixel
(y, x − d). Disparities are in pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["edge_aware_smoothness", "warp_right_to_left"]


def warp_right_to_left(right: Tensor, disparity: Tensor, offset: int = 0) -> Tensor:
    """The right view resampled into the left one: out[y, x] = right[y, x + offset − d(y, x)].

    ``right`` is N×C×H×W', ``disparity`` N×1×H×W (W ≤ W'); ``offset`` is how many columns
    the right crop starts before the left one (a right crop reaching ``offset`` pixels further
    left lets every disparity up to ``offset`` find its match inside it). Columns outside the
    right crop take its edge values ("border" padding)."""
    n, _, height, width_right = right.shape
    if disparity.dim() != 4 or disparity.shape[1] != 1 or disparity.shape[0] != n:
        raise ValueError(f"disparity must be N×1×H×W, got {tuple(disparity.shape)}")
    if disparity.shape[2] != height:
        raise ValueError(f"right has {height} rows, disparity {disparity.shape[2]}")
    width = disparity.shape[-1]
    cols = torch.arange(width, device=right.device, dtype=right.dtype) + offset
    x = cols.view(1, 1, width) - disparity[:, 0]
    y = torch.arange(height, device=right.device, dtype=right.dtype).view(1, height, 1)
    grid = torch.stack(
        [2 * x / max(width_right - 1, 1) - 1, (2 * y / max(height - 1, 1) - 1).expand_as(x)], -1
    )
    return F.grid_sample(right, grid, mode="bilinear", padding_mode="border", align_corners=True)


def edge_aware_smoothness(disparity: Tensor, image: Tensor) -> Tensor:
    """mean |∂x d*|·exp(−|∂x I|) + mean |∂y d*|·exp(−|∂y I|), d* = d / mean(d) per image and
    |∂I| averaged over channels: disparity may jump where the image has an edge."""
    d = disparity / (disparity.mean((2, 3), keepdim=True) + 1e-7)
    dx = (d[..., :, 1:] - d[..., :, :-1]).abs()
    dy = (d[..., 1:, :] - d[..., :-1, :]).abs()
    ix = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()
