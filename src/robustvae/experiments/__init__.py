"""Experiment grids: TOML files → cells → trained, evaluated runs → results tables."""

from robustvae.experiments.grid import Cell, Experiment, load_experiment
from robustvae.experiments.runner import report_experiment, run_experiment

__all__ = ["Cell", "Experiment", "load_experiment", "report_experiment", "run_experiment"]
