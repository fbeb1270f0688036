"""Mini-batches from data held in memory: one indexing operation per tensor and batch, no
per-item ``__getitem__``, and the same order on every process of a distributed run."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["Batches"]


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return value


class Batches:
    """Iterate mini-batches of data held in memory, each a dict of named tensors.

    Args:
        dataset: the data: an object with ``tensors``, a dict of tensors of equal length along
            their first dimension (an :class:`~robustvae.data.ImageDataset` gives ``image`` and,
            when it has labels, ``label``). Each batch holds the same names.
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
        dataset,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        tensors = getattr(dataset, "tensors", None)
        if not isinstance(tensors, dict) or not tensors:
            raise ValueError(
                f"Batches needs data with named tensors (an ImageDataset, say), got "
                f"{type(dataset).__name__}"
            )
        lengths = {name: len(t) for name, t in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"the data's tensors differ in length: {lengths}")
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
        full, rest = divmod(self._rows(), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self) -> Tensor:
        """The global order of the current epoch (int64 indices, identical on every rank)."""
        n = self._rows()
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(n, generator=g)

    def _rows(self) -> int:
        return len(next(iter(self.dataset.tensors.values())))

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        tensors = self.dataset.tensors
        n, size, w, k = self._rows(), self.batch_size, self.world_size, self.rank
        # The order is drawn on the CPU (the same on every machine), then moved to the data.
        device = next(iter(tensors.values())).device
        order = self.order().to(device) if self.shuffle else None
        for b in range(len(self)):
            start = b * size
            r = min(size, n - start)
            lo, hi = start + k * r // w, start + (k + 1) * r // w
            if order is None:  # contiguous rows: views, no copy
                yield {name: t[lo:hi] for name, t in tensors.items()}
            else:
                idx = order[lo:hi]
                yield {name: t.index_select(0, idx) for name, t in tensors.items()}

    def __repr__(self) -> str:
        name = f"{getattr(self.dataset, 'name', '')}/{getattr(self.dataset, 'split', '')}"
        return (
            f"Batches({name}: {self._rows()} rows, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, seed={self.seed}, "
            f"epoch={self.epoch}, drop_last={self.drop_last}, rank={self.rank}, "
            f"world_size={self.world_size})"
        )
