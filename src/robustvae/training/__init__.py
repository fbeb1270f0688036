"""Training: the run config, the run directory, the trainer, checkpoints, data parallelism,
the test terms, and loading a trained run."""

from robustvae.training.checkpoint import load_checkpoint, save_checkpoint
from robustvae.training.config import RunConfig
from robustvae.training.loading import load_model_file, load_run
from robustvae.training.monitor import TrainingDiverged
from robustvae.training.rundir import RunDir
from robustvae.training.terms import test_terms
from robustvae.training.trainer import TrainResult, train

__all__ = [
    "RunConfig",
    "RunDir",
    "TrainResult",
    "TrainingDiverged",
    "load_checkpoint",
    "load_model_file",
    "load_run",
    "save_checkpoint",
    "test_terms",
    "train",
]
