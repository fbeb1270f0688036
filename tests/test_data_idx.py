"""robustvae.data: the IDX reader, the MNIST-format loaders, the cache, and the real
Fashion-MNIST (Debian's dataset-fashion-mnist)."""

from __future__ import annotations

import gzip
import os
import re
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_fashion_mnist
from small_data import make_idx_dir

from robustvae.data import (
    DataWarning,
    default_cache_dir,
    load_dataset,
    parse_idx,
    read_idx,
    write_idx,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Loads without an explicit cache_dir write under tmp_path, never ~/.cache."""
    monkeypatch.setenv("ROBUSTVAE_CACHE", str(tmp_path / "default-cache"))


pytestmark = pytest.mark.filterwarnings(
    "ignore:.*differs from the official:robustvae.data.DataWarning"
)


def idx_bytes(magic: bytes, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file written by hand (independent of write_idx)."""
    return magic + b"".join(d.to_bytes(4, "big") for d in dims) + payload


# ----------------------------------------------------------------------------- reader


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(1)
    for array in (
        rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 7).astype(np.uint8),
        rng.integers(-1000, 1000, (3, 4)).astype(np.int32),
        rng.normal(size=(2, 3, 4)),
    ):
        path = write_idx(tmp_path / f"a{array.ndim}{array.dtype}{suffix}", array)
        back = read_idx(path)
        assert back.dtype == array.dtype.newbyteorder("=") and np.array_equal(back, array)
    if suffix:
        assert (tmp_path / "a3uint8.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_idx_reads_hand_written_files(tmp_path):
    pixels = bytes(range(2 * 3 * 4))
    (tmp_path / "images").write_bytes(idx_bytes(b"\x00\x00\x08\x03", (2, 3, 4), pixels))
    (tmp_path / "labels.gz").write_bytes(gzip.compress(idx_bytes(b"\0\0\x08\x01", (3,), b"\7\1\2")))
    images = read_idx(tmp_path / "images", ndim=3)
    assert images.shape == (2, 3, 4) and images[1, 2, 3] == 23 and images.dtype == np.uint8
    assert read_idx(tmp_path / "labels.gz", ndim=1).tolist() == [7, 1, 2]
    # Gzip is recognised by its magic bytes too, whatever the name.
    (tmp_path / "labels-gz").write_bytes((tmp_path / "labels.gz").read_bytes())
    assert read_idx(tmp_path / "labels-gz").tolist() == [7, 1, 2]
    big_endian = idx_bytes(b"\0\0\x0c\x01", (2,), np.array([1, -2], ">i4").tobytes())
    assert parse_idx(big_endian).tolist() == [1, -2]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "truncated IDX file"),
        (b"\0\0\x08", "truncated IDX file"),
        (b"\0\0\x08\x03\0\0\0\x02", "truncated IDX header"),
        (idx_bytes(b"\0\0\x08\x03", (2, 2, 2), bytes(7)), "truncated IDX data.*needs 8 bytes"),
        (idx_bytes(b"\0\0\x08\x01", (3,), bytes(5)), "2 unexpected trailing bytes"),
        (idx_bytes(b"\0\0\x07\x01", (3,), bytes(3)), "not an IDX file.*0x00000701"),
        (idx_bytes(b"PK\x08\x01", (3,), bytes(3)), "not an IDX file"),
        (b"\0\0\x08\x00", "IDX header declares 0 dimensions"),
    ],
)
def test_idx_errors_name_the_file(tmp_path, data, problem):
    path = tmp_path / "bad-idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=re.escape(f"{path}: ") + problem):
        read_idx(path)


def test_idx_corrupt_and_truncated_gzip(tmp_path):
    good = gzip.compress(idx_bytes(b"\0\0\x08\x01", (1000,), bytes(1000)))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz: truncated gzip stream"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "junk.gz").write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    with pytest.raises(ValueError, match=r"junk\.gz: corrupt gzip stream"):
        read_idx(tmp_path / "junk.gz")
    (tmp_path / "plain.gz").write_bytes(idx_bytes(b"\0\0\x08\x01", (2,), b"\1\2"))
    with pytest.raises(ValueError, match=r"plain\.gz: corrupt gzip stream"):
        read_idx(tmp_path / "plain.gz")


