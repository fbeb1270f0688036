"""Train the FID feature classifiers that robustvae ships, and write their manifest.

    .venv/bin/python scripts/train_fid_classifiers.py

One classifier per labelled 28×28 dataset: ``mnist-5k`` (it also serves full MNIST, the same
digits) and ``fashion-mnist``. Each is trained with seed 0 on one thread, so the weights do not
depend on the machine's core count. The weights go to
``src/robustvae/metrics/classifiers/<name>.safetensors``, and ``manifest.json`` there records
each file's SHA-256, test accuracy, epochs and the datasets it serves. robustvae verifies the
checksum when it loads a file, so FID is computed in the same feature space everywhere.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from robustvae.data import load_dataset
from robustvae.evaluation.fid_classifiers import (
    _manifest,
    accuracy,
    default_epochs,
    shipped_table,
    train_classifier,
)
from robustvae.metrics.classifier import VERSION
from robustvae.training.checkpoint import save_checkpoint

OUT = Path(__file__).resolve().parents[1] / "src" / "robustvae" / "metrics" / "classifiers"
SERVES = {"mnist-5k": ["mnist-5k", "mnist"], "fashion-mnist": ["fashion-mnist"]}


def main() -> None:
    torch.set_num_threads(1)
    manifest = {}
    for name, serves in SERVES.items():
        started = time.perf_counter()
        train = load_dataset(name, "train")
        test = load_dataset(name, "test")
        epochs = default_epochs(len(train))
        model = train_classifier(train, epochs=epochs, seed=0)
        test_accuracy = accuracy(model, test)
        path = OUT / f"{name}.safetensors"
        shape = list(train.images.shape[1:])
        classes = int(train.labels.max().item()) + 1
        meta = {"dataset": name, "shape": shape, "classes": classes, "epochs": epochs}
        save_checkpoint(path, model, meta={**meta, "test_accuracy": test_accuracy})
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest[name] = {
            **meta,
            "file": path.name,
            "sha256": digest,
            "test_accuracy": test_accuracy,
            "test_images": len(test),
            "serves": serves,
            "version": VERSION,
            "seed": 0,
            "torch": torch.__version__,
        }
        seconds = time.perf_counter() - started
        print(f"{name}: test accuracy {test_accuracy:.4f}, {epochs} epochs, {seconds:.0f} s")
        print(f"  {path} sha256 {digest}")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _manifest.cache_clear()
    print(shipped_table())  # the README's table


if __name__ == "__main__":
    main()
