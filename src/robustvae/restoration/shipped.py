"""Restorers shipped with the package: ``robustvae restore apply --model NAME IN OUT`` works
on a fresh install, with no training.

Each model is one checkpoint file under ``weights/`` (weights, the run config and the image
shape; no optimizer state) and an entry of ``weights/manifest.json``: its file's SHA-256,
checked on every load, how it was trained (the settings, steps, time, machine) and what it
scored on the held-out photos. ``scripts/train_shipped_restorers.py`` trains, scores and
exports them again; ``export`` writes one from a finished run.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path

from robustvae.files import atomic_write_text

__all__ = ["export", "listing", "load", "manifest", "shipped_table", "weights_dir"]


def weights_dir() -> Path:
    """The folder of the shipped weights and their manifest, inside the installed package."""
    return Path(str(resources.files("robustvae.restoration").joinpath("weights")))


@cache
def manifest() -> dict[str, dict]:
    """Model name → its manifest entry ({} when none is shipped)."""
    path = weights_dir() / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _names() -> str:
    return ", ".join(manifest()) or "none"


def load(name: str, device: str = "cpu"):
    """(RunConfig, restorer in eval mode) of the shipped model ``name``, its file's SHA-256
    checked against the manifest; ValueError naming the shipped models when there is none."""
    from robustvae.training import load_model_file

    entry = manifest().get(name)
    if entry is None:
        raise ValueError(f"no shipped restorer named {name!r}; shipped: {_names()}")
    path = weights_dir() / entry["file"]
    if not path.is_file():
        raise ValueError(f"{path} is missing: the package is damaged (reinstall robustvae)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(
            f"{path}: its SHA-256 is {digest}, the manifest says {entry['sha256']}: the file is "
            "damaged (reinstall robustvae)"
        )
    config, task = load_model_file(path, device)
    if config.kind != "restore":
        raise ValueError(f"{path} holds a {config.kind!r} model, not a restorer")
    return config, task


def listing() -> str:
    """One line per shipped model: its name, noise, net and test score."""
    lines = []
    for name, entry in manifest().items():
        score = entry["scores"]
        lines.append(
            f"{name:<10} {entry['summary']}; held-out photos: SSIM {score['input_ssim']:.3f} → "
            f"{score['ssim']:.3f}, PSNR {score['input_psnr']:.2f} → {score['psnr']:.2f} dB"
        )
    return "\n".join(lines) or "no restorer is shipped with this installation"


def shipped_table() -> str:
    """The shipped restorers as a Markdown table (the README's, checked by a test)."""
    lines = [
        "| `--model` | what it removes | net, loss, training | held-out photos: SSIM | "
        "PSNR (dB) | SHA-256 |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for name, entry in manifest().items():
        score = entry["scores"]
        lines.append(
            f"| `{name}` | {entry['removes']} | {entry['summary']} | "
            f"{score['input_ssim']:.3f} → **{score['ssim']:.3f}** | "
            f"{score['input_psnr']:.2f} → **{score['psnr']:.2f}** | `{entry['sha256'][:16]}…` |"
        )
    return "\n".join(lines)


def export(run_dir: str | Path, name: str, entry: dict, out_dir: str | Path | None = None) -> Path:
    """Write run ``run_dir``'s best weights (its averages where it kept them) as shipped model
    ``name`` under ``out_dir`` (default: the package's ``weights/``), and its manifest entry:
    ``entry`` (what it removes, a summary, how it was trained, its scores) plus the file and
    its SHA-256. Returns the weights' path."""
    from robustvae.training import load_run, save_checkpoint
    from robustvae.training.checkpoint import load_checkpoint
    from robustvae.training.rundir import RunDir

    out_dir = Path(out_dir) if out_dir is not None else weights_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    source = RunDir(run_dir).checkpoint("best")
    meta = load_checkpoint(source).meta
    _, task = load_run(run_dir)
    path = save_checkpoint(
        out_dir / f"{name}.safetensors",
        task,
        meta={k: meta[k] for k in ("config", "image_shape", "epoch", "step") if k in meta},
    )
    listing_path = out_dir / "manifest.json"
    entries = json.loads(listing_path.read_text()) if listing_path.is_file() else {}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entries[name] = {**entry, "file": path.name, "sha256": digest}
    atomic_write_text(listing_path, json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    manifest.cache_clear()
    return path
