"""Mini-batches from a dataset held in memory: one indexing operation per batch, no per-item
``__getitem__``, and the same order on every process of a distributed run."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from robustvae.data.datasets import ImageDataset

__all__ = ["Batches"]


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return value


class Batches:
    """Iterate ``(images, labels)`` mini-batches of an :class:`ImageDataset`.

    Args:
        dataset: the data, in memory. ``labels`` in each batch is None when the dataset has none.
        batch_size: the **global** batch size: the number of rows all ranks together take per
            step. With ``world_size`` ranks each rank gets ``batch_size // world_size`` rows of
            every full batch, so ``batch_size`` must be divisible by ``world_size``
            (``ValueError`` otherwise). A one-process run with the same ``batch_size`` and
            ``seed`` sees exactly the union of the ranks' batches, step by step.
        shuffle: draw a new permutation every epoch; else keep the dataset's order.
        seed: the permutation of epoch ``e`` is ``torch.randperm(N)`` from a CPU generator
            seeded with ``seed + e``; it depends on nothing else (not the global RNG, not rank).
        drop_last: drop the final batch when it has fewer than ``batch_size`` rows.
        rank, world_size: this process's rank among ``world_size`` data-parallel processes.

    Sharding: global batch ``b`` is the rows ``order[b*batch_size : (b+1)*batch_size]`` of the
    epoch's order; rank ``k`` takes its contiguous part ``[k*r//W, (k+1)*r//W)`` where ``r`` is
    that batch's length and ``W = world_size`` (for full batches, ``batch_size // W`` rows
    each). The ranks' parts cover each global batch exactly once. A final partial batch
    (``drop_last=False``) is split the same way, so ranks may get one row more or less than each
    other, and a rank gets an empty batch when ``r < W``: weight a mean loss by the rows, or
    use ``drop_last=True`` under data parallelism. Every rank yields ``len(self)`` batches.

    Call :meth:`set_epoch` before each epoch (as with ``DistributedSampler``): iterating twice
    without it repeats the same order, which is what a resumed run needs.
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not isinstance(dataset, ImageDataset):
            raise ValueError(f"Batches needs an ImageDataset, got {type(dataset).__name__}")
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.world_size = _check_int("world_size", world_size, 1)
        self.rank = _check_int("rank", rank, 0)
        self.seed = _check_int("seed", seed, 0)
        if rank >= world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} (the global batch) must be divisible by "
                f"world_size {world_size}"
            )
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    @property
    def local_batch_size(self) -> int:
        """Rows per full batch on this rank: ``batch_size // world_size``."""
        return self.batch_size // self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (seeded ``seed + epoch``) from the next iteration on."""
        self.epoch = _check_int("epoch", epoch, 0)

    def __len__(self) -> int:
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self) -> Tensor:
        """The global order of the current epoch (int64 indices, identical on every rank)."""
        n = len(self.dataset)
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(n, generator=g)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor | None]]:
        images, labels = self.dataset.images, self.dataset.labels
        n, size, w, k = len(self.dataset), self.batch_size, self.world_size, self.rank
        # The order is drawn on the CPU (the same on every machine), then moved to the data.
        order = self.order().to(images.device) if self.shuffle else None
        for b in range(len(self)):
            start = b * size
            r = min(size, n - start)
            lo, hi = start + k * r // w, start + (k + 1) * r // w
            if order is None:  # contiguous rows: views, no copy
                yield images[lo:hi], None if labels is None else labels[lo:hi]
            else:
                idx = order[lo:hi]
                yield (
                    images.index_select(0, idx),
                    None if labels is None else labels.index_select(0, idx),
                )

    def __repr__(self) -> str:
        return (
            f"Batches({self.dataset.name}/{self.dataset.split}: {len(self.dataset)} images, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, seed={self.seed}, "
            f"epoch={self.epoch}, drop_last={self.drop_last}, rank={self.rank}, "
            f"world_size={self.world_size})"
        )
