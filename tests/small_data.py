"""Small real data the tests write: crops of real photos in a folder, a window of the real
Middlebury motorcycle pair, tiny MNIST-format files. Shared by every kind's tests (and by
``broken_inputs``) so that no test module imports another."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from robustvae.data import write_idx
from robustvae.data.images import hash_unit

STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def photo_folder(tmp_path, n_train=5, size=(96, 128), mode="RGB"):
    """A folder of real photo crops with at least one image in the hash's test split."""
    import skimage.data

    root = tmp_path / "photos"
    root.mkdir()
    source = skimage.data.astronaut()
    names, i = [], 0
    while sum(hash_unit(n) < 0.1 for n in names) < 1 or len(names) < n_train + 1:
        name = f"img{i:03d}.png"
        if hash_unit(name) < 0.1 or len(names) - sum(hash_unit(n) < 0.1 for n in names) < n_train:
            names.append(name)
        i += 1
    for k, name in enumerate(names):
        top, left = 30 * k % 300, 40 * k % 300
        crop = source[top : top + size[0], left : left + size[1]]
        Image.fromarray(crop).convert(mode).save(root / name)
    return root


def stereo_window(size=(96, 160)):
    """Left, right and disparity of a window of the real motorcycle pair."""
    import skimage.data

    h, w = size
    window = (slice(200, 200 + h), slice(300, 300 + w))
    return tuple(a[window] for a in skimage.data.stereo_motorcycle())


def write_pfm(path, array):
    a = np.ascontiguousarray(array[::-1], dtype="<f4")
    path.write_bytes(f"Pf\n{a.shape[1]} {a.shape[0]}\n-1.0\n".encode() + a.tobytes())


def make_idx_dir(root: Path, n_train=12, n_test=5, gz=True, seed=0) -> dict:
    """Four tiny MNIST-format files (28×28 uint8) with known content."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(root / (STEMS[split][0] + suffix), images)
        write_idx(root / (STEMS[split][1] + suffix), labels)
        arrays[split] = (images, labels)
    return arrays