def _gzip_of(head: bytes, zeros: int) -> bytes:
    """gzip of ``head`` and then ``zeros`` zero bytes, built without holding the zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    body = [packer.compress(head)]
    for _ in range(zeros >> 20):
        body.append(packer.compress(bytes(1 << 20)))
    return b"".join(body) + packer.flush()


def test_gzip_bomb_is_read_only_as_far_as_declared(tmp_path):
    """A 300 KB file inflating to 300 MiB past a 4-byte IDX: one line, not 300 MiB of memory."""
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(_gzip_of(idx_bytes(b"\0\0\x08\x01", (4,), bytes(4)), 300 << 20))
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(
            ValueError, match=r"bomb\.gz: unexpected trailing bytes \(at least 1048576\)"
        ):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_a_gzipped_idx_file_is_read_into_one_buffer(tmp_path):
    path = tmp_path / "zeros.gz"
    path.write_bytes(
        _gzip_of(
            b"\0\0\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (32, 1024, 1024)), 32 << 20
        )
    )
    tracemalloc.start()
    try:
        array = read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert array.shape == (32, 1024, 1024) and not array.any()
    assert peak < (32 << 20) * 1.25  # the data once, not twice


def test_a_gzipped_header_of_no_dimensions_reads_as_the_raw_one(tmp_path):
    (tmp_path / "flat.gz").write_bytes(gzip.compress(b"\0\0\x08\0" + bytes(100)))
    with pytest.raises(ValueError, match=r"flat\.gz: IDX header declares 0 dimensions"):
        read_idx(tmp_path / "flat.gz")


def test_gzip_declaring_more_than_the_limit(tmp_path):
    huge = tmp_path / "huge.gz"
    huge.write_bytes(
        gzip.compress(b"\0\0\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (70000, 400, 400)))
    )
    with pytest.raises(
        ValueError, match=r"huge\.gz: the IDX header declares shape \(70000, 400, 400\)"
    ):
        read_idx(huge)


def test_idx_wrong_number_of_dimensions(tmp_path):
    path = write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="expected a 3-dimensional IDX file"):
        read_idx(path, ndim=3)


# ----------------------------------------------------------------------------- loaders


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_folder_loads_both_splits(tmp_path, gz):
    arrays = make_idx_dir(tmp_path / "mnist", gz=gz)
    for split in ("train", "test"):
        ds = load_dataset("mnist", split, root=tmp_path / "mnist", cache_dir=tmp_path / "c")
        images, labels = arrays[split]
        assert ds.images.shape == (len(images), 1, 28, 28) and ds.images.dtype == torch.float32
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images).float() / 255)
        assert torch.equal(ds.labels, torch.from_numpy(labels.astype(np.int64)))
        assert (ds.name, ds.split) == ("mnist", split)


def test_fashion_mnist_accepts_any_folder_and_resizes(tmp_path):
    arrays = make_idx_dir(tmp_path / "fm")
    ds = load_dataset("fashion-mnist", root=tmp_path / "fm", image_size=14, cache_dir=tmp_path)
    assert ds.images.shape == (12, 1, 14, 14)
    uniform = np.full((2, 28, 28), 77, np.uint8)
    write_idx(tmp_path / "fm" / "t10k-images-idx3-ubyte.gz", uniform)
    write_idx(tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz", np.array([1, 2], np.uint8))
    small = load_dataset("fashion-mnist", "test", root=tmp_path / "fm", image_size=7)
    assert torch.allclose(small.images, torch.full((2, 1, 7, 7), 77 / 255))
    assert arrays  # the train files were untouched


def test_native_size_shares_the_cache_entry(tmp_path):
    make_idx_dir(tmp_path / "m")
    a = load_dataset("mnist", root=tmp_path / "m", cache_dir=tmp_path / "c")
    b = load_dataset("mnist", root=tmp_path / "m", image_size=28, cache_dir=tmp_path / "c")
    assert torch.equal(a.images, b.images) and len(list((tmp_path / "c").iterdir())) == 2


def test_non_official_files_warn_with_their_name(tmp_path):
    make_idx_dir(tmp_path / "m")
    with pytest.warns(DataWarning, match=r"train-images-idx3-ubyte\.gz: content differs"):
        load_dataset("mnist", root=tmp_path / "m", cache_dir=tmp_path / "c")


def test_image_label_count_mismatch(tmp_path):
    make_idx_dir(tmp_path / "m")
    write_idx(tmp_path / "m" / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(ValueError, match=r"holds 12 images but .*train-labels.* holds 11 labels"):
        load_dataset("mnist", root=tmp_path / "m", cache_dir=tmp_path / "c")


def test_wrong_magic_for_the_role(tmp_path):
    make_idx_dir(tmp_path / "m")
    labels = tmp_path / "m" / "train-labels-idx1-ubyte.gz"
    labels.write_bytes((tmp_path / "m" / "train-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(
        ValueError, match=r"train-labels.*wrong magic number 0x00000803 .*0x00000801"
    ):
        load_dataset("mnist", root=tmp_path / "m", cache_dir=tmp_path / "c")


def test_truncated_idx_in_a_folder(tmp_path):
    make_idx_dir(tmp_path / "m", gz=False)
    path = tmp_path / "m" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated IDX data"):
        load_dataset("mnist", "test", root=tmp_path / "m", cache_dir=tmp_path / "c")


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*download"):
        load_dataset("mnist", root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"missing train-images-idx3-ubyte \(or"):
        load_dataset("mnist", root=tmp_path / "empty")


# ----------------------------------------------------------------------------- cache


def _entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob("*.npy"))


def test_cache_cold_warm_and_corrupt(tmp_path):
    make_idx_dir(tmp_path / "m")
    cache = tmp_path / "cache"
    cold = load_dataset("mnist", root=tmp_path / "m", cache_dir=cache)
    names = _entries(cache)
    assert len(names) == 2 and names[0].startswith("mnist-train-native-")
    warm = load_dataset("mnist", root=tmp_path / "m", cache_dir=cache)
    assert torch.equal(cold.images, warm.images) and torch.equal(cold.labels, warm.labels)
    images_npy = next(cache.glob("*.images.npy"))
    for damage in (b"garbage", images_npy.read_bytes()[:200]):
        images_npy.write_bytes(damage)
        with pytest.warns(DataWarning, match="unreadable cache entry"):
            again = load_dataset("mnist", root=tmp_path / "m", cache_dir=cache)
        assert torch.equal(again.images, cold.images)
    labels_npy = next(cache.glob("*.labels.npy"))
    np.save(labels_npy, np.zeros(3, np.int64))  # wrong length
    with pytest.warns(DataWarning, match="unreadable cache entry"):
        again = load_dataset("mnist", root=tmp_path / "m", cache_dir=cache)
    assert torch.equal(again.labels, cold.labels)
    assert not list(cache.glob("*.tmp")) and _entries(cache) == names


def test_cache_follows_source_changes_and_drops_stale_entries(tmp_path):
    make_idx_dir(tmp_path / "m", seed=0)
    cache = tmp_path / "cache"
    first = load_dataset("mnist", root=tmp_path / "m", cache_dir=cache)
    before = _entries(cache)
    make_idx_dir(tmp_path / "m", seed=1)  # new content, new mtime
    future = time.time() + 10
    for f in (tmp_path / "m").iterdir():
        os.utime(f, (future, future))
    second = load_dataset("mnist", root=tmp_path / "m", cache_dir=cache)
    assert not torch.equal(first.images, second.images)
    after = _entries(cache)
    assert len(after) == 2 and set(after).isdisjoint(before)
    # Another folder's entries of the same dataset and split are kept.
    make_idx_dir(tmp_path / "m2")
    load_dataset("mnist", root=tmp_path / "m2", cache_dir=cache)
    assert len(_entries(cache)) == 4


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTVAE_CACHE", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    make_idx_dir(tmp_path / "m")
    load_dataset("mnist", "test", root=tmp_path / "m")
    assert len(_entries(tmp_path / "env-cache")) == 2
    monkeypatch.delenv("ROBUSTVAE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "robustvae"


def test_unwritable_cache_is_a_warning(tmp_path):
    make_idx_dir(tmp_path / "m")
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    with pytest.warns(DataWarning, match="could not write the data cache"):
        ds = load_dataset("mnist", "test", root=tmp_path / "m", cache_dir=blocker / "sub")
    assert len(ds) == 5


# ----------------------------------------------------------------------------- Fashion-MNIST


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    require_fashion_mnist()
    cache = tmp_path_factory.mktemp("cache-fashion")
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cold = load_dataset("fashion-mnist", "train", cache_dir=cache)
    t1 = time.perf_counter()
    warm = load_dataset("fashion-mnist", "train", cache_dir=cache)
    t2 = time.perf_counter()
    print(f"Fashion-MNIST train: cold {t1 - t0:.2f} s, warm {t2 - t1:.2f} s")
    return cold, warm, cache, caught


def test_fashion_mnist_real_files(fashion, recwarn):
    cold, warm, cache, caught = fashion
    assert cold.images.shape == (60000, 1, 28, 28) and cold.images.dtype == torch.float32
    assert cold.images.is_contiguous()
    assert cold.images.min() == 0.0 and cold.images.max() == 1.0
    assert cold.labels.bincount().tolist() == [6000] * 10
    test = load_dataset("fashion-mnist", "test", cache_dir=cache)
    assert (
        test.images.shape == (10000, 1, 28, 28) and test.labels.bincount().tolist() == [1000] * 10
    )
    # The installed files match the official checksums: no warning was issued.
    assert not [w for w in [*caught, *recwarn] if issubclass(w.category, DataWarning)]


def test_fashion_mnist_warm_equals_cold(fashion):
    cold, warm, _, _ = fashion
    assert torch.equal(cold.images, warm.images) and torch.equal(cold.labels, warm.labels)
    assert warm.images.data_ptr() != cold.images.data_ptr()
