"""What the per-kind benchmarks share: the trainer against a plain hand-written loop over the
same task, optimizer, batches, per-step transforms and steps, alternating in one process.

The plain loop builds the kind's task and its one parameter group's optimizer exactly as the
trainer does (``Task.parameter_groups``), so the two differ only in the trainer's own work.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from robustvae.data import Batches
from robustvae.kinds import get_kind
from robustvae.training import RunConfig, train
from robustvae.training.terms import step_generator


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(config: RunConfig, epochs: int) -> float:
    """Rows per second of a hand-written loop: transform, loss, backward, step."""
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    kind = get_kind(config.kind)
    data, _ = kind.load_data(config)
    task = kind.build(config.model, data.item_shape).to(device)
    (group,) = task.parameter_groups().values()
    optimizer = group.build(config.lr)
    batches = Batches(data, config.batch_size, shuffle=True, seed=config.seed)
    rows, seconds = 0, 0.0
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        sync(device)
        start = time.perf_counter()
        for b, batch in enumerate(batches):
            if task.has_batch_transform:
                batch = task.batch_transform(batch, step_generator(config.seed, epoch, b, 0))
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            loss = task.loss_terms(batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            rows += len(next(iter(batch.values())))
        sync(device)
        seconds += time.perf_counter() - start
    return rows / seconds


def trainer(config: RunConfig, epochs: int) -> tuple[float, float]:
    """(rows/s of the trainer's training loop, rows/s of the whole ``train()`` call)."""
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        train(config.replace(epochs=epochs), run_dir)
        whole = time.perf_counter() - start
        rows = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    n = len(get_kind(config.kind).load_data(config)[0]) * epochs
    return n / sum(r["seconds"] for r in rows), n / whole


def compare(name: str, config: RunConfig, epochs: int, rounds: int) -> None:
    """Best of ``rounds`` alternating runs of each, printed as one line."""
    loop, inner, whole = [], [], []
    for _ in range(rounds):
        loop.append(plain_loop(config, epochs))
        a, b = trainer(config, epochs)
        inner.append(a)
        whole.append(b)
    print(
        f"{name}: plain loop {max(loop):.1f} rows/s; trainer loop {max(inner):.1f} rows/s "
        f"({max(inner) / max(loop):.3f}×); whole train() {max(whole):.1f} rows/s "
        f"({max(whole) / max(loop):.2f}×, incl. test evaluation and checkpoints)",
        flush=True,
    )
