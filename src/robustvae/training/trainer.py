"""One trainer for every model kind: it drives a ``robustvae.task.Task`` through named parameter
groups and their optimizers over in-memory batches, evaluates the test split after every epoch,
and writes metrics.jsonl, TensorBoard logs and atomic checkpoints (see ``RunDir``). A resumed
run continues bit for bit; under ``torchrun`` it trains data-parallel.

The trainer knows groups, steps, checkpoints and ranks, never latents, KL terms or decoders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustvae.data import Batches
from robustvae.image_grid import make_grid
from robustvae.kinds import get_kind
from robustvae.task import Task, TrainingStopped, Updates
from robustvae.training import distributed
from robustvae.training.averaging import WeightAverage
from robustvae.training.checkpoint import (
    check_meta,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from robustvae.training.config import RunConfig, changed_settings
from robustvae.training.loading import load_weights
from robustvae.training.monitor import TermMonitor, TrainingDiverged, weighted_means
from robustvae.training.progress import device_name, epoch_line, progress_bar, time_left
from robustvae.training.rundir import RunDir
from robustvae.training.schedule import parse_anneal
from robustvae.training.terms import batch_rows, step_generator, test_terms


@dataclass
class TrainResult:
    run_dir: Path
    model: Task
    metrics: list[dict]
    is_main: bool = True  # False on DDP ranks other than 0, which write nothing


def _check_hyperparameters(optimizer, groups, name: str, path) -> None:
    """ValueError naming ``path`` unless each saved parameter group's hyperparameters have the
    shapes of the optimizer's own (a number where it has a number, a pair where a pair…):
    torch loads them unchecked and fails only at the next step."""

    def shape(value):
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return type(value)
        if isinstance(value, int | float) or (torch.is_tensor(value) and value.numel() == 1):
            return "number"
        if isinstance(value, list | tuple):
            return tuple(shape(v) for v in value)
        return type(value)

    for fresh, saved in zip(optimizer.state_dict()["param_groups"], groups, strict=False):
        for key, value in fresh.items():
            if key != "params" and key in saved and shape(saved[key]) != shape(value):
                raise ValueError(
                    f"{path}: optimizer {name!r} holds {key} = {saved[key]!r}, not like "
                    f"{value!r}; the checkpoint was edited"
                )


def train(
    config: RunConfig,
    run_dir: str | Path,
    resume: bool = False,
    report: Callable[[str], Any] | None = None,
) -> TrainResult:
    """Train the model ``config`` describes; write everything into ``run_dir``. ``report``, if
    given, gets one line per epoch (``epoch_line``) from the main process, progress bar or not.
    """
    context = distributed.setup(config.device)
    try:
        return _Training(config, RunDir(run_dir), context, report).run(resume)
    finally:
        distributed.teardown()


class _Training:
    """The state of one training run; ``run`` is the loop."""

    def __init__(self, config: RunConfig, run: RunDir, context, report=None):
        self.config, self.run_dir, self.context = config, run, context
        self.report = report
        self.device = context.device
        kind = get_kind(config.kind)
        torch.manual_seed(config.seed)
        self.train_set, self.test_set = kind.load_data(config)
        self.item_shape = tuple(self.train_set.item_shape)
        self.task = kind.build(config.model, self.item_shape).to(self.device)
        self.average = WeightAverage(self.task, config.ema) if config.ema > 0 else None
        self.anneal = parse_anneal(config.anneal, config.anneal_shape)
        if self.anneal is not None:  # a parameter the loss cannot take fails before training
            self.task.set_loss_param(self.anneal.name, self.anneal.value(0, config.epochs))
        groups = self.task.parameter_groups()
        self.optimizers = {name: g.build(config.lr) for name, g in groups.items()}
        self.base_lrs = {
            name: [pg["lr"] for pg in opt.param_groups] for name, opt in self.optimizers.items()
        }
        self.updates = Updates(self.optimizers, self._reduce_gradients, self._check_terms)
        self.monitor = TermMonitor(
            lag=1 if self.device.type == "cuda" else 0,
            agree=self._agree,
            where=run.last_good,
            weighted=self.task.term_weights,
        )
        self.epoch, self.step, self.best = 0, 0, math.inf
        self.metrics: list[dict] = []
        self.epoch_now, self.rows_now = 0, 0
        self.lr_factor_logged: float | None = None

    # ------------------------------------------------------------------ set-up

    def _resume(self) -> None:
        path = self.run_dir.latest
        self.run_dir.remove_partial_writes()
        if not path.exists():
            raise ValueError(
                f"{self.run_dir.path}: no checkpoint to resume from (the run stopped before its "
                "first epoch ended); run the same command without --resume"
            )
        checkpoint = load_checkpoint(path)  # on the CPU: optimizer steps stay there
        check_meta(checkpoint.meta, path, ("config", "epoch", "step", "best"))
        try:
            saved = RunConfig.from_dict(checkpoint.meta["config"]).to_dict()
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{path}: the checkpoint holds no valid run config ({error})"
            ) from None
        changed = changed_settings(saved, self.config.to_dict())
        if changed:
            names = ", ".join(k for k, _, _ in changed)
            raise ValueError(
                f"cannot resume: the run was made with different {names} "
                "(epochs may grow; progress, tensorboard, device and data_root may change)"
            )
        if checkpoint.meta["epoch"] > self.config.epochs:
            raise ValueError(
                f"{path}: the run has trained {checkpoint.meta['epoch']} epochs, more than the "
                f"{self.config.epochs} asked for; pass --epochs above it to train on"
            )
        load_weights(self.task, checkpoint.model, path)
        if set(checkpoint.optimizers) != set(self.optimizers):
            raise ValueError(
                f"{path}: holds optimizers {sorted(checkpoint.optimizers)}, the model has "
                f"parameter groups {sorted(self.optimizers)}"
            )
        for name, state in checkpoint.optimizers.items():
            steps = [v.get("step") for v in state["state"].values()]
            if any(s is not None and float(s) < 0 for s in steps):
                raise ValueError(f"{path}: optimizer {name!r} holds a negative step count")
            _check_hyperparameters(self.optimizers[name], state["param_groups"], name, path)
            try:
                self.optimizers[name].load_state_dict(state)
            except (ValueError, KeyError, RuntimeError) as error:
                raise ValueError(
                    f"{path}: optimizer {name!r} does not fit the model ({error})"
                ) from None
        if self.average is not None:
            if not checkpoint.averaged:
                raise ValueError(f"{path}: holds no averaged weights, though the run keeps them")
            self.average.load(checkpoint.averaged, path)
        set_rng_state(checkpoint.rng, path)
        self.epoch, self.step, self.best = (checkpoint.meta[k] for k in ("epoch", "step", "best"))
        self.metrics = [r for r in self.run_dir.read_metrics() if r["epoch"] <= self.epoch]

    def run(self, resume: bool) -> TrainResult:
        config, context, run = self.config, self.context, self.run_dir
        if resume:
            self._resume()
        elif run.has_checkpoint():
            raise ValueError(
                f"{run.path} already holds a run: pass --resume, or choose another --out"
            )
        elif context.is_main and run.path.is_dir():
            run.remove_partial_writes()  # of a run killed before its first checkpoint
        if context.distributed:  # each rank its own noise; every rank rank 0's weights
            torch.manual_seed(config.seed * 1000 + context.rank + 1000 * self.epoch)
            distributed.broadcast_state(self.task)
            if self.average is not None and not resume:  # rank 0's initial weights
                self.average = WeightAverage(self.task, config.ema)
        if context.is_main:
            run.path.mkdir(parents=True, exist_ok=True)
            run.write_config(config)
            run.write_metrics(self.metrics)
        writer = _tensorboard(run.path, config.tensorboard and context.is_main, self.epoch + 1)
        batches = Batches(
            self.train_set,
            config.batch_size,
            shuffle=True,
            seed=config.seed,
            drop_last=context.distributed or len(self.train_set) % config.batch_size == 1,
            rank=context.rank,
            world_size=context.world_size,
        )
        try:
            for epoch in range(self.epoch, config.epochs):
                self._epoch(epoch, batches, writer)
        finally:
            if writer is not None:
                writer.close()
        return TrainResult(run.path, self.task, self.metrics, context.is_main)

    # ------------------------------------------------------------------ one epoch

    def _epoch(self, epoch: int, batches: Batches, writer) -> None:
        config, context, task = self.config, self.context, self.task
        annealed = None
        if self.anneal is not None:
            annealed = {self.anneal.name: self.anneal.value(epoch, config.epochs)}
            task.set_loss_param(self.anneal.name, annealed[self.anneal.name])
        task.begin_epoch(epoch, config.epochs)
        batches.set_epoch(epoch)
        self.updates.reset_epoch()
        started = time.perf_counter()
        monitor = self.monitor
        monitor.start_epoch()
        bar = progress_bar(batches, epoch, config.epochs, config.progress and context.is_main)
        transform = task.has_batch_transform
        schedule = config.lr_schedule_of(len(batches))
        self.epoch_now = epoch
        for b, batch in enumerate(bar):
            if transform:
                batch = task.batch_transform(
                    batch, step_generator(config.seed, epoch, b, context.rank)
                )
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            self.rows_now = batch_rows(batch)
            self._set_lr(schedule.factor(self.step), writer)
            self.updates.begin()
            terms = task.training_step(batch, self.updates)
            if self.average is not None:
                self.average.update()
            if not self.updates.logged:
                monitor.push(terms, self.step, epoch, self.rows_now, log=True)
            self.step += 1
            if hasattr(bar, "set_postfix") and monitor.last:
                bar.set_postfix(
                    {n: f"{v:.4g}" for n, v in zip(monitor.names, monitor.last, strict=True)}
                )
        monitor.flush()
        names = monitor.names
        train_totals = distributed.all_reduce_mean(monitor.totals(), context)
        if context.distributed:
            distributed.average_buffers(task)
        first = next(iter(self.optimizers.values()))
        row = {
            "epoch": epoch + 1,
            "step": self.step,
            "lr": first.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - started, 3),
            "device": device_name(self.device, context.world_size),
            "train": weighted_means(names, train_totals),
        }
        with self._scored_weights():
            row["test"] = test_terms(task, self.test_set, self.device, config.seed)
        if annealed is not None:
            row["anneal"] = annealed
        statistics = task.epoch_statistics()
        if statistics:
            row["statistics"] = statistics
        if any(self.updates.skipped.values()):
            row["skipped_updates"] = dict(self.updates.skipped)
        if len(self.optimizers) > 1:  # a single group updates on every step
            row.update(self.updates.health())
        self.metrics.append(row)
        try:
            task.end_of_epoch(epoch, self.metrics)
        except TrainingStopped as reason:
            raise TrainingDiverged(
                f"stopped after epoch {epoch + 1}: {reason}; " + self.run_dir.last_good()
            ) from None
        if context.is_main:
            self._finish_epoch(row, writer)

    def _scored_weights(self):
        """The weights the test terms and pictures are made with: the averages when kept."""
        return nullcontext() if self.average is None else self.average.swapped_in()

    def _set_lr(self, factor: float, writer) -> None:
        """Every group's rate for this step: its own rate times the schedule's factor (logged
        to TensorBoard whenever it changes)."""
        for name, optimizer in self.optimizers.items():
            for group, base in zip(optimizer.param_groups, self.base_lrs[name], strict=True):
                group["lr"] = base * factor
        if writer is not None and factor != self.lr_factor_logged:
            writer.add_scalar("lr_factor", factor, self.step)
            self.lr_factor_logged = factor

    def _finish_epoch(self, row: dict, writer) -> None:
        run, task = self.run_dir, self.task
        run.write_metrics(self.metrics)
        if self.report is not None:
            left = time_left(self.metrics, self.config.epochs)
            self.report(epoch_line(row, self.config.epochs, left))
        if writer is not None:
            with self._scored_weights():
                _log_tensorboard(writer, row, task, self.test_set, self.device)
        self._check_weights(row)
        metric = task.best_metric
        if metric is None:  # the latest is the best
            is_best, self.best = True, None
        elif metric not in row["test"]:
            raise ValueError(
                f"the best-checkpoint metric {metric!r} is not among the test terms "
                f"{sorted(row['test'])}"
            )
        else:
            is_best = row["test"][metric] < self.best
            self.best = min(self.best, row["test"][metric])
        meta = {
            "config": self.config.to_dict(),
            "image_shape": list(self.item_shape),
            "epoch": row["epoch"],
            "step": self.step,
            "best": self.best,
            "best_metric": metric,
        }
        averaged = None if self.average is None else self.average.state
        if is_best:  # best first: a crash in between leaves meta["best"] consistent
            save_checkpoint(run.best, task, meta=meta, averaged=averaged)
        save_checkpoint(run.latest, task, self.optimizers, meta=meta, averaged=averaged)

    # ------------------------------------------------------------------ checks and reduction

    def _check_terms(self, terms: dict[str, Tensor], log: bool) -> None:
        self.monitor.push(terms, self.step, self.epoch_now, self.rows_now, log)

    def _agree(self, values: Tensor) -> Tensor:
        """Under DDP, a NaN wherever any rank saw a non-finite value: all ranks stop together."""
        if not self.context.distributed:
            return values
        finite = torch.isfinite(values).float()
        torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return torch.where(finite.bool(), values, torch.full_like(values, math.nan))

    def _reduce_gradients(self, params: list[nn.Parameter]) -> None:
        if self.context.distributed:
            distributed.average_gradients(params, self.context.world_size)

    def _check_weights(self, row: dict) -> None:
        """Never checkpoint a model whose weights or test terms stopped being finite."""
        bad = [
            n
            for n, p in self.task.state_dict().items()
            if p.is_floating_point() and not torch.isfinite(p).all()
        ]
        bad += [f"test {k}" for k, v in row["test"].items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"step {self.step} (end of epoch {row['epoch']}): not finite: "
                f"{', '.join(bad[:5])}; " + self.run_dir.last_good()
            )


def _tensorboard(run_dir: Path, enabled: bool, purge_step: int | None = None):
    """The run's TensorBoard writer; None when not wanted, or (with a warning) when the
    ``tensorboard`` package is not installed."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        import warnings

        warnings.warn(
            "no TensorBoard logs: the tensorboard package is not installed (pip install "
            "'robustvae[tensorboard]'; --no-tensorboard silences this)",
            stacklevel=2,
        )
        return None
    return SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)


def _log_tensorboard(writer, row: dict, task: Task, test_set, device) -> None:
    for split in ("train", "test"):
        for name, value in row[split].items():
            writer.add_scalar(f"{split}/{name}", value, row["epoch"])
    writer.add_scalar("lr", row["lr"], row["epoch"])
    for group, count in row.get("skipped_updates", {}).items():
        writer.add_scalar(f"skipped_updates/{group}", count, row["epoch"])
    for section in ("update_share", "grad_norm"):
        for group, value in row.get(section, {}).items():
            writer.add_scalar(f"{section}/{group}", value, row["epoch"])
    for name, value in {**row.get("statistics", {}), **row.get("anneal", {})}.items():
        writer.add_scalar(f"statistics/{name}", value, row["epoch"])
    batch = next(iter(Batches(test_set, min(64, len(test_set)), shuffle=False)))
    was_training = task.training
    task.eval()
    try:
        pictures = task.pictures({k: v.to(device) for k, v in batch.items()})
    finally:
        task.train(was_training)
    for name, images in pictures.items():
        grid = make_grid(images, nrow=8)
        dataformats = "HW" if grid.ndim == 2 else "HWC"
        writer.add_image(name, grid, row["epoch"], dataformats=dataformats)
    writer.flush()
