"""The restorer's speed: training through the trainer against a plain loop, and inference.

    .venv/bin/python bench/bench_restoration.py [--width 0.25] [--epochs 1] [--rounds 3]
        [--device cpu|cuda] [--apply-width 1] [--only train|apply]

1. Training images/s (crops/s) of the ``restore`` kind (Noise2Noise U-Net, l1, text, 64×64
   crops, batch 16, the bundled photos): the trainer's training loop (the per-epoch
   ``seconds`` it records) and its whole ``train()`` call, against a plain loop of the same
   task, Adam settings, batches, per-step corruption and steps, alternating in one process;
   the best of the rounds counts. The text corruption runs on the host in both, three times:
   with each string rendered by Pillow (``text_bank = false``, as before the bank) and the
   U-Net's activations contiguous (``UNet.channels_last = False``, as before 2026-12-07); with
   strings from the bank (the default) and the old layout; and with both defaults, the bank
   and channels-last. Consecutive lines' ratios are each change's gain.
2. ``restore apply``: megapixels/s of the U-Net at ``--apply-width`` (1: the paper's net) on a
   photo in one pass, and tiled (cores of 256 and 512 pixels with the exact 192-pixel margin),
   with the cost of tiling as a ratio against one pass.
"""

from __future__ import annotations

import argparse
import time

import torch
from task_loops import compare, sync

from robustvae.tiling import run_tiled
from robustvae.training import RunConfig
from robustvae.unet import UNet


def bench_training(args) -> None:
    for text_bank, channels_last in ((False, False), (True, False), (True, True)):
        UNet.channels_last = channels_last
        config = RunConfig.make(
            kind="restore",
            dataset="photos",
            width=args.width,
            loss="l1",
            batch_size=16,
            device=args.device,
            progress=False,
            tensorboard=False,
            text_bank=text_bank,
        )
        text = "banked" if text_bank else "rendered"
        layout = "channels-last" if channels_last else "contiguous"
        compare(
            f"restore training, width {args.width}, {text} text, {layout}",
            config,
            args.epochs,
            args.rounds,
        )
    UNet.channels_last = True


def _megapixels_per_second(net, image, tile, rounds: int, device) -> float:
    best = 0.0
    for _ in range(rounds):
        sync(device)
        start = time.perf_counter()
        run_tiled(net, image, tile)
        sync(device)
        best = max(best, image.shape[-1] * image.shape[-2] / 1e6 / (time.perf_counter() - start))
    return best


def bench_apply(args) -> None:
    from robustvae.restoration.data import load_images

    device = torch.device(args.device)
    net = UNet(3, args.apply_width).to(device).eval()
    photo = next(i for i in load_images("photos", "train") if i.name == "retina").image
    image = photo.to(device)  # 640×640
    run_tiled(net, image[:, :64, :64])  # warm-up
    UNet.channels_last = False
    contiguous = _megapixels_per_second(net, image, None, args.rounds, device)
    UNet.channels_last = True
    one = _megapixels_per_second(net, image, None, args.rounds, device)
    print(
        f"restore apply, width {args.apply_width}, {image.shape[-1]}×{image.shape[-2]}: one pass "
        f"{one:.3f} MP/s ({one / contiguous:.2f}× the contiguous layout's {contiguous:.3f})",
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
