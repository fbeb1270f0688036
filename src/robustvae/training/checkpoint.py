"""Checkpoints without pickle: one safetensors file holds the model's weights, the tensors of
each named optimizer and the RNG states; its metadata holds everything else as JSON (the run
config, epoch, step, the optimizers' hyperparameters). Loading one can never run code.

Format 3 holds named optimizers (``optim.<group>.<index>.<key>`` tensors) and a SHA-256 over
its tensors and its metadata together (``checkpoint_digest``); a format-3 file without it is
refused. Older files still load: format 2 (the same layout, its SHA-256 over the tensors only,
or none before 2026-12-02) and format 1 (one optimizer, ``optimizer.state.<index>.<key>``,
loaded as the optimizer of group ``model``; its layout is checked, so a newer file relabelled
as format 1 is refused). A file with no checksum loads with a warning that its integrity
cannot be checked.

A checkpoint is written to a temporary file in the same directory and renamed over the old
one, so a crash or a full disk mid-write leaves the previous checkpoint intact. A load
recomputes the checksum and refuses a file whose tensors or metadata changed (a flipped bit,
an edited step or learning rate), non-finite model weights and malformed optimizer metadata.
``check_meta`` validates the metadata a caller needs, with one line naming the key.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from robustvae.files import atomic_write

FORMAT = "robustvae-checkpoint-3"
FORMAT_2 = "robustvae-checkpoint-2"
FORMAT_1 = "robustvae-checkpoint-1"
READABLE_FORMATS = (FORMAT_1, FORMAT_2, FORMAT)
#: The largest data item a checkpoint may declare (``image_shape``): per side, and in all.
MAX_ITEM_SIDE = 1 << 16
MAX_ITEM_VALUES = 1 << 28


@dataclass
class Checkpoint:
    model: dict[str, Tensor]
    optimizers: dict[str, dict[str, Any]]  # group name → optimizer state dict
    rng: dict[str, Tensor]
    meta: dict[str, Any]  # config, epoch, step, and anything else JSON can hold
    averaged: dict[str, Tensor] = field(default_factory=dict)  # the weights' moving average


def _flatten_optimizer(prefix: str, state: dict) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors, plain = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}{index}.{key}"] = value
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain_state": plain}


def _unflatten_optimizer(tensors: dict[str, Tensor], meta: Any, where: str) -> dict[str, Any]:
    """``tensors`` keyed ``<index>.<key>``; ``meta`` as ``_flatten_optimizer`` wrote it.
    ValueError naming ``where`` (the file and optimizer) when either is malformed."""

    def bad(what: str) -> ValueError:
        return ValueError(f"{where}: {what}; the file is not one robustvae wrote")

    if not isinstance(meta, dict):
        raise bad(f"its metadata is {type(meta).__name__}, not a table")
    groups, plain = meta.get("param_groups"), meta.get("plain_state")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise bad(f"param_groups must be a list of tables, got {groups!r:.60}")
    if not isinstance(plain, dict) or not all(isinstance(v, dict) for v in plain.values()):
        raise bad(f"plain_state must be a table of tables, got {plain!r:.60}")
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, _, key = name.partition(".")
        if not index.isdigit() or not key:
            raise bad(f"tensor name {name!r} is not <index>.<key>")
        state.setdefault(int(index), {})[key] = value
    for index, values in plain.items():
        if not index.isdigit():
            raise bad(f"plain_state index {index!r} is not an integer")
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": groups}


def tensors_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over the tensors in name order: each name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _canonical(value: Any) -> str:
    """``value`` as JSON in one spelling: what it reads back as, keys sorted, no spaces."""
    return json.dumps(json.loads(json.dumps(value)), sort_keys=True, separators=(",", ":"))


def checkpoint_digest(tensors: dict[str, Tensor], info: dict[str, Any]) -> str:
    """Format 3's checksum: SHA-256 over ``tensors_digest`` and the metadata (``info`` less
    its ``sha256``, as canonical JSON), so that neither can change unseen."""
    rest = {k: v for k, v in info.items() if k != "sha256"}
    return hashlib.sha256(f"{tensors_digest(tensors)}|{_canonical(rest)}".encode()).hexdigest()


#: What ``check_meta`` accepts for each key of a checkpoint's metadata.
META_SCHEMA = {
    "config": "a table of run settings",
    "epoch": "an integer ≥ 0",
    "step": "an integer ≥ 0",
    "best": "a finite number or null",
    "image_shape": (
        f"a list of positive integers (a data item's shape), each at most {MAX_ITEM_SIDE} and "
        f"{MAX_ITEM_VALUES:,} values in all"
    ),
}


def _meta_ok(key: str, value: Any) -> bool:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if key == "config":
        return isinstance(value, dict)
    if key in ("epoch", "step"):
        return is_int and value >= 0
    if key == "best":
        return value is None or (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if key == "image_shape":
        return (
            isinstance(value, list)
            and len(value) > 0
            and all(
                isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_ITEM_SIDE
                for v in value
            )
            and math.prod(value) <= MAX_ITEM_VALUES
        )
    return True


def check_meta(meta: dict[str, Any], path: Path, keys: tuple[str, ...]) -> None:
    """ValueError (one line, naming the file and key) unless ``meta`` has each of ``keys`` in
    the form ``META_SCHEMA`` describes."""
    for key in keys:
        if key not in meta:
            raise ValueError(
                f"{path}: the checkpoint's metadata has no {key!r} ({META_SCHEMA[key]})"
            )
        if not _meta_ok(key, meta[key]):
            raise ValueError(
                f"{path}: the checkpoint's {key!r} must be {META_SCHEMA[key]}, got {meta[key]!r}"
            )


def rng_state() -> dict[str, Tensor]:
    states = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            states[f"rng.cuda.{i}"] = s
    return states


def set_rng_state(states: dict[str, Tensor], path: Path | str = "checkpoint") -> None:
    state = states.get("rng.torch")
    expected = torch.get_rng_state()
    if state is None or state.dtype != expected.dtype or state.shape != expected.shape:
        raise ValueError(
            f"{path}: holds no valid random state (rng.torch), so the run cannot continue bit "
            "for bit; start it again without --resume"
        )
    torch.set_rng_state(state)
    cuda = [states[k] for k in sorted(states) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    meta: dict[str, Any] | None = None,
    averaged: dict[str, Tensor] | None = None,
) -> Path:
    """Write ``path`` (a .safetensors file) atomically: ``model``'s state dict, each named
    optimizer's state, the RNG states, ``meta``, and the averaged weights if any."""
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for name, value in (averaged or {}).items():
        tensors[f"ema.{name}"] = value.detach().cpu().contiguous()
    info: dict[str, Any] = {"format": FORMAT, "meta": meta or {}, "optimizers": {}}
    for name, optimizer in (optimizers or {}).items():
        if "." in name:
            raise ValueError(f"optimizer names may not contain '.', got {name!r}")
        found, info["optimizers"][name] = _flatten_optimizer(
            f"optim.{name}.", optimizer.state_dict()
        )
        tensors.update({k: v.detach().cpu().contiguous() for k, v in found.items()})
    tensors.update(rng_state())
    info["sha256"] = checkpoint_digest(tensors, info)

    def write(tmp: str) -> None:
        try:
            save_file(tensors, tmp, metadata={"robustvae": json.dumps(info)})
        except SafetensorError as error:  # a full disk surfaces as either
            raise OSError(str(error)) from error

    try:
        atomic_write(path, write)
    except OSError as error:
        raise OSError(f"could not write checkpoint {path}: {error.__cause__ or error}") from error
    return path


