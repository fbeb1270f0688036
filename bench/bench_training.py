"""Training throughput: the trainer against a plain hand-written loop, and data load times.

    .venv/bin/python bench/bench_training.py [--epochs 5]

1. VAE (MLP, width 1, latent 8, l2), batch 100, mnist-5k (4,000 training images): images/s of
   the trainer's training loop (the per-epoch ``seconds`` it records, which exclude test
   evaluation and checkpointing) and of its whole ``train()`` call, each against a plain loop
   of the same model, optimiser, batches and steps, run in the same process. Runs alternate
   so that drift in machine speed hits both.
2. The same for VAE (Conv, width 1/8) with logcosh (a = 100), the loss fused.
3. Full Fashion-MNIST (70k) load time, cold (empty cache) and warm.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("ROBUSTVAE_CACHE", tempfile.mkdtemp(prefix="robustvae-bench-cache-"))

from robustvae.data import Batches, load_dataset  # noqa: E402
from robustvae.models import build_model  # noqa: E402
from robustvae.training import RunConfig, train  # noqa: E402


def plain_loop(config: RunConfig, epochs: int) -> float:
    """images/s of a hand-written loop: same model, Adam, batches and number of steps."""
    torch.manual_seed(config.seed)
    data = load_dataset(config.dataset, "train")
    model = build_model(config.model.resolve(config.kind, data.item_shape))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batches = Batches(data, config.batch_size, shuffle=True, seed=config.seed)
    images_seen, seconds = 0, 0.0
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        start = time.perf_counter()
        for batch in batches:
            images = batch["image"]
            loss = model(images)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            images_seen += len(images)
        seconds += time.perf_counter() - start
    return images_seen / seconds


def trainer(config: RunConfig, epochs: int) -> tuple[float, float]:
    """(images/s of the training loop, images/s of the whole train() call)."""
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        train(config.replace(epochs=epochs), run_dir)
        whole = time.perf_counter() - start
        rows = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    n = len(load_dataset(config.dataset, "train")) * epochs
    return n / sum(r["seconds"] for r in rows), n / whole


def compare(name: str, config: RunConfig, epochs: int, rounds: int) -> None:
    loop, inner, whole = [], [], []
    for _ in range(rounds):
        loop.append(plain_loop(config, epochs))
        a, b = trainer(config, epochs)
        inner.append(a)
        whole.append(b)
    m = statistics.median
    print(
        f"{name}: plain loop {m(loop):.0f} img/s; trainer loop {m(inner):.0f} img/s "
        f"({m(inner) / m(loop):.2f}×); whole train() {m(whole):.0f} img/s "
        f"({m(whole) / m(loop):.2f}×, incl. test evaluation and checkpoints)"
    )


def load_times() -> None:
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        print("Fashion-MNIST: not installed (apt-get install dataset-fashion-mnist)")
        return
    with tempfile.TemporaryDirectory() as cache:
        timings = []
        for label in ("cold", "warm"):
            start = time.perf_counter()
            for split in ("train", "test"):
                load_dataset("fashion-mnist", split, cache_dir=cache)
            timings.append(f"{label} {time.perf_counter() - start:.2f} s")
    print("Fashion-MNIST 70k load: " + ", ".join(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    load_dataset("mnist-5k", "train")  # parse and cache before timing
    base = RunConfig.make(progress=False, tensorboard=False, device="cpu")
    compare("VAE MLP w1 l2", base, args.epochs, args.rounds)
    conv = base.replace(arch="conv", width=0.125, loss="logcosh", loss_params={"a": 100.0})
    compare("VAE Conv w1/8 logcosh", conv, max(1, args.epochs // 5), args.rounds)
    load_times()


if __name__ == "__main__":
    main()
