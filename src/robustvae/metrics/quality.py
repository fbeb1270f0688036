"""Reconstruction quality per image: squared L2 and L1 errors (summed over pixels), PSNR and
SSIM, with an explicit data range of 1 (images in [0, 1]).

SSIM is torchmetrics' (Gaussian window 11, σ = 1.5, K1 = 0.01, K2 = 0.03), which since
torchmetrics 1.5 pads borders by reflection; scikit-image instead crops them, so its values
differ slightly near the border. We report torchmetrics' convention.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

DATA_RANGE = 1.0


def _check_pair(preds: Tensor, target: Tensor) -> None:
    if preds.shape != target.shape or preds.dim() != 4:
        raise ValueError(
            f"expected two (N, C, H, W) batches of one shape, got {tuple(preds.shape)} and "
            f"{tuple(target.shape)}"
        )


def squared_l2_per_image(preds: Tensor, target: Tensor) -> Tensor:
    _check_pair(preds, target)
    return (preds.double() - target.double()).pow(2).flatten(1).sum(1)


def l1_per_image(preds: Tensor, target: Tensor) -> Tensor:
    _check_pair(preds, target)
    return (preds.double() - target.double()).abs().flatten(1).sum(1)


def psnr_per_image(preds: Tensor, target: Tensor) -> Tensor:
    """10·log10(range² / MSE) in dB; +inf for a perfect reconstruction."""
    _check_pair(preds, target)
    mse = (preds.double() - target.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(DATA_RANGE**2 / mse)


def ssim_per_image(preds: Tensor, target: Tensor) -> Tensor:
    _check_pair(preds, target)
    return structural_similarity_index_measure(
        preds.double(), target.double(), data_range=DATA_RANGE, reduction="none"
    )
