"""The depth kind's speed: training through the trainer against a plain loop, and the
photometric objective (warp + loss) per megapixel.

    .venv/bin/python bench/bench_depth.py [--width 0.25] [--epochs 2] [--rounds 3]
        [--device cpu|cuda] [--only train|warp]

1. Training crops/s of the ``depth`` kind (U-Net width 1/4, l1, 128×128 crops, batch 4, the
   motorcycle scene's tiles): the trainer's training loop (its recorded per-epoch seconds)
   and its whole ``train()`` call against a plain loop of the same task, Adam, batches,
   crops and steps, alternating in one process; the best of the rounds counts.
2. Warp (bilinear ``grid_sample`` of the right view by a disparity) plus the photometric
   loss, forward and backward, in ms per megapixel (batches of 4 crops of 256×256), for l1,
   the general loss at α = 1 (fixed) and the adaptive loss (α per channel, c fixed), against
   the warp with l1 — the baseline's cost. Losses run as they do in training (fused where
   compiled); the first call of each is a warm-up.
"""

from __future__ import annotations

import argparse
import time

import torch
from task_loops import compare, sync

from robustvae.depth.model import DepthConfig, DepthTask
from robustvae.depth.warp import warp_right_to_left
from robustvae.training import RunConfig


def bench_training(args) -> None:
    config = RunConfig.make(
        kind="depth",
        dataset="motorcycle",
        width=args.width,
        loss="l1",
        batch_size=4,
        device=args.device,
        progress=False,
        tensorboard=False,
    )
    compare(f"depth training, width {args.width}", config, args.epochs, args.rounds)


def bench_warp(args) -> None:
    device = torch.device(args.device)
    torch.manual_seed(0)
    n, size, margin = 4, 256, 64
    left = torch.rand(n, 3, size, size, device=device)
    right = torch.rand(n, 3, size, size + margin, device=device)
    megapixels = n * size * size / 1e6
    losses = {
        "l1": DepthConfig(loss="l1"),
        "general α=1, c=0.01": DepthConfig(
            loss="general", loss_params={"alpha": 1.0, "scale": 0.01}
        ),
        "adaptive (c fixed)": DepthConfig(
            loss="adaptive", loss_params={"scale_init": 0.01, "learn_scale": False}
        ),
    }
    timings = {}
    for name, config in losses.items():
        task = DepthTask(config, (3, size, size)).to(device)
        raw = torch.full((n, 1, size, size), 20.0, device=device, requires_grad=True)

        def step(task=task, raw=raw):
            warped = warp_right_to_left(right, raw, offset=margin)
            if task.per_channel:
                value = task.loss(warped.movedim(1, -1), left.movedim(1, -1))
            else:
                value = task.loss(warped, left)
            value.backward()

        step()  # warm-up (compiles a fused loss)
        best = float("inf")
        for _ in range(args.rounds * 3):
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            best = min(best, time.perf_counter() - start)
        timings[name] = best * 1e3 / megapixels
    base = timings["l1"]
    for name, ms in timings.items():
        print(f"warp + {name}: {ms:.1f} ms per megapixel ({ms / base:.2f}× warp + l1)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=("train", "warp"))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}")
    if args.only != "warp":
        bench_training(args)
    if args.only != "train":
        bench_warp(args)


if __name__ == "__main__":
    main()
