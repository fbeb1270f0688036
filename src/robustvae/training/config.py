"""The run configuration: data, optimisation and output settings, plus the settings of the
model kind (``model``, the kind's own frozen config, see ``robustvae.kinds``).

On disk (``config.json``), in TOML files and on the command line it is one flat table: the
run's keys and the kind's keys side by side, e.g. ``{"dataset": "mnist-5k", "kind": "vae",
"loss": "logcosh", "loss_params": {"a": 100}, "epochs": 30, …}``. Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from robustvae.data import known_shape
from robustvae.data.folder import check_test_fraction
from robustvae.kinds import KINDS, get_kind
from robustvae.settings import check_int, is_float, setting_field, shown
from robustvae.training.schedule import LR_SCHEDULES, LRSchedule, parse_anneal

#: The ``schedule`` setting of runs saved before ``lr_schedule``: its values as the new settings.
OLD_SCHEDULES = {
    "none": {},
    "celeba": {"lr_schedule": "step", "lr_milestones": [30, 50], "lr_gamma": [0.5, 0.2]},
}
DEVICES = ("auto", "cpu", "cuda")
#: The largest epochs and batch_size: beyond them a run cannot end, or its batch fit.
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 1_000_000

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _check_type(name: str, value: Any, annotation: str) -> None:
    """Fields are annotated 'int', 'float', 'str', 'bool' or 'X | None'."""
    options = [a.strip() for a in str(annotation).split("|")]
    if value is None and "None" in options:
        return
    kinds = tuple(t for o in options for t in _TYPES.get(o, ()))
    if not kinds:
        return
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise ValueError(f"{name} must be {' or '.join(options)}, got {shown(value)}")
    if float in kinds and not is_float(value):
        raise ValueError(f"{name} must be a finite number, got {shown(value)}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run depends on; a run is reproducible from it and its seed.

    Build one from flat settings with ``RunConfig.make(loss="logcosh", epochs=3)`` or
    ``from_dict``; ``model`` is the kind's config (its defaults when left out)."""

    # data
    dataset: str = setting_field(
        "mnist-5k | fashion-mnist | mnist | celeba | folder (autoencoders); photos | folder "
        "(restore); motorcycle | aloe | stereo-folder (depth)",
        "mnist-5k",
    )
    data_root: str | None = setting_field("directory of the data (defaults per dataset)", None)
    image_size: int | None = setting_field("resize to this (celeba: 64; folder: required)", None)
    test_fraction: float = setting_field(
        "folder datasets: the share of images held out for test, by a hash of each file's "
        "path (0: test on the training images)",
        0.1,
    )
    # model
    kind: str = setting_field(" | ".join(KINDS) + ": the model kind", "vae")
    model: Any = field(default=None, metadata={"help": "the kind's settings"})
    # optimisation
    epochs: int = setting_field(f"passes over the training set (at most {MAX_EPOCHS})", 10)
    batch_size: int = setting_field(
        f"the global batch (split across DDP processes; at most {MAX_BATCH_SIZE})", 100
    )
    lr: float = setting_field("learning rate (each parameter group may scale or replace it)", 1e-3)
    lr_schedule: str = setting_field(
        "constant | step | cosine | rampdown (Noise2Noise's: a squared-cosine ramp-down over "
        "the last rampdown_fraction of the steps): the learning rate over the run",
        "constant",
    )
    warmup_steps: int = setting_field("≥ 0: steps over which the learning rate rises linearly", 0)
    lr_milestones: tuple[int, ...] = setting_field(
        "step: the epochs after which the learning rate is multiplied by lr_gamma, e.g. 30,50",
        (),
    )
    lr_gamma: tuple[float, ...] = setting_field(
        "step: the factor at every milestone, or one per milestone (e.g. 0.5,0.2)", (0.1,)
    )
    rampdown_fraction: float = setting_field(
        "rampdown: the share of the run's steps over which the rate ramps down", 0.3
    )
    ema: float = setting_field(
        "in [0, 1): keep an exponential moving average of the weights with this decay per "
        "step (e.g. 0.999), used by the test terms, evaluation, pictures, apply and predict "
        "(0: off)",
        0.0,
    )
    anneal: str | None = setting_field(
        "NAME=START:END: move a fixed loss parameter from START (first epoch) to END (last), "
        "e.g. alpha=2:0",
        None,
    )
    anneal_shape: str = setting_field("linear | cosine: the annealing's path", "linear")
    seed: int = setting_field("seeds the initialisation, the shuffles and the noise", 0)
    device: str = setting_field("auto | cpu | cuda", "auto")
    # output
    tensorboard: bool = setting_field("write TensorBoard scalars and images when installed", True)
    progress: bool = setting_field("show a tqdm progress bar", True)

    def __post_init__(self):
        kind = get_kind(self.kind)
        if self.model is None:
            object.__setattr__(self, "model", kind.config())
        elif type(self.model) is not kind.config:
            raise ValueError(
                f"model must be a {kind.config.__name__} for kind {self.kind!r}, "
                f"got {type(self.model).__name__}"
            )
        for f in fields(self):
            if f.name != "model":
                _check_type(f.name, getattr(self, f.name), f.type)
        check_int("epochs", self.epochs, 1, MAX_EPOCHS)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {shown(self.seed)}")
        self._check_lr_schedule()
        if not (math.isfinite(self.ema) and 0 <= self.ema < 1):
            raise ValueError(f"ema must be a decay in [0, 1) (0: off), got {self.ema!r}")
        parse_anneal(self.anneal, self.anneal_shape)
        check_test_fraction(self.test_fraction)
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        kind.check_dataset(self.dataset, self.data_root)
        shape = known_shape(self.dataset, self.image_size)
        if shape is not None:  # fail now, not after the data has loaded
            kind.check(self.model, shape)

    def _check_lr_schedule(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0 <= self.warmup_steps < 2**40:
            raise ValueError(
                f"warmup_steps must be an int in [0, 2**40), got {shown(self.warmup_steps)}"
            )
        milestones = _number_list("lr_milestones", self.lr_milestones, int)
        if any(not 0 < m < 2**40 for m in milestones) or list(milestones) != sorted(
            set(milestones)
        ):
            raise ValueError(
                f"lr_milestones must be increasing epochs > 0, got {list(milestones)!r}"
            )
        gamma = _number_list("lr_gamma", self.lr_gamma, float)
        if not gamma or any(not (math.isfinite(g) and g > 0) for g in gamma):
            raise ValueError(f"lr_gamma must be one or more numbers > 0, got {list(gamma)!r}")
        if len(gamma) > 1 and len(gamma) != len(milestones):
            raise ValueError(
                f"lr_gamma has {len(gamma)} factors for {len(milestones)} lr_milestones: give "
                "one factor, or one per milestone"
            )
        if not (math.isfinite(self.rampdown_fraction) and 0 <= self.rampdown_fraction <= 1):
            raise ValueError(f"rampdown_fraction must be in [0, 1], got {self.rampdown_fraction!r}")
        object.__setattr__(self, "lr_milestones", milestones)
        object.__setattr__(self, "lr_gamma", tuple(float(g) for g in gamma))

    def lr_schedule_of(self, steps_per_epoch: int) -> LRSchedule:
        """The run's learning-rate schedule for epochs of ``steps_per_epoch`` steps."""
        return LRSchedule(
            self.lr_schedule,
            self.epochs * steps_per_epoch,
            steps_per_epoch,
            self.warmup_steps,
            self.lr_milestones,
            self.lr_gamma,
            self.rampdown_fraction,
        )

    # ------------------------------------------------------------------ flat form

    @classmethod
    def run_keys(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "model"]

    def to_dict(self) -> dict[str, Any]:
        """The flat table: the run's keys, then the kind's."""
        run = {name: getattr(self, name) for name in self.run_keys()}
        run = {k: list(v) if isinstance(v, tuple) else v for k, v in run.items()}
        return {**run, **self.model.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of ``to_dict``; missing keys take the kind's defaults (its ``run_defaults``,
        then the fields' defaults), unknown keys are an error."""
        if not isinstance(data, dict):
            raise ValueError(f"a run config must be a table, got {type(data).__name__}")
        if "schedule" in data:  # a run saved before lr_schedule
            data = dict(data)
            old = data.pop("schedule")
            if old not in OLD_SCHEDULES:
                raise ValueError(f"schedule must be one of {tuple(OLD_SCHEDULES)}, got {old!r}")
            data = {**OLD_SCHEDULES[old], **data}
        kind = get_kind(data.get("kind", "vae"))
        data = {**kind.run_defaults, **data}
        run_keys = cls.run_keys()
        model_keys = [f.name for f in fields(kind.config)]
        unknown = sorted(set(data) - set(run_keys) - set(model_keys))
        if unknown:
            raise ValueError(
                f"unknown run setting(s) for kind {kind.name!r}: {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(run_keys + model_keys))}"
            )
        model = kind.config.from_dict({k: v for k, v in data.items() if k in model_keys})
        return cls(**{k: v for k, v in data.items() if k in run_keys}, model=model)

    @classmethod
    def make(cls, **settings) -> RunConfig:
        """``from_dict(settings)``: ``RunConfig.make(kind="wae", loss="l1", epochs=3)``."""
        return cls.from_dict(settings)

    def replace(self, **changes) -> RunConfig:
        """A copy with flat settings changed (run or kind keys)."""
        return self.from_dict({**self.to_dict(), **changes})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(_toml_table(path))


def _toml_table(path: str | Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None


def _number_list(name: str, value, kind: type) -> tuple:
    """A list setting from TOML (a list or one number) or the command line ("30,50")."""
    if isinstance(value, str):
        try:
            value = [kind(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise ValueError(f"{name} must be numbers separated by commas, got {value!r}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"{name} must be a list of numbers, got {value!r}")
    if not all(is_float(v) for v in value):
        raise ValueError(f"{name} must be finite numbers, got {', '.join(map(shown, value))}")
    if kind is int and not all(float(v).is_integer() for v in value):
        raise ValueError(f"{name} must be whole epochs, got {list(value)!r}")
    return tuple(kind(v) for v in value)


def setting_fields() -> dict[str, dataclasses.Field]:
    """Every flat setting a run or any kind takes, by name (the CLI's flags): the run's fields
    first, then each kind's in registry order."""
    found = {f.name: f for f in fields(RunConfig) if f.name != "model"}
    for kind in KINDS.values():
        for f in fields(kind.config):
            found.setdefault(f.name, f)
    return found


# ------------------------------------------------------------------ what may change on resume

#: Settings that never change a run's result: a run or a grid cell may be resumed with other
#: values (``data_root``: the same data may move).
IGNORED_SETTINGS = ("progress", "tensorboard", "device", "data_root")
#: Settings a resumed run may raise, never lower: more ``epochs`` continue training where it
#: stopped (a grid cell asked for more epochs is trained on and evaluated again).
EXTENDABLE_SETTINGS = ("epochs",)


def predating_settings(saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` (a run's config.json) with each run setting it lacks at the value the run
    trained with: the setting's field default. A run saved before ``ema`` existed kept no
    average, whatever its kind's ``run_defaults`` now say for a new run."""
    missing = {
        f.name: f.default
        for f in fields(RunConfig)
        if f.name != "model" and f.name not in saved and f.default is not dataclasses.MISSING
    }
    if "schedule" in saved:  # before lr_schedule: from_dict maps the old name
        for name in ("lr_schedule", "lr_milestones", "lr_gamma"):
            missing.pop(name, None)
    missing = {k: list(v) if isinstance(v, tuple) else v for k, v in missing.items()}
    return {**missing, **saved}


def changed_settings(saved: dict[str, Any], wanted: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, saved value, wanted value) for every setting that makes ``wanted`` another run
    than ``saved``: the trainer refuses to resume such a run, and a grid to reuse its cell."""
    # A run saved before a run setting existed ran with that setting's default.
    defaults = {f.name: f.default for f in fields(RunConfig) if f.name != "model"}
    changed = []
    for k in sorted(set(saved) | set(wanted)):
        old, new = saved.get(k, defaults.get(k)), wanted.get(k, defaults.get(k))
        if k in IGNORED_SETTINGS or old == new:
            continue
        if k in EXTENDABLE_SETTINGS and isinstance(old, int) and isinstance(new, int) and new > old:
            continue
        changed.append((k, old, new))
    return changed


def run_settings(
    saved: dict[str, Any] | None, toml: str | Path | None, flags: dict[str, Any]
) -> RunConfig:
    """The settings of ``robustvae train``, later sources overriding earlier ones: the run
    being resumed (its config.json) or a command's base (``depth train``'s kind), then a TOML
    file (the settings it names), then the command line's flags. Loss parameters
    (``*_params``) from the flags are added to those before them."""
    settings = dict(saved or {})
    if toml is not None:
        settings.update(_toml_table(toml))
    for name, value in flags.items():
        if name.endswith("_params"):
            value = {**settings.get(name, {}), **value}
        settings[name] = value
    return RunConfig.from_dict(settings)
