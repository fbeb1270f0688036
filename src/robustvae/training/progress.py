"""What a training run prints as it goes: one line per epoch (its terms, the whole run's time
left, the game's update shares, the adaptive loss's α and c), and a progress bar on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import torch


def epoch_line(row: dict, epochs: int, seconds_left: float | None = None) -> str:
    """One epoch of ``metrics.jsonl`` as a line: time (and the whole run's time left, when
    given), train and test terms, the annealed value, each group's update share (several
    groups), and the adaptive loss's α and c (median, with min–max)."""
    left = ""
    if seconds_left and row["epoch"] < epochs:
        left = f", {format_duration(seconds_left)} left"
    parts = [f"epoch {row['epoch']}/{epochs} ({row['seconds']:.1f} s{left})"]
    for split in ("train", "test"):
        parts.append(", ".join(f"{split} {k} {v:.4g}" for k, v in row[split].items()))
    parts += [f"{name} {value:.4g}" for name, value in row.get("anneal", {}).items()]
    shares = row.get("update_share", {})
    if shares:
        parts.append("updates " + ", ".join(f"{g} {v:.0%}" for g, v in shares.items()))
    statistics = row.get("statistics", {})
    for name, symbol in (("alpha", "α"), ("scale", "c")):
        if f"{name}_median" in statistics:
            low, high = statistics[f"{name}_min"], statistics[f"{name}_max"]
            parts.append(f"{symbol} {statistics[f'{name}_median']:.3g} ({low:.3g}–{high:.3g})")
    return "; ".join(p for p in parts if p)


def device_name(device, processes: int) -> str:
    """``cpu``, ``cuda (NVIDIA H100 80GB HBM3)``, ``cuda (…) × 4 processes``."""
    device = torch.device(device)
    name = device.type
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    return name + (f" × {processes} processes" if processes > 1 else "")


def format_duration(seconds: float) -> str:
    """``2h05m``, ``3m20s``, ``0m45s``: training times, here and in ``compare``'s lines."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def time_left(rows: list[dict], epochs: int) -> float | None:
    """The run's training time left at the mean pace of the epochs in ``rows`` (those of this
    run, resumed or not)."""
    paces = [r["seconds"] for r in rows if isinstance(r.get("seconds"), int | float)]
    done = max((r["epoch"] for r in rows if isinstance(r.get("epoch"), int)), default=0)
    return sum(paces) / len(paces) * max(epochs - done, 0) if paces else None


def progress_bar(batches, epoch: int, epochs: int, show: bool) -> Iterator:
    """A progress bar over the epoch's batches, on a terminal only: redirected to a file,
    every refresh would be a line (the epoch lines say enough there)."""
    if not show or not sys.stderr.isatty():
        return iter(batches)
    from tqdm.auto import tqdm

    return tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False, unit="batch")
