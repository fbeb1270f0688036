"""Training crops of square tiles, for the image-to-image kinds (``restore``, ``depth``): one
window per tile, at a random place while training and centred in eval mode, so every epoch's
test terms see the same pixels."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["crop_offsets", "cut"]


def crop_offsets(
    n: int, size: int, crop: int, generator: torch.Generator, random: bool
) -> list[tuple[int, int]]:
    """(row, column) of a ``crop``-sided window in each of ``n`` tiles of side ``size``: drawn
    from ``generator`` when ``random``, else centred. ValueError when the tiles are smaller."""
    if size < crop:
        raise ValueError(f"tiles of {size} pixels are smaller than the crop ({crop})")
    if random:
        drawn = torch.randint(0, size - crop + 1, (n, 2), generator=generator).tolist()
        return [(r, c) for r, c in drawn]
    return [((size - crop) // 2,) * 2] * n


def cut(tiles: Tensor, offsets: list[tuple[int, int]], crop: int, extra: int = 0) -> Tensor:
    """The windows of ``tiles`` (N×C×H×W) at ``offsets``, ``crop`` high and ``crop + extra``
    wide (a right view reaches ``extra`` columns further)."""
    return torch.stack(
        [t[:, r : r + crop, c : c + crop + extra] for t, (r, c) in zip(tiles, offsets, strict=True)]
    )
