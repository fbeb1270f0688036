"""The feature network for FID (Chen et al., Sec. 4: "the coding layer of a classification
model trained by us"): a small conv classifier per labelled dataset. Its coding layer — the 128
ReLU units before the class logits — is the feature space FID is computed in.

The trained weights ship in ``classifiers/`` (beside the net they fit); finding, verifying,
training and caching them is ``robustvae.evaluation.fid_classifiers``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

VERSION = 2
CODING_UNITS = 128


class Classifier(nn.Module):
    """conv3-32 → pool → conv3-64 → pool → (7×7) → FC128 (the coding layer) → dropout → FC."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7), nn.Flatten(),
            nn.Linear(64 * 7 * 7, CODING_UNITS), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(CODING_UNITS, classes))

    def features(self, images: Tensor) -> Tensor:
        return self.body(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.body(images))


class CodingLayer(nn.Module):
    """The classifier's coding layer as a torchmetrics feature extractor (``num_features``)."""

    def __init__(self, classifier: Classifier):
        super().__init__()
        self.classifier = classifier.eval()
        self.num_features = CODING_UNITS

    def forward(self, images: Tensor) -> Tensor:
        weight = next(self.classifier.parameters())  # torchmetrics may have made it float64
        with torch.no_grad():
            return self.classifier.features(images.to(weight.dtype))
