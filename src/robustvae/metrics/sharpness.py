"""Sharpness (Chen et al., Sec. 4): the variance of an image's response to the Laplace filter
[[0, 1, 0], [1, -4, 1], [0, 1, 0]], averaged over images (the paper uses 1,000).

Convention: the filter is applied to each channel separately without padding (only interior
pixels, so borders add no artificial edges); an image's score is the variance of its
activations per channel, averaged over its channels. For one-channel images this is the
paper's definition exactly; for RGB it equals the mean of the three channels' sharpness.
Images are taken in [0, 1] (the scale of the paper's MNIST and CelebA numbers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LAPLACE = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def sharpness_per_image(images: Tensor) -> Tensor:
    """Sharpness of each image in an N×C×H×W batch (H, W ≥ 3), in float64."""
    if images.dim() != 4 or min(images.shape[-2:]) < 3:
        raise ValueError(
            f"expected images shaped (N, C, H, W) with H, W >= 3, got {tuple(images.shape)}"
        )
    x = images.detach().double()
    c = x.shape[1]
    kernel = torch.tensor(LAPLACE, dtype=x.dtype, device=x.device).expand(c, 1, 3, 3)
    response = F.conv2d(x, kernel, groups=c)
    return response.flatten(2).var(dim=2, unbiased=False).mean(dim=1)


def sharpness(images: Tensor) -> float:
    """Mean sharpness of a batch of images."""
    return sharpness_per_image(images).mean().item()


class Sharpness:
    """Accumulates sharpness over batches: ``update(images)`` then ``compute()``."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, images: Tensor) -> None:
        scores = sharpness_per_image(images)
        self.total += scores.sum().item()
        self.count += scores.numel()

    def compute(self) -> float:
        if not self.count:
            raise ValueError("no images seen")
        return self.total / self.count
