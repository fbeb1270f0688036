"""Checkpoints without pickle: one safetensors file holds the model's weights, the optimiser's
and scheduler's tensors and the RNG states; its metadata holds everything else as JSON (the
run config, epoch, step, the optimiser's hyperparameters). Loading one can never run code.

A checkpoint is written to a temporary file in the same directory and renamed over the old
one, so a crash or a full disk mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

FORMAT = "robustvae-checkpoint-1"


@dataclass
class Checkpoint:
    model: dict[str, Tensor]
    optimizer: dict[str, Any] | None
    scheduler: dict[str, Any] | None
    rng: dict[str, Tensor]
    meta: dict[str, Any]  # config, epoch, step, and anything else JSON can hold


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors, plain = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer.state.{index}.{key}"] = value
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain_state": plain}


def _unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, _, index, key = name.split(".", 3)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["plain_state"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> dict[str, Tensor]:
    states = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            states[f"rng.cuda.{i}"] = s
    return states


def set_rng_state(states: dict[str, Tensor]) -> None:
    torch.set_rng_state(states["rng.torch"])
    cuda = [states[k] for k in sorted(states) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``path`` (a .safetensors file) atomically."""
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    info: dict[str, Any] = {"format": FORMAT, "meta": meta or {}}
    if optimizer is not None:
        opt_tensors, info["optimizer"] = _flatten_optimizer(optimizer.state_dict())
        tensors.update({k: v.detach().cpu().contiguous() for k, v in opt_tensors.items()})
    if scheduler is not None:
        info["scheduler"] = scheduler.state_dict()
    tensors.update(rng_state())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"robustvae": json.dumps(info)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, (OSError, SafetensorError)):  # a full disk surfaces as either
            raise OSError(f"could not write checkpoint {path}: {error}") from error
        raise
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint`` (ValueError if it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        tensors = load_file(str(path), device=str(device))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        info = json.loads(header["robustvae"])
        if not isinstance(info, dict) or not isinstance(info.get("meta"), dict):
            raise KeyError("meta")
    except (SafetensorError, KeyError, json.JSONDecodeError, OSError) as error:
        raise ValueError(f"{path} is not a readable robustvae checkpoint ({error})") from None
    if info.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown checkpoint format {info.get('format')!r}")
    model = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    rng = {k: v.cpu() for k, v in tensors.items() if k.startswith("rng.")}
    optimizer = None
    if "optimizer" in info:
        opt = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
        optimizer = _unflatten_optimizer(opt, info["optimizer"])
    return Checkpoint(model, optimizer, info.get("scheduler"), rng, info["meta"])
