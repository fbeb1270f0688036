"""Metrics of image quality: sharpness, FID in a classifier's feature space, SSIM, PSNR and
reconstruction errors. Each works on tensors alone; ``robustvae evaluate`` runs them on a run."""

from robustvae.metrics.fid import frechet_distance
from robustvae.metrics.quality import (
    l1_per_image,
    psnr_per_image,
    squared_l2_per_image,
    ssim_per_image,
)
from robustvae.metrics.sharpness import Sharpness, sharpness, sharpness_per_image

__all__ = [
    "Sharpness",
    "frechet_distance",
    "l1_per_image",
    "psnr_per_image",
    "sharpness",
    "sharpness_per_image",
    "squared_l2_per_image",
    "ssim_per_image",
]
