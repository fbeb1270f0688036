"""A trained run's task, ready to use: from a run directory (``load_run``) or from one
checkpoint file (``load_model_file``, e.g. a shipped model), with its averaged weights where
it kept them."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from robustvae.kinds import get_kind
from robustvae.training.checkpoint import check_meta, load_checkpoint
from robustvae.training.config import RunConfig
from robustvae.training.rundir import RunDir
from robustvae.training.schedule import parse_anneal

__all__ = ["load_run", "load_model_file", "load_weights"]


def load_weights(model: nn.Module, weights: dict[str, Tensor], source: Path) -> None:
    """Load a state dict, turning a key or shape mismatch into a one-line ValueError."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise ValueError(
            f"{source}: weights do not fit the model its config describes ({first})"
        ) from None


def load_run(run_dir: str | Path, which: str = "best", device: str = "cpu"):
    """(RunConfig, task in eval mode) from a run directory's checkpoint (``RunDir.checkpoint``:
    ``best``, falling back to ``latest``, or ``latest``), with the averaged weights where the
    run kept them (``ema``)."""
    return load_model_file(RunDir(run_dir).checkpoint(which), device)


def load_model_file(path: str | Path, device: str = "cpu"):
    """(RunConfig, task in eval mode) from one checkpoint file (a run's, or an exported
    model's), with the averaged weights where it holds them."""
    path = Path(path)
    checkpoint = load_checkpoint(path)
    check_meta(checkpoint.meta, path, ("config", "image_shape"))
    try:
        config = RunConfig.from_dict(checkpoint.meta["config"])
        shape = tuple(checkpoint.meta["image_shape"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: the checkpoint holds no valid run config ({error})") from None
    task = get_kind(config.kind).build(config.model, shape)
    anneal = parse_anneal(config.anneal, config.anneal_shape)
    if anneal is not None:  # the loss as it was in the checkpoint's epoch
        epoch = max(int(checkpoint.meta.get("epoch", 1)) - 1, 0)
        task.set_loss_param(anneal.name, anneal.value(epoch, config.epochs))
    load_weights(task, checkpoint.averaged or checkpoint.model, path)
    return config, task.to(device).eval()
