"""A run directory: the one place that reads and writes a run's files.

    config.json          the run's settings (RunConfig, flat)
    latest.safetensors   the checkpoint after the last finished epoch (weights, optimizers, RNG)
    best.safetensors     the checkpoint with the lowest test value of the task's best metric
    metrics.jsonl        one JSON object per epoch: train and test means of each loss term
    evaluation.json      the kind's evaluation (written last: a grid's "finished" marker)
    tensorboard/         scalars and pictures (when tensorboard is installed)
    *.png                the kind's pictures

Every file is written atomically (``robustvae.files``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robustvae.files import atomic_write_text

__all__ = ["RunDir"]


class RunDir:
    CONFIG = "config.json"
    LATEST = "latest.safetensors"
    BEST = "best.safetensors"
    METRICS = "metrics.jsonl"
    EVALUATION = "evaluation.json"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------------ checkpoints

    @property
    def latest(self) -> Path:
        return self.path / self.LATEST

    @property
    def best(self) -> Path:
        return self.path / self.BEST

    def has_checkpoint(self) -> bool:
        return self.latest.exists()

    def checkpoint(self, which: str = "best") -> Path:
        """The checkpoint that evaluating, drawing and sampling use: ``best`` (falling back to
        ``latest`` when no best was kept) or ``latest``."""
        if which not in ("best", "latest"):
            raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
        if which == "best" and self.best.exists():
            return self.best
        if not self.path.is_dir():
            what = "not a run directory" if self.path.exists() else "no such run directory"
            raise ValueError(f"{self.path}: {what}")
        if not self.latest.exists():
            raise ValueError(f"{self.path} holds no checkpoint (no epoch finished)")
        return self.latest

    def remove_partial_writes(self) -> list[Path]:
        """Delete the temporary files of the writes a kill interrupted (checkpoints, the
        config, the metrics, the evaluation)."""
        found = []
        for name in (self.LATEST, self.BEST, self.CONFIG, self.METRICS, self.EVALUATION):
            found += sorted(self.path.glob(f".{name}.*.tmp"))
        for path in found:
            path.unlink(missing_ok=True)
        return found

    def last_good(self) -> str:
        """Where a stopped run can be resumed from, as a phrase for error messages."""
        if self.latest.exists():
            return f"the last good checkpoint is {self.latest}"
        return "no epoch finished"

    # ------------------------------------------------------------------ config

    def write_config(self, config) -> None:
        atomic_write_text(self.path / self.CONFIG, config.to_json() + "\n")

    def saved_settings(self) -> dict[str, Any] | None:
        """The flat settings in config.json, or None when there is none; a run setting the
        file lacks (the run predates it) at the value the run trained with."""
        path = self.path / self.CONFIG
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of settings")
        from robustvae.training.config import RunConfig, predating_settings

        data = predating_settings(data)
        try:
            RunConfig.from_dict(data)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        return data

    # ------------------------------------------------------------------ metrics

    def read_metrics(self) -> list[dict]:
        """The epochs' rows of ``metrics.jsonl``; ValueError naming the line when one is not
        an epoch's row (a table with an integer ``epoch`` ≥ 1, an integer ``step`` ≥ 0, a
        number where it has ``seconds``, tables where it has ``train`` and ``test``) or its
        epoch does not follow the row before."""
        path = self.path / self.METRICS
        if not path.exists():
            return []
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash mid-write (older versions appended)
            problem = None
            if not _is_epoch_row(row):
                problem = f"not an epoch's metrics ({line[:60]})"
            elif rows and row["epoch"] <= rows[-1]["epoch"]:
                problem = f"epoch {row['epoch']} after epoch {rows[-1]['epoch']}"
            if problem:
                raise ValueError(
                    f"{path}, line {number}: {problem}; the file was edited: restore it, or "
                    "train the run again"
                )
            rows.append(row)
        return rows

    def write_metrics(self, rows: list[dict]) -> None:
        atomic_write_text(self.path / self.METRICS, "".join(json.dumps(r) + "\n" for r in rows))

    # ------------------------------------------------------------------ evaluation

    def write_evaluation(self, results: dict) -> None:
        atomic_write_text(self.path / self.EVALUATION, json.dumps(results, indent=2) + "\n")

    def read_evaluation(self) -> dict | None:
        path = self.path / self.EVALUATION
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None  # torn by an older version's in-place write: evaluate again


def _is_epoch_row(row) -> bool:
    def integer(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def number(value) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    return (
        isinstance(row, dict)
        and integer(row.get("epoch"))
        and row["epoch"] >= 1
        and integer(row.get("step"))
        and row["step"] >= 0
        and number(row.get("seconds", 0))
        and all(isinstance(row[k], dict) for k in ("train", "test") if k in row)
    )
