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
import os
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
    is_main: bool = True  # False on DDP ranks other than 0, which write nothing


def lr_factor(schedule: str, epoch: int) -> float:
    """The learning-rate multiplier in ``epoch`` (0-based). 'celeba' follows Chen et al.:
    halve after 30 epochs, then divide by 5 after 50."""
    if schedule == "celeba":
        return 1.0 if epoch < 30 else 0.5 if epoch < 50 else 0.1
    return 1.0


def _last_good(run_dir: Path) -> str:
    last = run_dir / LATEST
    return f"the last good checkpoint is {last}" if last.exists() else "no epoch finished"


def _check_finite(terms: dict[str, Tensor], step: int, epoch: int, run_dir: Path) -> None:
    """Raise TrainingDiverged naming the first non-finite term (components before the total)."""
    for name in sorted(terms, key=lambda n: n == "loss"):
        value = terms[name]
        if not torch.isfinite(value).all():
            raise TrainingDiverged(
                f"step {step} (epoch {epoch + 1}): the {name!r} term is {value.item()}; "
                + _last_good(run_dir)
            )


def evaluate(model: AutoEncoder, data: ImageDataset, device: torch.device) -> dict[str, float]:
    """Mean of every loss term over ``data`` (test batches of 500, gradients off)."""
    model.eval()
    totals: dict[str, float] = {}
    with torch.no_grad():
        size = EVAL_BATCH + 1 if len(data) % EVAL_BATCH == 1 else EVAL_BATCH  # no batch of 1
        for images, _ in Batches(data, size, shuffle=False):
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


def _tensorboard(run_dir: Path, enabled: bool, purge_step: int | None = None):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)


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
        checkpoint = load_checkpoint(run_dir / LATEST)  # on the CPU: Adam's steps stay there
        _compatible_for_resume(checkpoint.meta["config"], config)
        load_weights(model, checkpoint.model, run_dir / LATEST)
        optimizer.load_state_dict(checkpoint.optimizer)
        set_rng_state(checkpoint.rng)
        start_epoch, step, best = (checkpoint.meta[k] for k in ("epoch", "step", "best"))
        metrics = [r for r in read_metrics(run_dir) if r["epoch"] <= start_epoch]
    elif (run_dir / LATEST).exists():
        raise ValueError(f"{run_dir} already holds a run: pass --resume, or choose another --out")

    if context.distributed:  # each rank its own noise (the weights are broadcast by DDP)
        torch.manual_seed(config.seed * 1000 + context.rank + 1000 * start_epoch)
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.to_json() + "\n")
        _write_atomically(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in metrics))
    writer = _tensorboard(run_dir, config.tensorboard and context.is_main, start_epoch + 1)
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
        drop_last=context.distributed or len(train_set) % config.batch_size == 1,
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
            if context.distributed:
                _agree_on_finite(terms)
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
            _check_weights(model, row, step, epoch, run_dir)
            is_best = row["test"]["loss"] < best
            best = min(best, row["test"]["loss"])
            meta = {
                "config": config.to_dict(),
                "image_shape": list(image_shape),
                "epoch": epoch + 1,
                "step": step,
                "best": best,
            }
            if is_best:  # best first: a crash in between leaves meta["best"] consistent
                save_checkpoint(run_dir / BEST, model, meta=meta)
            save_checkpoint(run_dir / LATEST, model, optimizer, meta=meta)
    if writer is not None:
        writer.close()
    return TrainResult(run_dir, model, metrics, context.is_main)


def _agree_on_finite(terms: dict[str, Tensor]) -> None:
    """Under DDP, make every rank see a NaN that any rank saw, so that all stop together."""
    finite = torch.stack([torch.isfinite(v).all() for v in terms.values()]).float()
    torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
    if not finite.all():
        for (name, value), ok in zip(list(terms.items()), finite.tolist(), strict=True):
            if not ok:
                terms[name] = value.detach() * float("nan")


def _check_weights(model: nn.Module, row: dict, step: int, epoch: int, run_dir: Path) -> None:
    """Never checkpoint a model whose weights or test terms stopped being finite."""
    bad = [
        n
        for n, p in model.state_dict().items()
        if p.is_floating_point() and not torch.isfinite(p).all()
    ]
    bad += [f"test {k}" for k, v in row["test"].items() if not math.isfinite(v)]
    if bad:
        raise TrainingDiverged(
            f"step {step} (end of epoch {epoch + 1}): not finite: {', '.join(bad[:5])}; "
            + _last_good(run_dir)
        )


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_weights(model: nn.Module, weights: dict[str, Tensor], source: Path) -> None:
    """Load a state dict, turning a key or shape mismatch into a one-line ValueError."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise ValueError(
            f"{source}: weights do not fit the model its config describes ({first})"
        ) from None


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


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-write
    return rows


def load_run(run_dir: str | Path, which: str = "best", device: str = "cpu"):
    """(RunConfig, model in eval mode) from a run directory's ``best`` or ``latest`` checkpoint."""
    run_dir = Path(run_dir)
    path = run_dir / (BEST if which == "best" else LATEST)
    if which == "best" and not path.exists():
        path = run_dir / LATEST
    checkpoint = load_checkpoint(path)
    try:
        config = RunConfig.from_dict(checkpoint.meta["config"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: the checkpoint holds no valid run config ({error})") from None
    model = build_model(config.model_config(tuple(checkpoint.meta["image_shape"])))
    load_weights(model, checkpoint.model, path)
    return config, model.to(device).eval()