def _check_integrity(path: Path, tensors: dict[str, Tensor], info: dict[str, Any]) -> None:
    """ValueError unless the file's checksum holds for its format (see the module docstring);
    a warning when an older file has none."""
    kind = info.get("format")
    if kind not in READABLE_FORMATS:
        raise ValueError(f"{path}: unknown checkpoint format {kind!r}")
    if kind == FORMAT:
        if "sha256" not in info:
            raise ValueError(
                f"{path}: a format-3 checkpoint without its checksum: the file was altered "
                "(use the other checkpoint of the run, or train again)"
            )
        if checkpoint_digest(tensors, info) != info["sha256"]:
            raise ValueError(
                f"{path}: its tensors or metadata do not match the checksum saved with them: "
                "the file is corrupted or was edited (use the other checkpoint of the run, or "
                "train again)"
            )
        return
    if kind == FORMAT_1:
        extra = sorted(set(info) - {"format", "meta", "optimizer"})
        newer = sorted(
            k for k in tensors if not k.startswith(("model.", "optimizer.state.", "rng."))
        )
        if extra or newer:
            raise ValueError(
                f"{path}: labelled format 1 but holds {(extra + newer)[0]!r}, which format 1 "
                "never held: the file was altered"
            )
    elif "sha256" in info:  # format 2: its checksum covers the tensors only
        if tensors_digest(tensors) != info["sha256"]:
            raise ValueError(
                f"{path}: its tensors do not match the checksum saved with them: the file is "
                "corrupted (use the other checkpoint of the run, or train again)"
            )
        return
    warnings.warn(
        f"{path}: an older checkpoint ({kind}) without a checksum: its integrity cannot be checked",
        stacklevel=3,
    )


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
    _check_integrity(path, tensors, info)
    for name, value in tensors.items():
        if name.startswith(("model.", "ema.")) and value.is_floating_point():
            if not torch.isfinite(value).all():
                raise ValueError(
                    f"{path}: weight {name.split('.', 1)[1]!r} holds NaN or inf: the file is "
                    "corrupted or comes from a diverged run"
                )
    model = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    averaged = {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}
    rng = {k: v.cpu() for k, v in tensors.items() if k.startswith("rng.")}
    if info["format"] == FORMAT_1:  # one optimizer, that of group "model"
        groups = {"model": info["optimizer"]} if "optimizer" in info else {}
        prefixes = {"model": "optimizer.state."}
    else:
        groups = info.get("optimizers", {})
        if not isinstance(groups, dict):
            raise ValueError(
                f"{path}: its optimizers must be a table of named optimizers, got {groups!r:.60}"
            )
        prefixes = {name: f"optim.{name}." for name in groups}
    optimizers = {}
    for name, saved in groups.items():
        prefix = prefixes[name]
        found = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        optimizers[name] = _unflatten_optimizer(found, saved, f"{path}: optimizer {name!r}")
    return Checkpoint(model, optimizers, rng, info["meta"], averaged)
