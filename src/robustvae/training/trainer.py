"""One trainer for every model: Adam over in-memory batches, per-epoch test evaluation,
metrics.jsonl, TensorBoard, atomic checkpoints, bit-for-bit resume, and DDP under torchrun.

A run directory holds:
    config.json          the RunConfig
    latest.safetensors   checkpoint after the last finished epoch (weights, Adam, RNG, step)
    best.safetensors     the checkpoint with the lowest test objective so far
    metrics.jsonl        one JSON object per epoch: train and test means of each loss term
    tensorboard/         scalars and sample grids (when tensorboard is installed)
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from robustvae.data import Batches, ImageDataset, load_dataset
from robustvae.images import make_grid
from robustvae.models import AutoEncoder, build_model
from robustvae.training import distributed
from robustvae.training.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from robustvae.training.config import RunConfig

LATEST, BEST = "latest.safetensors", "best.safetensors"
EVAL_BATCH = 500


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite."""


@dataclass
class TrainResult:
    run_dir: Path
    model: AutoEncoder
    metrics: list[dict]


def lr_factor(schedule: str, epoch: int) -> float:
    """The learning-rate multiplier in ``epoch`` (0-based). 'celeba' follows Chen et al.:
    halve after 30 epochs, then divide by 5 after 50."""
    if schedule == "celeba":
        return 1.0 if epoch < 30 else 0.5 if epoch < 50 else 0.1
    return 1.0


def _check_finite(terms: dict[str, Tensor], step: int, epoch: int, run_dir: Path) -> None:
    for name, value in terms.items():
        if not torch.isfinite(value).all():
            last = run_dir / LATEST
            kept = f"the last good checkpoint is {last}" if last.exists() else "no epoch finished"
            raise TrainingDiverged(
                f"step {step} (epoch {epoch + 1}): the {name!r} term is {value.item()}; {kept}"
            )


def evaluate(model: AutoEncoder, data: ImageDataset, device: torch.device) -> dict[str, float]:
    """Mean of every loss term over ``data`` (test batches of 500, gradients off)."""
    model.eval()
    totals: dict[str, float] = {}
    with torch.no_grad():
        for images, _ in Batches(data, EVAL_BATCH, shuffle=False):
            terms = model(images.to(device))
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + value.item() * len(images)
    model.train()
    return {name: total / len(data) for name, total in totals.items()}


def load_data(config: RunConfig) -> tuple[ImageDataset, ImageDataset]:
    kwargs = dict(root=config.data_root, image_size=config.image_size)
    return (
        load_dataset(config.dataset, "train", **kwargs),
        load_dataset(config.dataset, "test", **kwargs),
    )


def _compatible_for_resume(saved: dict, config: RunConfig) -> None:
    free = {"epochs", "progress", "tensorboard", "device"}
    now = config.to_dict()
    changed = sorted(k for k in now if k not in free and saved.get(k) != now[k])
    if changed:
        raise ValueError(
            f"cannot resume: the run was made with different {', '.join(changed)} "
            f"(only {', '.join(sorted(free))} may change)"
        )


def _tensorboard(run_dir: Path, enabled: bool):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _progress(batches: Batches, epoch: int, config: RunConfig, show: bool) -> Iterator:
    if not show:
        return iter(batches)
    from tqdm.auto import tqdm

    return tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, unit="batch")


