"""Image grids: N×C×H×W tensors drawn as one picture, and saved as PNG files (Pillow)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0):
    """N×C×H×W images in [0, 1] → one H'×W'×C uint8 array, ``nrow`` images per row."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images shaped (N, 1|3, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = torch.full(
        (c, rows * (h + padding) + padding, nrow * (w + padding) + padding), float(pad_value)
    )
    for i, image in enumerate(images.detach().float().cpu().clamp(0, 1)):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = image
    array = (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    return array[:, :, 0] if c == 1 else array


def save_grid(images: Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    """Write ``images`` as a PNG grid (upscaled ``scale``× with nearest neighbours);
    ValueError when they are not finite (a model whose weights overflow), which a PNG would
    show as black."""
    path = Path(path)
    if not torch.isfinite(images).all():
        raise ValueError(f"{path}: the images to draw are not finite (NaN or infinite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(make_grid(images, nrow))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    picture.save(path)
    return path
