"""The FID classifiers (``robustvae.metrics.classifier``) a run's FID is computed with: the
shipped ones — mnist-5k (also serving MNIST) and Fashion-MNIST at 28×28, made by
``scripts/train_fid_classifiers.py``, their SHA-256 in ``classifiers/manifest.json`` verified
on load, so their FID is the same on every machine and at any thread count — and, for any
other labelled dataset or size, one trained on first use and cached (safetensors) by dataset,
image shape and version.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from robustvae.data import Batches, ImageDataset, load_dataset
from robustvae.metrics.classifier import VERSION, Classifier
from robustvae.training.checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "FeatureClassifier",
    "accuracy",
    "dataset_classifier",
    "default_epochs",
    "shipped_classifier",
    "shipped_table",
    "train_classifier",
]


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


class FeatureClassifier(NamedTuple):
    model: Classifier
    test_accuracy: float
    origin: str  # "shipped …" or "trained here …": reported with the FID


@cache
def _manifest() -> dict:
    text = resources.files("robustvae.metrics").joinpath("classifiers", "manifest.json")
    return json.loads(text.read_text()) if text.is_file() else {}


def shipped_table() -> str:
    """The shipped classifiers as a Markdown table (the README's, checked by a test)."""
    lines = ["| classifier | serves | test accuracy | SHA-256 |", "| --- | --- | ---: | --- |"]
    for entry in _manifest().values():
        lines.append(
            f"| `{entry['file']}` | {', '.join(entry['serves'])} | "
            f"{entry['test_accuracy']:.2%} of {entry['test_images']:,} | `{entry['sha256']}` |"
        )
    return "\n".join(lines)


def shipped_classifier(name: str, shape: tuple[int, ...]) -> FeatureClassifier | None:
    """The shipped classifier serving ``name`` at ``shape``, checksum verified; else None."""
    for entry in _manifest().values():
        if name in entry["serves"] and tuple(entry["shape"]) == tuple(shape):
            break
    else:
        return None
    resource = resources.files("robustvae.metrics").joinpath("classifiers", entry["file"])
    with resources.as_file(resource) as path:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry["sha256"]:
            raise ValueError(
                f"{path}: the shipped FID classifier's SHA-256 is {digest}, not "
                f"{entry['sha256']}; the package is damaged: reinstall robustvae"
            )
        saved = load_checkpoint(path)
    model = Classifier(shape[0], saved.meta["classes"])
    model.load_state_dict(saved.model)
    origin = (
        f"shipped {entry['file']} (sha256 {digest[:12]}, test accuracy "
        f"{entry['test_accuracy']:.4f} on {entry['dataset']})"
    )
    return FeatureClassifier(model.eval(), entry["test_accuracy"], origin)


def _cache_path(name: str, shape: tuple[int, ...], cache_dir) -> Path:
    root = Path(cache_dir or os.environ.get("ROBUSTVAE_CACHE") or Path.home() / ".cache/robustvae")
    return root / "classifiers" / f"{name}-{'x'.join(map(str, shape))}-v{VERSION}.safetensors"


def dataset_classifier(
    name: str, root=None, image_size=None, cache_dir=None, epochs: int | None = None, device="cpu"
) -> FeatureClassifier:
    """The shipped classifier for a dataset, else its cached one (trained on first use)."""
    train = load_dataset(name, "train", root=root, image_size=image_size)
    shape = tuple(train.images.shape[1:])
    shipped = shipped_classifier(name, shape)
    if shipped is not None:
        return shipped._replace(model=shipped.model.to(device))
    path = _cache_path(name, shape, cache_dir)
    classes = int(train.labels.max().item()) + 1 if train.labels is not None else 0
    origin = f"trained here on {name}, cached at {path}"
    if path.exists():
        saved = load_checkpoint(path)
        model = Classifier(shape[0], saved.meta["classes"])
        model.load_state_dict(saved.model)
        return FeatureClassifier(model.to(device).eval(), saved.meta["test_accuracy"], origin)
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
    return FeatureClassifier(model, acc, origin)
