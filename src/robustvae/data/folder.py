"""A folder (or ``.zip``) of arbitrary images: listing, the stable 90/10 split, and decoding a
split to uint8 N×C×H×W (cached).

:mod:`robustvae.data.datasets` turns the arrays into an :class:`ImageDataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robustvae.data.cache import cached_arrays
from robustvae.data.images import (
    IMAGE_EXTENSIONS,
    ImageSource,
    decode_images,
    hash_unit,
    list_folder,
    list_zip,
    probe_channels,
    source_files,
)

__all__ = [
    "FOLDER_SPLITS",
    "folder_sources",
    "folder_sources_of_split",
    "folder_split",
    "load_folder_images",
]

FOLDER_SPLITS = ("train", "test", "all")


def folder_sources(root: str | Path) -> list[ImageSource]:
    """Every image file (``IMAGE_EXTENSIONS``, any case) under ``root``, recursively, sorted by
    relative path. Hidden files and folders are skipped. A ``.zip`` file is read as a folder."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".zip":
        sources = list_zip(root)
    elif root.is_dir():
        sources = list_folder(root)
    elif root.exists():
        raise ValueError(f"{root}: expected a folder of images or a .zip of them")
    else:
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not sources:
        raise ValueError(
            f"{root}: no images found (looked recursively for {', '.join(IMAGE_EXTENSIONS)})"
        )
    return sources


#: The share of a folder's images held out for ``test`` unless a run sets ``test_fraction``.
TEST_FRACTION = 0.1


def check_test_fraction(test_fraction: float) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float):
        raise ValueError(f"test_fraction must be a number in [0, 0.9], got {test_fraction!r}")
    if not 0 <= test_fraction <= 0.9:
        raise ValueError(f"test_fraction must lie in [0, 0.9], got {test_fraction!r}")
    return float(test_fraction)


def folder_split(
    sources: Sequence[ImageSource], split: str, test_fraction: float = TEST_FRACTION
) -> list[ImageSource]:
    """The split of an image folder: an image is in ``test`` when the SHA-1 of its relative
    path (POSIX separators), read as a fraction in [0, 1), is below ``test_fraction``. Stable
    across machines, and adding files never moves existing ones between splits. ``all`` keeps
    everything, and so does every split at ``test_fraction`` 0 (testing on the training
    images: a measure of fit, not of generalisation)."""
    if split == "all" or test_fraction == 0:
        return list(sources)
    return [s for s in sources if (hash_unit(s.name) < test_fraction) == (split == "test")]


def folder_sources_of_split(root: str | Path, split: str, test_fraction: float = TEST_FRACTION):
    """(every source in the folder, those of ``split``); ValueError when the split is empty."""
    sources = folder_sources(root)
    chosen = folder_split(sources, split, check_test_fraction(test_fraction))
    if not chosen:
        raise ValueError(
            f"{root}: split {split!r} is empty ({len(sources)} images; the test split takes "
            f"about {test_fraction:.0%} of them by a hash of their names); set a larger "
            "--test-fraction, or --test-fraction 0 to test on the training images"
        )
    return sources, chosen


def load_folder_images(
    split: str, root: Path, size: int | None, cache_dir, test_fraction: float = TEST_FRACTION
) -> np.ndarray:
    """The images of ``split`` as uint8 N×C×H×W, C decided on the whole folder (1 when every
    image is greyscale, else 3); cached (see :mod:`robustvae.data.cache`)."""
    sources, chosen = folder_sources_of_split(root, split, test_fraction)
    # The channel count is decided on the whole folder (so every split agrees): fingerprint it all.
    files = source_files(sources)

    def build():
        channels = probe_channels(sources)
        return decode_images(chosen, size=size, channels=channels, progress="images"), None

    images, _ = cached_arrays(
        cache_dir=cache_dir,
        name="folder",
        split=split,
        size=size,
        root=root,
        files=files,
        params={"size": size, "test_fraction": test_fraction},
        labelled=False,
        build=build,
    )
    return images
