"""Host synchronisations per training step on CUDA, counted by torch's sync debug mode.

    python bench/bench_sync.py [--kind vae|wae] [--arch conv] [--width 1]

Trains one epoch of mnist-5k (4,000 images) in batches of 100 (40 steps) and in batches of 50
(80 steps) with ``torch.cuda.set_sync_debug_mode("warn")`` and counts the warnings: the
difference over 40 is the number of synchronisations per training step (the per-epoch work,
evaluation and checkpoints, is the same in both and cancels out). On a GPU the trainer's
finite check copies each step's terms to the host without waiting and waits one step later.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import torch

from robustvae.training import RunConfig, train


def count_syncs(config: RunConfig) -> int:
    with tempfile.TemporaryDirectory() as run_dir, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(config, run_dir)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="vae")
    parser.add_argument("--arch", default="conv")
    parser.add_argument("--width", type=float, default=1.0)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_sync.py needs CUDA")
    arch = {} if args.kind == "vaegan" else {"arch": args.arch}  # the VAE-GAN has its own nets
    base = RunConfig.make(
        kind=args.kind, width=args.width, device="cuda", progress=False, tensorboard=False,
        epochs=1, **arch,
    )  # fmt: skip
    forty, eighty = count_syncs(base), count_syncs(base.replace(batch_size=50))
    print(
        f"{args.kind} {args.arch} width {args.width:g} on {torch.cuda.get_device_name()}: "
        f"{forty} synchronisations in an epoch of 40 steps, {eighty} in one of 80; "
        f"{(eighty - forty) / 40:.2f} per step"
    )


if __name__ == "__main__":
    main()
