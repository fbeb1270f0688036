"""The settings of the autoencoder kinds (``AutoencoderConfig``, part of a run's config) and the
model they describe for one image shape (``ModelConfig``, what the nets are built from)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from robustvae.checks import check_int, is_float, shown
from robustvae.losses.registry import LOSSES
from robustvae.models.nets import ARCHS, CONV_SIZES, check_width
from robustvae.models.reconstruction import build_reconstruction_loss
from robustvae.representations import COLORS, REPRESENTATIONS

__all__ = ["AutoencoderConfig", "FlatSettings", "ModelConfig", "KINDS", "default_latent_dim"]

KINDS = ("vae", "wae")
_SCALAR_TYPES = (bool, int, float, str, type(None))
#: The largest latent_dim (the papers use 8 to 128).
MAX_LATENT_DIM = 4096


def _help(text: str, default):
    return field(default=default, metadata={"help": text})


class FlatSettings:
    """``to_dict`` and ``from_dict`` for a kind's frozen, flat settings dataclass: ``*_params``
    pairs become tables and other tuples lists; unknown keys are an error."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_params"):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Inverse of ``to_dict``; unknown keys are an error, missing ones take defaults."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__} settings must be a table, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} setting(s): {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(names)}"
            )
        return cls(**data)


@dataclass(frozen=True)
class AutoencoderConfig(FlatSettings):
    """The settings of the ``vae`` and ``wae`` kinds: nets, latent size, reconstruction loss and
    the objective's weights. Everything a run can set; the data's image shape comes later
    (``resolve``). The help text of each field is the CLI's ``--help``."""

    arch: str = _help("mlp | conv (28×28 or 64×64 images)", "mlp")
    latent_dim: int | None = _help(
        "size of z, at most 4096; default: 8 below 64×64 images, 64 from there (the papers)",
        None,
    )
    width: float = _help("channel/unit multiplier: 1 is the papers' size (at most 64)", 1.0)
    loss: str = _help("the reconstruction loss, a robustvae.losses registry name", "l2")
    loss_params: tuple[tuple[str, object], ...] = _help(
        "the loss's parameters, e.g. a=100 (stored as sorted pairs)", ()
    )
    representation: str = _help("pixels | dct | wavelet: where the loss compares images", "pixels")
    color: str = _help("rgb | yuv (3-channel images only)", "rgb")
    recon_weight: float = _help("λ > 0, the weight of the reconstruction term", 1.0)
    mmd_weight: float = _help(
        "β ≥ 0, the weight of the WAE's MMD term (10 as Tolstikhin et al.); unused by a VAE", 10.0
    )
    prior_scale: float = _help("σ > 0 of the prior N(0, σ²·I)", 1.0)

    def __post_init__(self):
        _choice("arch", self.arch, ARCHS)
        if self.latent_dim is not None:
            check_int("latent_dim", self.latent_dim, 1, MAX_LATENT_DIM)
        self._set("width", check_width(self.width))
        _choice("loss", self.loss, tuple(LOSSES))
        self._set("loss_params", _loss_params(self.loss_params))
        _choice("representation", self.representation, REPRESENTATIONS)
        _choice("color", self.color, COLORS)
        self._set("recon_weight", _number("recon_weight", self.recon_weight, positive=True))
        self._set("mmd_weight", _number("mmd_weight", self.mmd_weight, positive=False))
        self._set("prior_scale", _number("prior_scale", self.prior_scale, positive=True))
        if type(self) is AutoencoderConfig:  # the loss's constructor checks its parameters
            channels = 3 if self.color == "yuv" else 1
            self._build_loss((channels, 64, 64))

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _build_loss(self, image_shape):
        return build_reconstruction_loss(
            self.loss, self.loss_kwargs(), image_shape, self.representation, self.color
        )

    def loss_kwargs(self) -> dict[str, object]:
        """``loss_params`` as keyword arguments for ``robustvae.losses.get_loss``."""
        return dict(self.loss_params)

    def resolve(self, kind: str, image_shape: tuple[int, int, int]) -> ModelConfig:
        """The model these settings describe for images of ``image_shape``."""
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(AutoencoderConfig)}
        return ModelConfig(**settings, kind=kind, image_shape=tuple(image_shape))


