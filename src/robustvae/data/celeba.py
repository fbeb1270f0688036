"""CelebA (aligned and cropped): finding the images and the partition file, the official
train/valid/test split, and decoding a split to uint8 N×3×S×S (cached).

:mod:`robustvae.data.datasets` turns the arrays into an :class:`ImageDataset`.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from robustvae.data.cache import DataWarning, cached_arrays
from robustvae.data.images import (
    ImageSource,
    decode_images,
    hash_unit,
    list_folder,
    list_zip,
    source_files,
)

__all__ = [
    "CELEBA_SIZE",
    "CELEBA_CROP",
    "CELEBA_BOX",
    "CELEBA_SPLITS",
    "CELEBA_IMAGE_SIZE",
    "celeba_sources",
    "celeba_split",
    "load_celeba_images",
]

#: The aligned-and-cropped CelebA images are 178 wide, 218 high.
CELEBA_SIZE = (178, 218)
#: Side of the centred square crop; the box is (left, top, right, bottom) in pixels.
CELEBA_CROP = 140
CELEBA_BOX = (19, 39, 159, 179)
#: Official partition: 1–162770 train, 162771–182637 valid, 182638–202599 test.
_CELEBA_BOUNDS = (162770, 182637)
CELEBA_SPLITS = ("train", "valid", "test", "all")
#: Default side of CelebA images.
CELEBA_IMAGE_SIZE = 64


def celeba_sources(root: str | Path) -> tuple[list[ImageSource], Path | None]:
    """The CelebA images under ``root`` and the partition file, if any.

    ``root`` may be the ``img_align_celeba`` folder, the official ``img_align_celeba.zip``, or a
    folder holding either (preferring the folder). The partition file
    (``list_eval_partition.txt``, or Kaggle's ``list_eval_partition.csv``) is looked for in
    ``root``, beside the zip or image folder, and in ``Eval/`` (the layout of the Google Drive
    release).
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"CelebA location {root} does not exist")
    if root.is_file():
        if root.suffix.lower() != ".zip":
            raise ValueError(f"{root}: expected the img_align_celeba folder or zip")
        images, near = list_zip(root, (".jpg", ".jpeg", ".png")), [root.parent]
    else:
        folder, archive = root / "img_align_celeba", root / "img_align_celeba.zip"
        if folder.is_dir():
            # Kaggle's layout nests the folder twice: img_align_celeba/img_align_celeba/*.jpg
            images, near = list_folder(folder), [root, folder]
        elif archive.is_file():
            images, near = list_zip(archive, (".jpg", ".jpeg", ".png")), [root]
        else:
            images, near = list_folder(root), [root, root.parent]
    if not images:
        raise ValueError(f"{root}: no CelebA images (.jpg) found")
    for d in near:
        for candidate in (d / "list_eval_partition.txt", d / "list_eval_partition.csv"):
            for c in (candidate, d / "Eval" / candidate.name):
                if c.is_file():
                    return images, c
    return images, None


def _read_partition(path: Path) -> dict[str, int]:
    table: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.replace(",", " ").split()
        if not fields or (lineno == 1 and not fields[-1].isdigit()):
            continue  # blank line or a CSV header
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise ValueError(f"{path}:{lineno}: expected '<image> <0|1|2>', got {line!r}")
        table[fields[0]] = int(fields[1])
    return table


def celeba_split(
    sources: Sequence[ImageSource], partition: Path | None, split: str
) -> list[ImageSource]:
    """The images of ``split``.

    With a partition file: its assignment (0 train, 1 valid, 2 test); images it does not list are
    left out with a warning. Without one: images named by their official number (``000001.jpg``)
    follow the official boundaries (1–162770 train, 162771–182637 valid, the rest test), which
    reproduces the official partition exactly; other names are split 80/10/10 by the SHA-1 of the
    name (as :func:`robustvae.data.folder.folder_split`).
    """
    if split == "all":
        return list(sources)
    index = {"train": 0, "valid": 1, "test": 2}[split]
    basename = [s.name.rsplit("/", 1)[-1] for s in sources]
    if partition is not None:
        table = _read_partition(partition)
        missing = [b for b in basename if b not in table]
        if missing:
            warnings.warn(
                f"{partition} does not list {len(missing)} image(s) (e.g. {missing[0]}); "
                "they are left out",
                DataWarning,
                stacklevel=3,
            )
        return [s for s, b in zip(sources, basename, strict=True) if table.get(b) == index]

    def which(b: str) -> int:
        m = re.fullmatch(r"(\d+)\.\w+", b)
        if m:
            n = int(m.group(1))
            return 0 if n <= _CELEBA_BOUNDS[0] else 1 if n <= _CELEBA_BOUNDS[1] else 2
        u = hash_unit(b)
        return 0 if u < 0.8 else 1 if u < 0.9 else 2

    return [s for s, b in zip(sources, basename, strict=True) if which(b) == index]


def _names_digest(sources: Iterable[ImageSource]) -> str:
    h = hashlib.sha256()
    for s in sources:
        h.update(s.name.encode() + b"\0")
    return h.hexdigest()[:16]


def load_celeba_images(split: str, root: Path, size: int, cache_dir) -> np.ndarray:
    """The images of ``split`` as uint8 N×3×``size``×``size``: each cropped to ``CELEBA_BOX``
    and resized with Pillow's Lanczos filter; cached (see :mod:`robustvae.data.cache`)."""
    sources, partition = celeba_sources(root)
    chosen = celeba_split(sources, partition, split)
    if not chosen:
        raise ValueError(
            f"{root}: the CelebA split {split!r} is empty ({len(sources)} images, partition "
            f"{partition or 'by file number / name hash'})"
        )
    files = source_files(chosen) + ([partition] if partition else [])
    images, _ = cached_arrays(
        cache_dir=cache_dir,
        name="celeba",
        split=split,
        size=size,
        root=root,
        files=files,
        params={"names": _names_digest(chosen), "box": CELEBA_BOX, "filter": "lanczos"},
        labelled=False,
        build=lambda: (
            decode_images(
                chosen,
                size=size,
                box=CELEBA_BOX,
                expect=CELEBA_SIZE,
                resample="lanczos",
                channels=3,
                progress=f"CelebA {split}",
            ),
            None,
        ),
    )
    return images
