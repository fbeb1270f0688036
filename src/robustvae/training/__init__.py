"""Training: the run config, the trainer, checkpoints, and data parallelism."""

from robustvae.training.checkpoint import load_checkpoint, save_checkpoint
from robustvae.training.config import RunConfig
from robustvae.training.trainer import TrainingDiverged, TrainResult, load_run, train

__all__ = [
    "RunConfig",
    "TrainResult",
    "TrainingDiverged",
    "load_checkpoint",
    "load_run",
    "save_checkpoint",
    "train",
]
