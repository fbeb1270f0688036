"""Training: the run config, the run directory, the trainer, checkpoints, and data
parallelism."""

from robustvae.training.checkpoint import load_checkpoint, save_checkpoint
from robustvae.training.config import RunConfig
from robustvae.training.monitor import TrainingDiverged
from robustvae.training.rundir import RunDir
from robustvae.training.trainer import TrainResult, evaluate, load_model_file, load_run, train

__all__ = [
    "RunConfig",
    "RunDir",
    "TrainResult",
    "TrainingDiverged",
    "evaluate",
    "load_checkpoint",
    "load_model_file",
    "load_run",
    "save_checkpoint",
    "train",
]
