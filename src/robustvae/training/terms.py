"""A run's test terms: the mean of each loss term over the test data, as every epoch logs
them, and the seeded generator each step's batch transform draws from."""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from robustvae.data import Batches
from robustvae.task import Task
from robustvae.training.monitor import term_weights, weighted_means

__all__ = ["EVAL_BATCH", "batch_rows", "step_generator", "test_terms"]

#: The rows of a test batch.
EVAL_BATCH = 500


def step_generator(seed: int, epoch: int, step: int, rank: int) -> torch.Generator:
    """The generator of a batch transform at one step: a function of the run's seed, the
    epoch, the step within it and the rank only, so a resumed run draws the same."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{step}/{rank}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def batch_rows(batch: dict[str, Tensor]) -> int:
    """How many rows (examples) a batch of named tensors holds."""
    return len(next(iter(batch.values())))


@torch.no_grad()
def test_terms(task: Task, data, device: torch.device, seed: int = 0) -> dict[str, float]:
    """Mean of every loss term over ``data`` (batches of 500, no batch of 1), in eval mode and
    without gradients; the task's mode is restored afterwards. A batch transform draws from
    generators fixed by ``seed`` and the batch index: every epoch sees the same test batches.
    A term in the task's ``term_weights`` is weighed in each batch by its weight term."""
    was_training = task.training
    task.eval()
    names: list[str] = []
    totals = torch.zeros(2, 0, dtype=torch.float64)
    n = len(data)
    size = EVAL_BATCH + 1 if n % EVAL_BATCH == 1 else EVAL_BATCH
    try:
        for b, batch in enumerate(Batches(data, size, shuffle=False)):
            if task.has_batch_transform:
                batch = task.batch_transform(batch, step_generator(seed, -1, b, 0))
            batch = {k: v.to(device) for k, v in batch.items()}
            rows = batch_rows(batch)
            terms = task.loss_terms(batch)
            if not names:
                names, totals = list(terms), torch.zeros(2, len(terms), dtype=torch.float64)
            values = torch.tensor([v.item() for v in terms.values()], dtype=torch.float64)
            weights = term_weights(names, values, task.term_weights)
            totals += torch.stack([values * weights * rows, weights * rows])
    finally:
        task.train(was_training)
    return weighted_means(names, totals)


test_terms.__test__ = False  # a function of the library, not a test for pytest to collect
