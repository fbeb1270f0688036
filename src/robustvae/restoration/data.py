"""The restorer's data: whole clean images (for evaluation) and the overlapping tiles training
draws its random crops from.

Datasets:

- ``photos``: real photographs that install with the project's set-up, split by image (the
  README lists the split): ``PHOTOS_TRAIN`` and ``PHOTOS_TEST``, from Debian's ``opencv-doc``
  (``OPENCV_DATA``), scikit-image's ``skimage.data`` and scikit-learn's sample images. Each is
  RGB (``camera``, the one greyscale photo, repeated over three channels) and shrunk (Lanczos)
  so that its longer side is at most ``PHOTO_SIDE`` pixels.
- ``folder``: every image under ``data_root`` (recursively, or in a zip), split 90/10 by a hash
  of its name as the folder dataset (``robustvae.data.folder``); 1 channel when every image is
  greyscale, else 3, at native size.

Training tiles are ``2·crop`` pixels square, every ``crop`` pixels (so that a random
``crop``-sized window of a tile can fall anywhere in the image); test tiles do not overlap.
Tiles are kept as uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from robustvae.data.image_file import read_image

__all__ = [
    "DATASETS",
    "OPENCV_DATA",
    "PHOTO_SIDE",
    "PHOTOS_TEST",
    "PHOTOS_TRAIN",
    "NamedImage",
    "TileSet",
    "load_images",
    "tile",
]

DATASETS = ("photos", "folder")
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
PHOTO_SIDE = 640
#: name → where it comes from: ``opencv:FILE``, ``skimage:FUNCTION`` or ``sklearn:FILE``.
PHOTOS_TRAIN = {
    "aero1": "opencv:aero1.jpg",
    "aero3": "opencv:aero3.jpg",
    "apple": "opencv:apple.jpg",
    "board": "opencv:board.jpg",
    "building": "opencv:building.jpg",
    "ela_original": "opencv:ela_original.jpg",
    "graf1": "opencv:graf1.png",
    "left": "opencv:left.jpg",
    "orange": "opencv:orange.jpg",
    "rubberwhale1": "opencv:rubberwhale1.png",
    "stuff": "opencv:stuff.jpg",
    "astronaut": "skimage:astronaut",
    "camera": "skimage:camera",
    "hubble_deep_field": "skimage:hubble_deep_field",
    "immunohistochemistry": "skimage:immunohistochemistry",
    "retina": "skimage:retina",
    "rocket": "skimage:rocket",
    "flower": "sklearn:flower.jpg",
}
PHOTOS_TEST = {
    "baboon": "opencv:baboon.jpg",
    "butterfly": "opencv:butterfly.jpg",
    "fruits": "opencv:fruits.jpg",
    "home": "opencv:home.jpg",
    "leuvenA": "opencv:leuvenA.jpg",
    "messi5": "opencv:messi5.jpg",
    "squirrel_cls": "opencv:squirrel_cls.jpg",
    "chelsea": "skimage:chelsea",
    "coffee": "skimage:coffee",
    "china": "sklearn:china.jpg",
}


@dataclass(frozen=True)
class NamedImage:
    name: str
    image: Tensor  # float32 C×H×W in [0, 1]


def _photo(source: str) -> np.ndarray:
    where, _, name = source.partition(":")
    if where == "opencv":
        path = OPENCV_DATA / name
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: the photos dataset needs Debian's opencv-doc (apt-get install opencv-doc)"
            )
        return read_image(path)
    if where == "skimage":
        import skimage.data

        array = getattr(skimage.data, name)()
    else:
        from sklearn.datasets import load_sample_image

        array = load_sample_image(name)
    array = np.asarray(array, dtype=np.float32) / 255.0
    return torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())


def _shrink(image: Tensor, side: int) -> Tensor:
    from PIL import Image

    channels, height, width = image.shape
    if max(height, width) <= side:
        return image
    scale = side / max(height, width)
    size = (round(width * scale), round(height * scale))
    planes = [
        np.asarray(Image.fromarray(p.numpy(), "F").resize(size, Image.Resampling.LANCZOS))
        for p in image
    ]
    return torch.from_numpy(np.stack(planes)).clamp(0, 1)


def load_photos(split: str) -> list[NamedImage]:
    """The bundled photos of ``split`` ('train' or 'test'), RGB, longer side ≤ PHOTO_SIDE."""
    chosen = {"train": PHOTOS_TRAIN, "test": PHOTOS_TEST}[split]
    out = []
    for name, source in chosen.items():
        image = _photo(source)
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        out.append(NamedImage(name, _shrink(image.contiguous(), PHOTO_SIDE)))
    return out


def load_folder(root: str | Path, split: str, test_fraction: float = 0.1) -> list[NamedImage]:
    """The images of ``split`` in an image folder (or zip), 1 channel when all are grey."""
    from robustvae.data.folder import folder_sources_of_split
    from robustvae.data.images import SourceReader, probe_channels

    sources, chosen = folder_sources_of_split(root, split, test_fraction)
    channels = probe_channels(sources)
    out = []
    reader = SourceReader()  # one handle per zip archive, not one per member
    try:
        for source in chosen:
            image = read_image(reader.file(source), str(source))
            if image.shape[0] != channels:
                image = image.expand(3, -1, -1) if channels == 3 else image.mean(0, keepdim=True)
            out.append(NamedImage(source.name, image.contiguous()))
    finally:
        reader.close()
    return out


def load_images(
    dataset: str, split: str, root: str | Path | None = None, test_fraction: float = 0.1
) -> list[NamedImage]:
    """The clean images of ``split`` of a restoration dataset (see the module docstring);
    ``test_fraction`` applies to folders."""
    if dataset == "photos":
        return load_photos(split)
    if dataset == "folder":
        if root is None:
            raise ValueError("dataset 'folder' needs data_root (--data-root DIR)")
        return load_folder(root, split, test_fraction)
    raise ValueError(f"the restore kind trains on: {', '.join(DATASETS)}; got dataset {dataset!r}")


@dataclass(frozen=True, eq=False)
class TileSet:
    """Square uint8 tiles of a set of images (``tensors['clean']``, N×C×T×T), and the images."""

    tiles: Tensor
    images: list[NamedImage]

    @property
    def tensors(self) -> dict[str, Tensor]:
        return {"clean": self.tiles}

    @property
    def item_shape(self) -> tuple[int, int, int]:
        return tuple(self.tiles.shape[1:])

    def __len__(self) -> int:
        return len(self.tiles)


def tile(images: list[NamedImage], size: int, stride: int) -> TileSet:
    """Every ``size``×``size`` window of each image at multiples of ``stride`` (plus the last
    window flush with each edge), as uint8. An image smaller than a tile is an error."""
    pieces = []
    for item in images:
        _, height, width = item.image.shape
        if height < size or width < size:
            raise ValueError(
                f"{item.name}: image is {width}×{height}, smaller than a {size}×{size} tile "
                f"(twice the crop); use a smaller crop or leave the image out"
            )
        rows = sorted({*range(0, height - size + 1, stride), height - size})
        cols = sorted({*range(0, width - size + 1, stride), width - size})
        as_bytes = (item.image * 255).round().to(torch.uint8)
        pieces += [as_bytes[:, r : r + size, c : c + size] for r in rows for c in cols]
    return TileSet(torch.stack(pieces).contiguous(), images)
