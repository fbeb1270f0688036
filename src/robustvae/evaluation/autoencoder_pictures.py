"""The pictures a trained autoencoder is judged by: samples, reconstructions beside their originals,
and latent interpolations between pairs of test images (Chen et al., Figs. 2, 3 and 9)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from robustvae.image_grid import save_grid
from robustvae.models import AutoEncoder
from robustvae.models.latent import Encoding


def interpolate(z_from: Tensor, z_to: Tensor, steps: int) -> Tensor:
    """Linear paths between pairs of codes: (P, D), (P, D) → (P·steps, D), row-major by pair."""
    t = torch.linspace(0, 1, steps, dtype=z_from.dtype, device=z_from.device)
    path = z_from[:, None, :] + t[None, :, None] * (z_to - z_from)[:, None, :]
    return path.reshape(-1, z_from.shape[-1])


@torch.no_grad()
def write_samples(model: AutoEncoder, path: str | Path, n: int = 64, seed: int = 0) -> Path:
    generator = torch.Generator().manual_seed(seed)
    return save_grid(model.sample(n, generator=generator).cpu(), path, nrow=8, scale=2)


@torch.no_grad()
def write_reconstructions(model: AutoEncoder, images: torch.Tensor, path: str | Path) -> Path:
    """Rows alternate: 8 originals, then their 8 reconstructions (fewer than 8 images: one
    row of each)."""
    device = next(model.parameters()).device
    per_row = min(8, len(images))
    images = images[: (len(images) // per_row) * per_row].to(device)
    recon = model.reconstruct(images)
    shape = (-1, per_row, *images.shape[1:])
    rows = torch.stack([images.view(shape), recon.view(shape)], 1)
    return save_grid(rows.reshape(-1, *images.shape[1:]).cpu(), path, nrow=per_row, scale=2)


@torch.no_grad()
def write_interpolations(
    model: AutoEncoder, images: torch.Tensor, path: str | Path, pairs: int = 8, steps: int = 10
) -> Path:
    """One row per pair of images: the decoded straight line between their codes."""
    if pairs < 1 or steps < 2:
        raise ValueError(f"need pairs >= 1 and steps >= 2, got {pairs} and {steps}")
    if len(images) < 2 * pairs:
        raise ValueError(f"need {2 * pairs} images for {pairs} interpolations, got {len(images)}")
    device = next(model.parameters()).device
    images = images[: 2 * pairs].to(device)
    codes = model.encode(images)
    path_codes = interpolate(codes[0::2], codes[1::2], steps)
    return save_grid(model.decode(path_codes).cpu(), path, nrow=steps, scale=2)


@torch.no_grad()
def write_prior_interpolations(
    model, path: str | Path, pairs: int = 8, steps: int = 10, seed: int = 0
) -> Path:
    """A model without an encoder (a GAN): one row per pair of codes drawn from the prior, the
    decoded straight line between them."""
    weight = next(model.parameters())
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(2 * pairs, model.latent_dim, generator=generator, dtype=weight.dtype)
    codes = (codes * model.config.prior_scale).to(weight.device)
    path_codes = interpolate(codes[0::2], codes[1::2], steps)
    return save_grid(model.decode(path_codes).cpu(), path, nrow=steps, scale=2)


def write_all(model: AutoEncoder, test_images: torch.Tensor, out_dir: str | Path) -> list[Path]:
    """Samples, reconstructions of up to 32 test images, and interpolations between up to 8
    pairs of others (fewer when the test split is small; none below 2 images). A model without
    an encoder gets samples and interpolations between draws from the prior."""
    out_dir = Path(out_dir)
    model.eval()
    written = [write_samples(model, out_dir / "samples.png")]
    if not isinstance(model, Encoding):
        written.append(write_prior_interpolations(model, out_dir / "interpolations.png"))
        return written
    if len(test_images):
        recon = test_images[:32]
        written.append(write_reconstructions(model, recon, out_dir / "reconstructions.png"))
    rest = test_images[32:48] if len(test_images) >= 34 else test_images
    if len(rest) >= 2:
        pairs = min(8, len(rest) // 2)
        written.append(write_interpolations(model, rest, out_dir / "interpolations.png", pairs))
    return written
