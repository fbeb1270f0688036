"""Run a fully convolutional net (the restorer's and the depth net's U-Net) on a whole image of
any size, in one pass or in tiles.

The image is padded (edge replication) to multiples of 32 and run through the net; the output
is cropped back. Tiled, the padded image is cut into cores of ``tile`` pixels (a multiple of
32); each core is run with a context ``margin`` around it (clipped at the padded image's edges)
and only the core is kept. Core and margin are multiples of 32, so every window keeps the
net's pooling grid; with ``margin`` ≥ the net's receptive radius (``RECEPTIVE_RADIUS``, 189
pixels; the default margin is 192) each kept pixel sees exactly what it sees in one pass, and
tiled output equals untiled output to float rounding. Memory then grows with the tile, not the
image.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from robustvae.unet import MULTIPLE, RECEPTIVE_RADIUS

__all__ = ["MARGIN", "ONE_PASS_PIXELS", "TILE", "infer", "run_tiled", "tile_windows"]

MARGIN = math.ceil(RECEPTIVE_RADIUS / MULTIPLE) * MULTIPLE
#: Images up to this many pixels run in one pass; larger ones in tiles (of ``TILE`` by default).
ONE_PASS_PIXELS = 1024 * 1024
TILE = 512


def _pad(image: Tensor) -> tuple[Tensor, int, int]:
    height, width = image.shape[-2:]
    ph, pw = -height % MULTIPLE, -width % MULTIPLE
    padded = F.pad(image[None], (0, pw, 0, ph), mode="replicate")[0] if ph or pw else image
    return padded, height, width


def tile_windows(size: int, tile: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Along one axis of ``size`` pixels: (window start, window end, core start, core end)."""
    out = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        out.append((max(0, start - margin), min(size, end + margin), start, end))
    return out


@torch.no_grad()
def infer(net, image: Tensor, tile: int | None = TILE, margin: int = MARGIN) -> Tensor:
    """``net`` on a whole C×H×W image, the one inference path of the image-to-image kinds
    (their evaluators and their CLI): one pass up to ``ONE_PASS_PIXELS`` pixels, else cores of
    ``tile`` pixels (``tile`` None: always one pass)."""
    large = tile is not None and image.shape[-1] * image.shape[-2] > ONE_PASS_PIXELS
    return run_tiled(net, image, tile if large else None, margin)


def run_tiled(net, image: Tensor, tile: int | None = None, margin: int = MARGIN) -> Tensor:
    """``net`` applied to ``image`` (C×H×W, on the net's device), returning C'×H×W.

    ``tile`` None runs one pass; else cores of ``tile`` pixels with ``margin`` pixels of
    context (both multiples of 32)."""
    if image.dim() != 3:
        raise ValueError(f"run_tiled takes one C×H×W image, got shape {tuple(image.shape)}")
    for name, value in (("tile", tile), ("margin", margin)):
        if value is not None and (value < 0 or value % MULTIPLE or (name == "tile" and not value)):
            raise ValueError(f"{name} must be a positive multiple of {MULTIPLE}, got {value!r}")
    padded, height, width = _pad(image)
    if tile is None or (padded.shape[-1] <= tile and padded.shape[-2] <= tile):
        return net(padded[None])[0, :, :height, :width]
    out = None
    for r0, r1, cr0, cr1 in tile_windows(padded.shape[-2], tile, margin):
        for c0, c1, cc0, cc1 in tile_windows(padded.shape[-1], tile, margin):
            window = net(padded[None, :, r0:r1, c0:c1])[0]
            if out is None:
                out = window.new_empty((window.shape[0], *padded.shape[-2:]))
            out[:, cr0:cr1, cc0:cc1] = window[:, cr0 - r0 : cr1 - r0, cc0 - c0 : cc1 - c0]
    return out[:, :height, :width]
