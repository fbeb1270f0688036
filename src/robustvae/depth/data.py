"""Rectified stereo pairs with (optional) ground-truth disparity of the left view, and the
tiles self-supervised training crops from.

Scenes (``SCENES``), real Middlebury pairs that install with the set-up:

- ``motorcycle``: ``skimage.data.stereo_motorcycle()``, 741×500, disparities 7–60 px; unknown
  disparity is ``+inf`` (7% of pixels).
- ``aloe``: ``aloeL.jpg``, ``aloeR.jpg`` and ``aloeGT.png`` from Debian's ``opencv-doc``
  (1282×1110, disparity in pixels, 0 = unknown), shrunk by ``ALOE_SCALE`` (⅓: 427×370,
  disparities 7–70 px, the motorcycle's range) with its disparities scaled alike
  (nearest-neighbour on the ground truth, so unknown pixels never mix into known ones).

A folder of pairs (``load_folder``) in any of three layouts:

- KITTI: ``image_2/`` (left) and ``image_3/`` (right), disparity in ``disp_occ_0/`` or
  ``disp_noc_0/`` when present (16-bit PNG / 256, 0 = unknown);
- Middlebury 2014: one folder per scene with ``im0.png``, ``im1.png`` and ``disp0.pfm`` when
  present (``inf`` = unknown);
- ``left/``, ``right/`` and optionally ``disparity/``, with the same file names (16-bit PNG /
  256, or PFM).

Unknown disparity is NaN in a ``StereoScene``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from robustvae.data.image_file import read_image
from robustvae.depth.metrics import valid_mask

__all__ = [
    "ALOE_SCALE",
    "SCENES",
    "StereoScene",
    "StereoTiles",
    "load_folder",
    "load_scene",
    "read_disparity",
    "stereo_tiles",
]

SCENES = ("motorcycle", "aloe")
ALOE_SCALE = 1 / 3
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


@dataclass(frozen=True, eq=False)
class StereoScene:
    """A rectified pair (float32 3×H×W in [0, 1]) and the left view's disparity (float32 H×W
    in pixels, NaN where unknown; None without ground truth)."""

    name: str
    left: Tensor
    right: Tensor
    disparity: Tensor | None = None

    def __post_init__(self):
        if self.left.shape != self.right.shape:
            raise ValueError(
                f"{self.name}: left is {tuple(self.left.shape)}, right {tuple(self.right.shape)}"
            )
        if self.disparity is not None and self.disparity.shape != self.left.shape[1:]:
            raise ValueError(
                f"{self.name}: disparity is {tuple(self.disparity.shape)}, the images "
                f"{tuple(self.left.shape[1:])}"
            )

    def scorable(self, max_disparity: float) -> bool:
        """Whether a net can be scored on it: some pixel's ground truth is known and in
        (0, ``max_disparity``]."""
        if self.disparity is None:
            return False
        return bool(valid_mask(self.disparity, 0.0, float(max_disparity)).any())


def _rgb(image: Tensor) -> Tensor:
    return image.expand(3, -1, -1).contiguous() if image.shape[0] == 1 else image


def _resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    from PIL import Image

    planes = [
        np.asarray(Image.fromarray(p.numpy(), "F").resize(size, Image.Resampling.LANCZOS))
        for p in image
    ]
    return torch.from_numpy(np.stack(planes)).clamp(0, 1)


def _motorcycle() -> StereoScene:
    import skimage.data

    left, right, disparity = skimage.data.stereo_motorcycle()
    as_tensor = lambda a: torch.from_numpy(a.transpose(2, 0, 1).copy()).float() / 255  # noqa: E731
    disparity = torch.from_numpy(np.where(np.isfinite(disparity), disparity, np.nan)).float()
    return StereoScene("motorcycle", as_tensor(left), as_tensor(right), disparity)


def _aloe() -> StereoScene:
    paths = [OPENCV_DATA / name for name in ("aloeL.jpg", "aloeR.jpg", "aloeGT.png")]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: the aloe scene needs Debian's opencv-doc (apt-get install opencv-doc)"
            )
    left, right = (_rgb(read_image(p)) for p in paths[:2])
    truth = np.asarray(__import__("PIL.Image").Image.open(paths[2]), dtype=np.float32)
    height, width = left.shape[1:]
    size = (round(width * ALOE_SCALE), round(height * ALOE_SCALE))
    rows = (np.arange(size[1]) / ALOE_SCALE).astype(int).clip(0, height - 1)
    cols = (np.arange(size[0]) / ALOE_SCALE).astype(int).clip(0, width - 1)
    truth = truth[np.ix_(rows, cols)] * ALOE_SCALE
    truth = np.where(truth > 0, truth, np.nan)
    return StereoScene(
        "aloe", _resize(left, size), _resize(right, size), torch.from_numpy(truth).float()
    )


def load_scene(name: str) -> StereoScene:
    """A bundled scene (``SCENES``)."""
    loaders = {"motorcycle": _motorcycle, "aloe": _aloe}
    if name not in loaders:
        raise ValueError(f"scene must be one of: {', '.join(SCENES)}; got {name!r}")
    return loaders[name]()


# ----------------------------------------------------------------------------- files


def _read_pfm(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        header = f.readline().strip()
        if header not in (b"Pf", b"PF"):
            raise ValueError(f"{path}: not a PFM file (header {header[:8]!r})")
        try:
            width, height = map(int, f.readline().split())
            scale = float(f.readline().strip())
        except ValueError:
            raise ValueError(f"{path}: malformed PFM header") from None
        channels = 3 if header == b"PF" else 1
        count = width * height * channels
        data = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4")
    if data.size < count:
        raise ValueError(f"{path}: truncated PFM ({data.size} of {count} values)")
    image = data[:count].reshape(height, width, channels)[::-1, :, 0]
    return image.astype(np.float32)


def read_disparity(path: str | Path) -> Tensor:
    """A disparity map (H×W float32, NaN = unknown) from a PFM file (``inf`` unknown) or a
    16-bit greyscale PNG in KITTI's encoding (value / 256, 0 unknown). Any other image (an
    8-bit PNG would read as disparities below 1 px) is refused, as is one above Pillow's
    decompression-bomb limit."""
    path = Path(path)
    if path.suffix.lower() == ".pfm":
        a = _read_pfm(path)
        a = np.where(np.isfinite(a) & (a > 0), a, np.nan)
    else:
        from PIL import Image

        from robustvae.data.images import too_large

        try:
            with Image.open(path) as img:
                if not img.mode.startswith("I"):
                    raise ValueError(
                        f"{path}: a disparity PNG must be 16-bit greyscale (KITTI: disparity × "
                        f"256), got Pillow mode {img.mode!r}; or write the disparity as PFM"
                    )
                a = np.asarray(img, dtype=np.float64)
        except Image.DecompressionBombError as error:
            raise too_large(path, error) from None
        except (OSError, SyntaxError) as error:
            raise ValueError(f"{path}: unreadable disparity ({error})") from None
        a = np.where(a > 0, a / 256.0, np.nan)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _layout(root: Path) -> list[tuple[str, Path, Path, Path | None]]:
    """(name, left, right, disparity or None) for each pair under ``root``."""
    from robustvae.data.images import IMAGE_EXTENSIONS

    def images(folder: Path) -> dict[str, Path]:
        return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS}

    for left_dir, right_dir, disp_dirs in (
        ("image_2", "image_3", ("disp_occ_0", "disp_noc_0", "disp_occ", "disp_noc")),
        ("left", "right", ("disparity",)),
    ):
        if (root / left_dir).is_dir() and (root / right_dir).is_dir():
            lefts, rights = images(root / left_dir), images(root / right_dir)
            disp = next((root / d for d in disp_dirs if (root / d).is_dir()), None)
            pairs = []
            for name, left in lefts.items():
                if name not in rights:
                    raise ValueError(f"{left}: no right view {root / right_dir / name}")
                truth = None
                if disp is not None:
                    found = [disp / name, (disp / name).with_suffix(".pfm")]
                    truth = next((p for p in found if p.exists()), None)
                pairs.append((Path(name).stem, left, rights[name], truth))
            return pairs
    scenes = sorted(d for d in root.iterdir() if (d / "im0.png").exists())
    if scenes:
        return [
            (
                d.name,
                d / "im0.png",
                d / "im1.png",
                d / "disp0.pfm" if (d / "disp0.pfm").exists() else None,
            )
            for d in scenes
        ]
    raise ValueError(
        f"{root}: no stereo pairs found (expected image_2/ and image_3/ as KITTI, left/ and "
        "right/, or Middlebury scene folders with im0.png and im1.png)"
    )


def load_folder(root: str | Path) -> list[StereoScene]:
    """Every pair in a folder of rectified stereo pairs (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"stereo folder {root} does not exist")
    out = []
    for name, left, right, truth in _layout(root):
        disparity = None if truth is None else read_disparity(truth)
        views = _rgb(read_image(left)), _rgb(read_image(right))
        if views[0].shape != views[1].shape:
            raise ValueError(
                f"{left} is {views[0].shape[2]}×{views[0].shape[1]} but {right} is "
                f"{views[1].shape[2]}×{views[1].shape[1]}: a rectified pair has one size"
            )
        if disparity is not None and disparity.shape != views[0].shape[1:]:
            raise ValueError(
                f"{truth} is {disparity.shape[1]}×{disparity.shape[0]} but its views {left} are "
                f"{views[0].shape[2]}×{views[0].shape[1]}: ground truth must match the left view"
            )
        out.append(StereoScene(name, *views, disparity))
    if not out:
        raise ValueError(f"{root}: no stereo pairs found")
    return out


