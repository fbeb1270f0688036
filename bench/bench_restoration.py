"""The restorer's speed: training through the trainer against a plain loop, and inference.

    .venv/bin/python bench/bench_restoration.py [--width 0.25] [--epochs 1] [--rounds 3]
        [--device cpu|cuda] [--apply-width 1] [--only train|apply]

1. Training images/s (crops/s) of the ``restore`` kind (Noise2Noise U-Net, l1, text, 64×64
   crops, batch 16, the bundled photos): the trainer's training loop (the per-epoch
   ``seconds`` it records) and its whole ``train()`` call, against a plain loop of the same
   task, Adam settings, batches, per-step corruption and steps, alternating in one process;
   the best of the rounds counts. The text corruption (Pillow, on the host) runs in both.
2. ``restore apply``: megapixels/s of the U-Net at ``--apply-width`` (1: the paper's net) on a
   photo in one pass, and tiled (cores of 256 and 512 pixels with the exact 192-pixel margin),
   with the cost of tiling as a ratio against one pass.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from robustvae.data import Batches
from robustvae.kinds import KINDS
from robustvae.restoration.model import ADAM, Restorer
from robustvae.tiling import run_tiled
from robustvae.training import RunConfig, train
from robustvae.training.trainer import step_generator
from robustvae.unet import UNet


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(config: RunConfig, epochs: int) -> float:
    """Crops per second of a hand-written Noise2Noise loop over the trainer's batches."""
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    data, _ = KINDS["restore"].load_data(config)
    task = Restorer(config.model, data.item_shape).to(device)
    optimizer = torch.optim.Adam(task.parameters(), lr=config.lr, **ADAM)
    batches = Batches(data, config.batch_size, shuffle=True, seed=config.seed)
    rows, seconds = 0, 0.0
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        _sync(device)
        start = time.perf_counter()
        for b, batch in enumerate(batches):
            batch = task.batch_transform(batch, step_generator(config.seed, epoch, b, 0))
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            loss = task.loss_terms(batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            rows += len(batch["input"])
        _sync(device)
        seconds += time.perf_counter() - start
    return rows / seconds


def trainer(config: RunConfig, epochs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        train(config.replace(epochs=epochs), run_dir)
        whole = time.perf_counter() - start
        rows = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    n = len(KINDS["restore"].load_data(config)[0]) * epochs
    return n / sum(r["seconds"] for r in rows), n / whole


def bench_training(args) -> None:
    config = RunConfig.make(
        kind="restore",
        dataset="photos",
        width=args.width,
        loss="l1",
        batch_size=16,
        device=args.device,
        progress=False,
        tensorboard=False,
    )
    loop, inner, whole = [], [], []
    for _ in range(args.rounds):
        loop.append(plain_loop(config, args.epochs))
        a, b = trainer(config, args.epochs)
        inner.append(a)
        whole.append(b)
    print(
        f"restore training, width {args.width}: plain loop {max(loop):.1f} crops/s; trainer "
        f"loop {max(inner):.1f} crops/s ({max(inner) / max(loop):.3f}×); whole train() "
        f"{max(whole):.1f} crops/s ({max(whole) / max(loop):.2f}×, incl. test evaluation and "
        "checkpoints)",
        flush=True,
    )


def _megapixels_per_second(net, image, tile, rounds: int, device) -> float:
    best = 0.0
    for _ in range(rounds):
        _sync(device)
        start = time.perf_counter()
        run_tiled(net, image, tile)
        _sync(device)
        best = max(best, image.shape[-1] * image.shape[-2] / 1e6 / (time.perf_counter() - start))
    return best


def bench_apply(args) -> None:
    from robustvae.restoration.data import load_images

    device = torch.device(args.device)
    net = UNet(3, args.apply_width).to(device).eval()
    photo = next(i for i in load_images("photos", "train") if i.name == "retina").image
    image = photo.to(device)  # 640×640
    run_tiled(net, image[:, :64, :64])  # warm-up
    one = _megapixels_per_second(net, image, None, args.rounds, device)
    print(
        f"restore apply, width {args.apply_width}, {image.shape[-1]}×{image.shape[-2]}: one pass "
        f"{one:.3f} MP/s",
        flush=True,
    )
    for tile in (256, 512):
        tiled = _megapixels_per_second(net, image, tile, args.rounds, device)
        print(
            f"  tiles of {tile} (+192 margin): {tiled:.3f} MP/s ({tiled / one:.2f}× one pass)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--apply-width", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=("train", "apply"))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}")
    if args.only != "apply":
        bench_training(args)
    if args.only != "train":
        bench_apply(args)


if __name__ == "__main__":
    main()
