"""The evaluation settings and their defaults: the one place the CLI, experiment files and the
grid runner take them from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: images: test images for sharpness, SSIM and errors (1,000 as Chen et al.); samples:
#: generated samples for FID (10,000 as Chen et al.); fid: compute FID in the dataset
#: classifier's coding layer; inception: a local FID Inception-v3 weights file, or None.
DEFAULTS: dict[str, Any] = {"images": 1000, "samples": 10000, "fid": True, "inception": None}


def evaluation_settings(
    images: int = DEFAULTS["images"],
    samples: int = DEFAULTS["samples"],
    fid: bool = DEFAULTS["fid"],
    inception: str | Path | None = DEFAULTS["inception"],
    seed: int = 0,
) -> dict[str, Any]:
    """What an evaluation.json is computed with (a grid re-evaluates cells whose differ)."""
    for name, value in (("images", images), ("samples", samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"evaluation {name} must be a positive integer, got {value!r}")
    if not isinstance(fid, bool):
        raise ValueError(f"evaluation fid must be true or false, got {fid!r}")
    if inception is not None and not isinstance(inception, str | Path):
        raise ValueError(f"evaluation inception must be a file name, got {inception!r}")
    return {
        "images": images,
        "samples": samples,
        "fid": fid,
        "inception": None if inception is None else str(Path(inception).resolve()),
        "seed": seed,
    }