# ----------------------------------------------------------------------------- tiles


@dataclass(frozen=True, eq=False)
class StereoTiles:
    """Training tiles: ``left`` (uint8 N×3×T×T), ``right`` (uint8 N×3×T×(T + margin), reaching
    ``margin`` columns further left than the left tile, edge-replicated beyond the image) and
    ``disparity`` (float32 N×1×T×T, NaN unknown)."""

    left: Tensor
    right: Tensor
    disparity: Tensor
    scenes: list[StereoScene]
    margin: int

    @property
    def tensors(self) -> dict[str, Tensor]:
        return {"left": self.left, "right": self.right, "disparity": self.disparity}

    @property
    def item_shape(self) -> tuple[int, int, int]:
        return tuple(self.left.shape[1:])

    def __len__(self) -> int:
        return len(self.left)


def stereo_tiles(scenes: list[StereoScene], size: int, stride: int, margin: int) -> StereoTiles:
    """Every ``size``×``size`` window at multiples of ``stride`` (plus the last one flush with
    each edge) of each scene, with the right view's window ``margin`` columns wider."""
    lefts, rights, truths = [], [], []
    for scene in scenes:
        _, height, width = scene.left.shape
        if height < size or width < size:
            raise ValueError(
                f"{scene.name}: {width}×{height} is smaller than a {size}×{size} tile (twice "
                "the crop); use a smaller crop"
            )
        as_bytes = lambda image: (image * 255).round().to(torch.uint8)  # noqa: E731
        left = as_bytes(scene.left)
        right = torch.nn.functional.pad(
            as_bytes(scene.right)[None].float(), (margin, 0, 0, 0), mode="replicate"
        )[0].to(torch.uint8)
        truth = (
            scene.disparity
            if scene.disparity is not None
            else torch.full((height, width), float("nan"))
        )
        for r in sorted({*range(0, height - size + 1, stride), height - size}):
            for c in sorted({*range(0, width - size + 1, stride), width - size}):
                lefts.append(left[:, r : r + size, c : c + size])
                rights.append(right[:, r : r + size, c : c + size + margin])
                truths.append(truth[None, r : r + size, c : c + size])
    return StereoTiles(
        torch.stack(lefts).contiguous(),
        torch.stack(rights).contiguous(),
        torch.stack(truths).contiguous(),
        scenes,
        margin,
    )


def warn_beyond(scenes: list[StereoScene], max_disparity: int, share: float = 0.01) -> None:
    """A warning for each scene whose known disparities exceed ``max_disparity`` on more than
    ``share`` of its pixels: a net of that range cannot predict them."""
    import warnings

    for scene in scenes:
        if scene.disparity is None:
            continue
        known = scene.disparity[torch.isfinite(scene.disparity) & (scene.disparity > 0)]
        beyond = (known > max_disparity).float().mean().item() if known.numel() else 0.0
        if beyond > share:
            warnings.warn(
                f"{scene.name}: {beyond:.0%} of its known disparities exceed max_disparity "
                f"{max_disparity} (up to {known.max().item():.0f} px): the net cannot predict "
                "them; raise max_disparity or shrink the pair",
                stacklevel=2,
            )
