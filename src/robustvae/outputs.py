"""The pictures a trained model is judged by: samples, reconstructions beside their originals,
and latent interpolations between pairs of test images (Chen et al., Figs. 2, 3 and 9)."""

from __future__ import annotations

from pathlib import Path

import torch

from robustvae.images import interpolate, save_grid
from robustvae.models import AutoEncoder


@torch.no_grad()
def write_samples(model: AutoEncoder, path: str | Path, n: int = 64, seed: int = 0) -> Path:
    generator = torch.Generator().manual_seed(seed)
    return save_grid(model.sample(n, generator=generator).cpu(), path, nrow=8, scale=2)


@torch.no_grad()
def write_reconstructions(model: AutoEncoder, images: torch.Tensor, path: str | Path) -> Path:
    """Rows alternate: 8 originals, then their 8 reconstructions."""
    device = next(model.parameters()).device
    images = images[: (len(images) // 8) * 8 or len(images)].to(device)
    recon = model.reconstruct(images)
    rows = torch.stack(
        [images.view(-1, 8, *images.shape[1:]), recon.view(-1, 8, *images.shape[1:])], 1
    )
    return save_grid(rows.reshape(-1, *images.shape[1:]).cpu(), path, nrow=8, scale=2)


@torch.no_grad()
def write_interpolations(
    model: AutoEncoder, images: torch.Tensor, path: str | Path, pairs: int = 8, steps: int = 10
) -> Path:
    """One row per pair of images: the decoded straight line between their codes."""
    if len(images) < 2 * pairs:
        raise ValueError(f"need {2 * pairs} images for {pairs} interpolations, got {len(images)}")
    device = next(model.parameters()).device
    images = images[: 2 * pairs].to(device)
    codes = model.encode(images)
    path_codes = interpolate(codes[0::2], codes[1::2], steps)
    return save_grid(model.decode(path_codes).cpu(), path, nrow=steps, scale=2)


def write_all(model: AutoEncoder, test_images: torch.Tensor, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    model.eval()
    return [
        write_samples(model, out_dir / "samples.png"),
        write_reconstructions(model, test_images[:32], out_dir / "reconstructions.png"),
        write_interpolations(model, test_images[32:48], out_dir / "interpolations.png"),
    ]
