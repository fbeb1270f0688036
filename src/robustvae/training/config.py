"""The run configuration: one flat, frozen dataclass, serialised as JSON beside every run and
readable from TOML (``robustvae train --config run.toml``). Unknown keys are errors."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from robustvae.models import ModelConfig

SCHEDULES = ("none", "celeba")
DEVICES = ("auto", "cpu", "cuda")


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _check_type(name: str, value: Any, annotation: str) -> None:
    """Fields are annotated 'int', 'float', 'str', 'bool', 'X | None' or a dict."""
    options = [a.strip() for a in str(annotation).split("|")]
    if value is None and "None" in options:
        return
    kinds = tuple(t for o in options for t in _TYPES.get(o, ()))
    if not kinds:
        return
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise ValueError(f"{name} must be {' or '.join(options)}, got {value!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run depends on; a run is reproducible from it and its seed."""

    # data
    dataset: str = "mnist-5k"  # mnist-5k | fashion-mnist | mnist | celeba | folder
    data_root: str | None = None  # directory of the data (defaults per dataset)
    image_size: int | None = None  # resize to this (celeba: 64; folder: required)
    # model (see robustvae.models.ModelConfig)
    kind: str = "vae"  # vae | wae
    arch: str = "mlp"  # mlp | conv
    latent_dim: int | None = None  # default: 8 below 64×64 images, 64 from there (the papers)
    width: float = 1.0  # channel/unit multiplier: 1 is the papers' size
    loss: str = "l2"  # a robustvae.losses registry name
    loss_params: dict[str, Any] = field(default_factory=dict)  # e.g. {"a": 100}
    representation: str = "pixels"  # pixels | dct | wavelet
    color: str = "rgb"  # rgb | yuv
    recon_weight: float = 1.0  # λ, the weight of the reconstruction term
    mmd_weight: float = 10.0  # β, the weight of the WAE's MMD term
    # optimisation
    epochs: int = 10
    batch_size: int = 100  # the global batch (split across DDP processes)
    lr: float = 1e-3  # Adam
    schedule: str = "none"  # none | celeba (lr ×0.5 after 30 epochs, ×0.2 more after 50)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    # output
    tensorboard: bool = True  # write TensorBoard scalars and images when installed
    progress: bool = True  # show a tqdm progress bar

    def __post_init__(self):
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if not isinstance(self.loss_params, dict):
            raise ValueError(f"loss_params must be a table/dict, got {self.loss_params!r}")

    def model_config(self, image_shape: tuple[int, int, int]) -> ModelConfig:
        return ModelConfig(
            kind=self.kind,
            arch=self.arch,
            image_shape=tuple(image_shape),
            latent_dim=(
                self.latent_dim
                if self.latent_dim is not None
                else (64 if min(image_shape[1:]) >= 64 else 8)
            ),
            width=self.width,
            loss=self.loss,
            loss_params=tuple(sorted(self.loss_params.items())),
            representation=self.representation,
            color=self.color,
            recon_weight=self.recon_weight,
            mmd_weight=self.mmd_weight,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown run setting(s): {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def replace(self, **changes) -> RunConfig:
        return self.from_dict({**self.to_dict(), **changes})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        try:
            data = tomllib.loads(Path(path).read_text())
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: not valid TOML ({error})") from None
        return cls.from_dict(data)


FIELD_HELP = {
    "epochs": "passes over the training set",
    "seed": "seeds the initialisation, the shuffles and the noise",
    "dataset": "mnist-5k | fashion-mnist | mnist | celeba | folder",
    "data_root": "directory of the data (defaults per dataset)",
    "image_size": "resize to this (celeba: 64; folder: required)",
    "kind": "vae | wae",
    "arch": "mlp | conv",
    "latent_dim": "default: 8 below 64×64 images, 64 from there (the papers)",
    "width": "channel/unit multiplier: 1 is the papers' size",
    "loss": "a robustvae.losses registry name",
    "loss_params": 'e.g. {"a": 100}',
    "representation": "pixels | dct | wavelet",
    "color": "rgb | yuv",
    "recon_weight": "λ, the weight of the reconstruction term",
    "mmd_weight": "β, the weight of the WAE's MMD term",
    "batch_size": "the global batch (split across DDP processes)",
    "lr": "Adam",
    "schedule": "none | celeba (lr ×0.5 after 30 epochs, ×0.2 more after 50)",
    "device": "auto | cpu | cuda",
    "tensorboard": "write TensorBoard scalars and images when installed",
    "progress": "show a tqdm progress bar",
}
"""One line of help per RunConfig field (the CLI's --help)."""
