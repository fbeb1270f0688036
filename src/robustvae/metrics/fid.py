"""Fréchet distance between two image sets in a feature network's space (Heusel et al.):
‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½). The arithmetic is torchmetrics' (float64 sums, its
matrix square root); the feature network is the dataset's classifier coding layer
(``robustvae.metrics.classifier``), as Chen et al. compute it, or any module with an integer
``num_features`` (e.g. Inception, loaded by the user from a local weights file).

The recipe, fixed: generated samples against the dataset's test split, both as float images
in [0, 1], 10,000 of each where available.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance


def _batches(images: Tensor | Iterable[Tensor], size: int = 500) -> Iterable[Tensor]:
    if isinstance(images, Tensor):
        yield from images.split(size)
    else:
        yield from images


def frechet_distance(
    features: nn.Module,
    real: Tensor | Iterable[Tensor],
    fake: Tensor | Iterable[Tensor],
    device: str | torch.device = "cpu",
    batch_size: int = 500,
) -> float:
    """FID between ``real`` and ``fake`` images (tensors or iterables of batches), with the
    feature network run on ``device`` in batches of ``batch_size``."""
    if not isinstance(getattr(features, "num_features", None), int):
        raise ValueError("the feature module needs an integer attribute num_features")
    # torchmetrics keeps its sums in float64 whatever the features' dtype; set_dtype would also
    # turn the feature network into float64 (3× slower on CPU), so it is not called.
    metric = FrechetInceptionDistance(feature=features, normalize=True).to(device)
    counts = {True: 0, False: 0}
    for is_real, images in ((True, real), (False, fake)):
        for batch in _batches(images, batch_size):
            metric.update(batch.to(device), real=is_real)
            counts[is_real] += len(batch)
    if min(counts.values()) < 2:
        raise ValueError(
            f"FID needs at least 2 images per set, got {counts[True]} and {counts[False]}"
        )
    return float(metric.compute())