def default_latent_dim(image_shape: tuple[int, int, int]) -> int:
    """The papers' latent sizes: 8 below 64×64 images, 64 from there."""
    return 64 if min(image_shape[1:]) >= 64 else 8


@dataclass(frozen=True)
class ModelConfig(AutoencoderConfig):
    """A VAE or WAE for images of one shape: ``AutoencoderConfig``'s settings plus

        kind: ``'vae'`` (Gaussian encoder, KL term) or ``'wae'`` (deterministic encoder, MMD
            term) [vae].
        image_shape: (channels, height, width) of the data [(1, 28, 28)].

    ``latent_dim`` None takes the papers' size for the image shape. The conv nets need
    28×28 or 64×64 images; YUV needs 3 channels.
    """

    kind: str = "vae"
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self):
        super().__post_init__()
        _choice("kind", self.kind, KINDS)
        self._set("image_shape", _image_shape(self.image_shape))
        if self.latent_dim is None:
            self._set("latent_dim", default_latent_dim(self.image_shape))
        channels, height, width = self.image_shape
        if self.arch == "conv" and (height, width) not in CONV_SIZES:
            supported = ", ".join(f"{h}×{w}" for h, w in CONV_SIZES)
            raise ValueError(
                f"arch 'conv' supports images of {supported} pixels, got {height}×{width} "
                "(use arch 'mlp' for other sizes)"
            )
        if self.color == "yuv" and channels != 3:
            raise ValueError(f"color 'yuv' needs 3-channel images, got {channels} channel(s)")
        self._build_loss(self.image_shape)

    def reconstruction_loss(self):
        """The reconstruction loss module (``reduction='sum'``) for this model's images."""
        return self._build_loss(self.image_shape)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _choice(name: str, value, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of: {', '.join(choices)}; got {value!r}")


def _number(name: str, value, positive: bool) -> float:
    bound = "> 0" if positive else ">= 0"
    if not isinstance(value, Real) or isinstance(value, bool) or not is_float(value):
        raise ValueError(f"{name} must be a finite number {bound}, got {shown(value)}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def _image_shape(shape) -> tuple[int, int, int]:
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3 or not all(_is_int(s) and s > 0 for s in shape):
        raise ValueError(
            f"image_shape must be (channels, height, width), three ints > 0; got {shape!r}"
        )
    return shape


def _loss_params(params, setting: str = "loss_params") -> tuple[tuple[str, object], ...]:
    if isinstance(params, dict):
        pairs = list(params.items())
    else:
        try:
            pairs = [tuple(p) for p in params]
        except TypeError:
            pairs = None
        if pairs is None or any(len(p) != 2 for p in pairs):
            raise ValueError(
                f"{setting} must be a dict or (name, value) pairs, got {params!r}"
            ) from None
    names = [name for name, _ in pairs]
    if not all(isinstance(n, str) for n in names):
        raise ValueError(f"{setting} names must be strings, got {names!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{setting} repeats {', '.join(map(repr, duplicates))}")
    for name, value in pairs:
        if not isinstance(value, _SCALAR_TYPES) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise ValueError(
                f"{setting}[{name!r}] must be a finite number, bool, string or None, got {value!r}"
            )
    reserved = sorted({"reduction", "num_dims"} & set(names))
    if reserved:
        raise ValueError(
            f"{setting} may not set {', '.join(map(repr, reserved))}: the model sets it "
            "(reduction 'sum'; num_dims = the image shape for per-pixel parameters)"
        )
    return tuple(sorted(pairs))
