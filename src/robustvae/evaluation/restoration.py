"""The evaluator of the ``restore`` kind: SSIM and PSNR of every whole test image.

Each clean test image is corrupted once at the run's ``noise_test`` level, from a generator
seeded by the evaluation seed and the image's name only, so every run (every loss, every
training seed) restores the very same inputs and their scores pair up image by image
(Fig. 10 of the log-cosh paper). The restored image is scored against the clean one: SSIM and
PSNR (``robustvae.metrics.quality``, data range 1, outputs clipped to [0, 1]); the corrupted
input is scored too, for scale.
"""

from __future__ import annotations

import hashlib
import statistics
from pathlib import Path

import torch

from robustvae.metrics import quality
from robustvae.restoration.apply import restore
from robustvae.restoration.corruption import corrupt
from robustvae.restoration.data import NamedImage, load_images
from robustvae.training import load_run

#: (key, title) of the results-table columns, in order.
COLUMNS = (
    ("ssim", "SSIM"),
    ("one_minus_ssim", "1 − SSIM"),
    ("psnr", "PSNR (dB)"),
    ("input_ssim", "SSIM of the input"),
    ("input_psnr", "PSNR of the input"),
)
#: The pictures the report shows side by side.
PANELS = ("restorations",)
PICTURES_NOTE = "Each picture: the corrupted test crops, their restorations, the clean crops."
#: Images up to this many pixels are restored in one pass, larger ones in tiles.
ONE_PASS_PIXELS = 1024 * 1024
TILE = 512


def test_generator(name: str, seed: int) -> torch.Generator:
    """The generator that corrupts test image ``name``: a function of the name and seed."""
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def corrupt_test_images(
    images: list[NamedImage], noise: str, level: float, seed: int = 0
) -> list[torch.Tensor]:
    """Each image corrupted by ``noise`` at ``level`` (see ``test_generator``)."""
    return [
        corrupt(item.image[None], noise, torch.tensor([level]), test_generator(item.name, seed))[0]
        for item in images
    ]


def restore_images(task, inputs: list[torch.Tensor], device) -> list[torch.Tensor]:
    """The task's restorations of ``inputs`` (in one pass, or tiled when large), in [0, 1]."""
    was_training = task.training
    task.eval()
    try:
        out = []
        for image in inputs:
            tile = None if image.shape[-1] * image.shape[-2] <= ONE_PASS_PIXELS else TILE
            out.append(restore(task.net, image.to(device), tile).cpu().clamp(0, 1))
        return out
    finally:
        task.train(was_training)


def scores(outputs: list[torch.Tensor], cleans: list[torch.Tensor]) -> list[dict]:
    """SSIM and PSNR of each output against its clean image."""
    rows = []
    for output, clean in zip(outputs, cleans, strict=True):
        a, b = output[None].clamp(0, 1), clean[None]
        rows.append(
            {
                "ssim": quality.ssim_per_image(a, b).item(),
                "psnr": quality.psnr_per_image(a, b).item(),
            }
        )
    return rows


def evaluate_images(task, config, images: list[NamedImage], device, seed: int) -> list[dict]:
    """Per image: name, SSIM and PSNR of the restoration and of the corrupted input."""
    model = config.model
    level = model.levels()[2]
    inputs = corrupt_test_images(images, model.noise, level, seed)
    outputs = restore_images(task, inputs, device)
    cleans = [item.image for item in images]
    restored, given = scores(outputs, cleans), scores(inputs, cleans)
    return [
        {"name": item.name, **r, "input_ssim": g["ssim"], "input_psnr": g["psnr"]}
        for item, r, g in zip(images, restored, given, strict=True)
    ]


def summarise(per_image: list[dict]) -> dict:
    """Means (and standard deviations) over images of every score."""
    out: dict = {"images": len(per_image)}
    for key in ("ssim", "psnr", "input_ssim", "input_psnr"):
        values = [row[key] for row in per_image]
        out[key] = statistics.fmean(values)
        if key in ("ssim", "psnr"):
            out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    out["one_minus_ssim"] = 1.0 - out["ssim"]
    return out


def evaluate(run_dir: str | Path, settings: dict, device: str) -> dict:
    """Scores of the run's best checkpoint over (up to ``settings['images']``) test images."""
    config, task = load_run(run_dir, device=device)
    images = load_images(config.dataset, "test", config.data_root)[: settings["images"]]
    per_image = evaluate_images(task, config, images, device, settings["seed"])
    return {**summarise(per_image), "per_image": per_image}


def draw(run_dir: str | Path, device: str = "cpu") -> list[Path]:
    """``restorations.png``: corrupted test crops, their restorations and the clean crops."""
    from robustvae.evaluation.restoration_pictures import crops_grid

    config, task = load_run(run_dir, device=device)
    images = load_images(config.dataset, "test", config.data_root)[:6]
    inputs = corrupt_test_images(images, config.model.noise, config.model.levels()[2])
    outputs = restore_images(task, inputs, device)
    path = Path(run_dir) / "restorations.png"
    crops_grid(inputs, outputs, [item.image for item in images], path)
    return [path]


def curve_terms(configs: list, histories: dict) -> list[tuple[str, str]]:
    """The test terms the report plots against steps."""
    return [("clean_mse", "test MSE against the clean crops")]


def report_blocks(experiment, rows: list[dict], out_dir: Path) -> list:
    """The report's restoration figures: Fig. 10's scatter plots and Fig. 11's example grid."""
    from robustvae.evaluation.restoration_pictures import report_figures

    return report_figures(experiment, out_dir)