def train(config: RunConfig, run_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train the model ``config`` describes; write everything into ``run_dir``."""
    run_dir = Path(run_dir)
    context = distributed.setup(config.device)
    try:
        return _train(config, run_dir, resume, context)
    finally:
        distributed.teardown()


def _train(config: RunConfig, run_dir: Path, resume: bool, context) -> TrainResult:
    device = context.device
    torch.manual_seed(config.seed)
    train_set, test_set = load_data(config)
    image_shape = tuple(train_set.images.shape[1:])
    model = build_model(config.model_config(image_shape)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    start_epoch, step, best = 0, 0, math.inf
    metrics: list[dict] = []

    if resume:
        checkpoint = load_checkpoint(run_dir / LATEST, device)
        _compatible_for_resume(checkpoint.meta["config"], config)
        model.load_state_dict(checkpoint.model)
        optimizer.load_state_dict(checkpoint.optimizer)
        set_rng_state(checkpoint.rng)
        start_epoch, step, best = (checkpoint.meta[k] for k in ("epoch", "step", "best"))
        metrics = _read_metrics(run_dir)[:start_epoch]
    elif (run_dir / LATEST).exists():
        raise ValueError(f"{run_dir} already holds a run: pass --resume, or choose another --out")

    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.to_json() + "\n")
        if not resume:
            (run_dir / "metrics.jsonl").write_text("")
    writer = _tensorboard(run_dir, config.tensorboard and context.is_main)
    trained = model
    if context.distributed:
        trained = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    batches = Batches(
        train_set,
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        drop_last=context.distributed,
        rank=context.rank,
        world_size=context.world_size,
    )
    fixed_noise = torch.Generator().manual_seed(config.seed + 1)
    sample_z = torch.randn(64, model.latent_dim, generator=fixed_noise).to(device)

    for epoch in range(start_epoch, config.epochs):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * lr_factor(config.schedule, epoch)
        batches.set_epoch(epoch)
        started = time.perf_counter()
        sums = torch.zeros(0)
        names: list[str] = []
        seen = 0
        bar = _progress(batches, epoch, config, config.progress and context.is_main)
        for images, _ in bar:
            images = images.to(device, non_blocking=True)
            terms = trained(images)
            _check_finite(terms, step, epoch, run_dir)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            step += 1
            values = torch.stack([v.detach().float().cpu() for v in terms.values()])
            if not names:
                names, sums = list(terms), torch.zeros(len(terms))
            sums += values * len(images)
            seen += len(images)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(
                    {n: f"{v:.4g}" for n, v in zip(names, values.tolist(), strict=True)}
                )
        train_means = distributed.all_reduce_mean(sums / max(seen, 1), context)
        row = {
            "epoch": epoch + 1,
            "step": step,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - started, 3),
            "train": dict(zip(names, train_means.tolist(), strict=True)),
            "test": evaluate(model, test_set, device),
        }
        metrics.append(row)
        _warn_about_bounds(model)
        if context.is_main:
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            if writer is not None:
                _log_tensorboard(writer, row, model, sample_z)
            is_best = row["test"]["loss"] < best
            best = min(best, row["test"]["loss"])
            meta = {
                "config": config.to_dict(),
                "image_shape": list(image_shape),
                "epoch": epoch + 1,
                "step": step,
                "best": best,
            }
            save_checkpoint(run_dir / LATEST, model, optimizer, meta=meta)
            if is_best:
                save_checkpoint(run_dir / BEST, model, meta=meta)
    if writer is not None:
        writer.close()
    return TrainResult(run_dir, model, metrics)


def _warn_about_bounds(model: nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "warn_if_at_bounds"):
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                module.warn_if_at_bounds()


def _log_tensorboard(writer, row: dict, model: AutoEncoder, sample_z: Tensor) -> None:
    for split in ("train", "test"):
        for name, value in row[split].items():
            writer.add_scalar(f"{split}/{name}", value, row["epoch"])
    writer.add_scalar("lr", row["lr"], row["epoch"])
    model.eval()
    with torch.no_grad():
        samples = model.decode(sample_z)
    model.train()
    grid = make_grid(samples, nrow=8)
    writer.add_image("samples", grid, row["epoch"], dataformats="HW" if grid.ndim == 2 else "HWC")
    writer.flush()


def _read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_run(run_dir: str | Path, which: str = "best", device: str = "cpu"):
    """(RunConfig, model in eval mode) from a run directory's ``best`` or ``latest`` checkpoint."""
    run_dir = Path(run_dir)
    path = run_dir / (BEST if which == "best" else LATEST)
    if which == "best" and not path.exists():
        path = run_dir / LATEST
    checkpoint = load_checkpoint(path, device)
    config = RunConfig.from_dict(checkpoint.meta["config"])
    model = build_model(config.model_config(tuple(checkpoint.meta["image_shape"])))
    model.load_state_dict(checkpoint.model)
    return config, model.to(device).eval()
