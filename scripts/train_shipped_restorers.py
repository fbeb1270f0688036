"""Train the restorers robustvae ships (``restore apply --model NAME``), score them on the
held-out photos, and export them with their manifest.

    .venv/bin/python scripts/train_shipped_restorers.py [NAME …] [--runs DIR]
        [--epochs N] [--width W] [--device cpu|cuda]

Each model (``MODELS``) is a ``restore`` run on the bundled photos' training split with the
settings below, chosen before training from Noise2Noise's protocol and the measured
``text-removal`` preset, never from the test photos: L1 for text (its median ignores text
that covers a pixel in under half of the draws), L2 for zero-mean Gaussian noise, the
learning rate ramped down over the last 30% of steps, and the weights' moving average. Runs
go to ``--runs`` (default ``runs/shipped``; an unfinished one resumes). Each finished run is
scored on the 10 held-out photos (``restore evaluate``'s protocol: every photo corrupted once
at the noise's test level, seeded by its name) and exported to
``src/robustvae/restoration/weights/NAME.safetensors``; ``manifest.json`` there records the
file's SHA-256, the settings, steps, wall time, machine and the scores. The README's table of
shipped restorers is printed at the end (``shipped_table``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from robustvae.evaluation.restoration import evaluate_images, summarise
from robustvae.restoration import shipped
from robustvae.restoration.data import load_images
from robustvae.training import RunConfig, RunDir, load_run, train

OUT = Path(__file__).resolve().parents[1] / "src" / "robustvae" / "restoration" / "weights"
COMMON = dict(
    kind="restore",
    dataset="photos",
    crop=128,
    batch_size=8,
    lr=1e-3,
    lr_schedule="rampdown",
    rampdown_fraction=0.3,
    ema=0.999,
    seed=0,
    tensorboard=False,
)
MODELS = {
    "text": dict(
        removes="overlaid text (any font, colour and size, up to half the pixels)",
        settings=dict(noise="text", loss="l1", width=0.5, epochs=320),
    ),
    "gaussian": dict(
        removes="Gaussian noise, σ up to 50/255",
        # 1,620 steps: a decay of 0.995 leaves the initial weights 3e-4 of the average
        # (0.999 would leave them 0.2; the text model's 3,780 steps leave 0.023 at 0.999)
        settings=dict(noise="gaussian", loss="l2", width=0.5, epochs=60, ema=0.995),
    ),
}


def _machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads, {platform.machine()})"


def train_one(name: str, runs: Path, overrides: dict, device: str) -> None:
    spec = MODELS[name]
    settings = {**COMMON, **spec["settings"], **overrides, "device": device}
    config = RunConfig.make(**settings)
    run_dir = runs / name
    started = time.perf_counter()
    resume = RunDir(run_dir).saved_settings() is not None
    train(config, run_dir, resume=resume)
    seconds = time.perf_counter() - started
    metrics = RunDir(run_dir).read_metrics()
    trained_seconds = sum(row["seconds"] for row in metrics)
    steps = metrics[-1]["step"]

    loaded, task = load_run(run_dir, device=device)
    images = load_images(loaded.dataset, "test")
    per_image, _ = evaluate_images(task, loaded, images, device, seed=0)
    scores = summarise(per_image)
    model = loaded.model
    net = f"U-Net width {model.width:g}"
    entry = {
        "removes": spec["removes"],
        "summary": (
            f"{net}, {model.loss}, {steps:,} steps of {config.batch_size} crops of "
            f"{model.crop}² ({config.epochs} epochs)"
        ),
        "trained": {
            "settings": config.to_dict(),
            "steps": steps,
            "training_seconds": round(trained_seconds, 1),
            "machine": _machine(device),
            "torch": torch.__version__,
            "date": datetime.date.today().isoformat(),
            "command": f"scripts/train_shipped_restorers.py {name}",
        },
        "scores": {
            "images": scores["images"],
            "noise_test": model.levels()[2],
            "evaluation_seed": 0,
            "ssim": scores["ssim"],
            "ssim_std": scores["ssim_std"],
            "psnr": scores["psnr"],
            "psnr_std": scores["psnr_std"],
            "input_ssim": scores["input_ssim"],
            "input_psnr": scores["input_psnr"],
            "one_minus_ssim": scores["one_minus_ssim"],
            "per_image_ssim": {r["name"]: round(r["ssim"], 5) for r in per_image},
        },
    }
    path = shipped.export(run_dir, name, entry, OUT)
    print(save_picture(name, task, loaded, images, device), flush=True)
    print(
        f"{name}: {steps:,} steps in {trained_seconds / 60:.1f} min of training "
        f"({seconds / 60:.1f} min in all); held-out photos: SSIM {scores['input_ssim']:.4f} → "
        f"{scores['ssim']:.4f} (1 − SSIM {scores['one_minus_ssim']:.4f}; median over photos "
        f"{statistics.median(r['ssim'] for r in per_image):.4f}), PSNR "
        f"{scores['input_psnr']:.2f} → {scores['psnr']:.2f} dB; {path}",
        flush=True,
    )


#: The README's picture of each model: a held-out photo and the top-left corner of its
#: 320-pixel crop (input at the test level as scored, restoration, clean).
PICTURES = {"text": ("fruits", (80, 120)), "gaussian": ("home", (40, 140))}
DOCS = Path(__file__).resolve().parents[1] / "docs"


def save_picture(name: str, task, loaded, images, device: str) -> Path:
    """``docs/shipped-NAME.png``: input, restoration and clean crop of the model's photo."""
    from PIL import Image

    from robustvae.evaluation.restoration import corrupt_test_images, restore_images

    photo, (top, left) = PICTURES[name]
    (item,) = [i for i in images if i.name == photo]
    (noisy,) = corrupt_test_images([item], loaded.model.noise, loaded.model.levels()[2], seed=0)
    (restored,) = restore_images(task, [noisy], device)
    panels = [t[:, top : top + 320, left : left + 320] for t in (noisy, restored, item.image)]
    gap = torch.ones(3, 320, 8)
    sheet = torch.cat([panels[0], gap, panels[1], gap, panels[2]], dim=2)
    pixels = (sheet.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    out = DOCS / f"shipped-{name}.png"
    Image.fromarray(pixels).save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", choices=list(MODELS), default=[])
    parser.add_argument("--runs", type=Path, default=Path("runs/shipped"))
    parser.add_argument("--epochs", type=int, help="instead of each model's")
    parser.add_argument("--width", type=float, help="instead of each model's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--picture-only", action="store_true", help="only redraw docs/shipped-NAME.png from the run"
    )
    args = parser.parse_args()
    if args.picture_only:
        for name in args.names or list(MODELS):
            loaded, task = load_run(args.runs / name, device=args.device)
            images = load_images(loaded.dataset, "test")
            print(save_picture(name, task, loaded, images, args.device))
        return
    overrides = {k: getattr(args, k) for k in ("epochs", "width") if getattr(args, k) is not None}
    for name in args.names or list(MODELS):
        train_one(name, args.runs, overrides, args.device)
    print(shipped.shipped_table())  # the README's table


if __name__ == "__main__":
    main()
