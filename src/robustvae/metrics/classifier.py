"""The feature network for FID (Chen et al., Sec. 4: "the coding layer of a classification
model trained by us"): a small conv classifier trained once per labelled dataset, its weights
cached (safetensors) keyed by dataset, image shape and version. Its coding layer — the 128
ReLU units before the class logits — is the feature space FID is computed in.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from robustvae.data import Batches, ImageDataset, load_dataset
from robustvae.training.checkpoint import load_checkpoint, save_checkpoint

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


def accuracy(model: Classifier, data: ImageDataset, device="cpu") -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in Batches(data, 500, shuffle=False):
            predicted = model(batch["image"].to(device)).argmax(1).cpu()
            correct += (predicted == batch["label"]).sum().item()
    return correct / len(data)


def default_epochs(n_images: int) -> int:
    """About 300,000 image presentations, within 3 to 30 epochs."""
    return max(3, min(30, -(-300_000 // n_images)))


def train_classifier(
    train: ImageDataset, epochs: int | None = None, seed: int = 0, device="cpu"
) -> Classifier:
    if train.labels is None:
        raise ValueError(f"{train.name} has no labels: FID needs a classifier trained on labels")
    torch.manual_seed(seed)
    classes = int(train.labels.max().item()) + 1
    model = Classifier(train.channels, classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = Batches(train, 128, shuffle=True, seed=seed)
    epochs = epochs or default_epochs(len(train))
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        model.train()
        for batch in batches:
            logits = model(batch["image"].to(device))
            loss = nn.functional.cross_entropy(logits, batch["label"].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


def _cache_path(name: str, shape: tuple[int, ...], cache_dir) -> Path:
    root = Path(cache_dir or os.environ.get("ROBUSTVAE_CACHE") or Path.home() / ".cache/robustvae")
    return root / "classifiers" / f"{name}-{'x'.join(map(str, shape))}-v{VERSION}.safetensors"


def dataset_classifier(
    name: str, root=None, image_size=None, cache_dir=None, epochs: int | None = None, device="cpu"
) -> tuple[Classifier, float]:
    """The cached classifier for a dataset (trained on first use) and its test accuracy."""
    train = load_dataset(name, "train", root=root, image_size=image_size)
    shape = tuple(train.images.shape[1:])
    path = _cache_path(name, shape, cache_dir)
    classes = int(train.labels.max().item()) + 1 if train.labels is not None else 0
    if path.exists():
        saved = load_checkpoint(path)
        model = Classifier(shape[0], saved.meta["classes"])
        model.load_state_dict(saved.model)
        return model.to(device).eval(), saved.meta["test_accuracy"]
    model = train_classifier(train, epochs=epochs, device=device)
    test = load_dataset(name, "test", root=root, image_size=image_size)
    acc = accuracy(model, test, device)
    meta = {
        "dataset": name,
        "shape": list(shape),
        "classes": classes,
        "epochs": epochs,
        "test_accuracy": acc,
    }
    save_checkpoint(path, model, meta=meta)
    return model, acc
