"""The one flat, frozen description of a model; serialised as JSON beside every checkpoint."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

from robustvae.losses.registry import LOSSES
from robustvae.models.nets import ARCHS, CONV_SIZES, check_width
from robustvae.representations import COLORS, REPRESENTATIONS

__all__ = ["ModelConfig", "KINDS"]

KINDS = ("vae", "wae")
_SCALAR_TYPES = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class ModelConfig:
    """A VAE or WAE: nets, latent size, reconstruction loss and the objective's weights.

    Fields (defaults in brackets):
        kind: ``'vae'`` (Gaussian encoder, KL term) or ``'wae'`` (deterministic encoder, MMD
            term) [vae].
        arch: ``'mlp'`` (FC500-FC500, any image size) or ``'conv'`` (28×28 or 64×64) [mlp].
        image_shape: (channels, height, width) of the data [(1, 28, 28)].
        latent_dim: size of z; the papers use 8 for 28×28 data and 64 for 64×64 [8].
        width: multiplier of every hidden unit and channel count, > 0; 1 = the paper's nets [1].
        loss: reconstruction loss, a name of ``robustvae.losses.LOSSES`` [l2].
        loss_params: the loss's keyword parameters as (name, value) pairs, e.g.
            ``(("a", 100.0),)`` for log-cosh; a dict is accepted and stored sorted. The model
            sets ``reduction`` and ``num_dims`` itself [()].
        representation: ``'pixels'`` | ``'dct'`` | ``'wavelet'``: the space the reconstruction
            loss compares images in [pixels].
        color: ``'rgb'`` | ``'yuv'`` (3-channel images only) [rgb].
        recon_weight: λ > 0, the weight of the reconstruction term (λ-scaled L2 of the
            paper's Fig. 6c) [1].
        mmd_weight: β ≥ 0, the weight of the WAE's MMD term; 10 as in Tolstikhin et al.'s
            MNIST and CelebA configs (their l2sq cost is additionally scaled by 0.05: to
            match them exactly use recon_weight=0.05 with loss 'l2'). Unused by a VAE [10].
        prior_scale: σ > 0 of the prior N(0, σ²·I) [1].
    """

    kind: str = "vae"
    arch: str = "mlp"
    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 8
    width: float = 1.0
    loss: str = "l2"
    loss_params: tuple[tuple[str, object], ...] = ()
    representation: str = "pixels"
    color: str = "rgb"
    recon_weight: float = 1.0
    mmd_weight: float = 10.0
    prior_scale: float = 1.0

    def __post_init__(self):
        _choice("kind", self.kind, KINDS)
        _choice("arch", self.arch, ARCHS)
        self._set("image_shape", _image_shape(self.image_shape))
        if not _is_int(self.latent_dim) or self.latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {self.latent_dim!r}")
        self._set("width", check_width(self.width))
        _choice("loss", self.loss, tuple(LOSSES))
        self._set("loss_params", _loss_params(self.loss_params))
        _choice("representation", self.representation, REPRESENTATIONS)
        _choice("color", self.color, COLORS)
        self._set("recon_weight", _number("recon_weight", self.recon_weight, positive=True))
        self._set("mmd_weight", _number("mmd_weight", self.mmd_weight, positive=False))
        self._set("prior_scale", _number("prior_scale", self.prior_scale, positive=True))

        channels, height, width = self.image_shape
        if self.arch == "conv" and (height, width) not in CONV_SIZES:
            supported = ", ".join(f"{h}×{w}" for h, w in CONV_SIZES)
            raise ValueError(
                f"arch 'conv' supports images of {supported} pixels, got {height}×{width} "
                "(use arch 'mlp' for other sizes)"
            )
        if self.color == "yuv" and channels != 3:
            raise ValueError(f"color 'yuv' needs 3-channel images, got {channels} channel(s)")
        # The loss's own constructor checks its parameters' names and values.
        from robustvae.models.reconstruction import build_reconstruction_loss

        build_reconstruction_loss(self)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def loss_kwargs(self) -> dict[str, object]:
        """``loss_params`` as keyword arguments for ``robustvae.losses.get_loss``."""
        return dict(self.loss_params)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples as lists, ``loss_params`` as a dict)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["image_shape"] = list(self.image_shape)
        out["loss_params"] = dict(self.loss_params)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; unknown keys are an error, missing ones take defaults."""
        if not isinstance(data, dict):
            raise ValueError(f"a model config must be a dict, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(
                f"unknown model config key(s): {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(names)}"
            )
        return cls(**data)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _choice(name: str, value, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of: {', '.join(choices)}; got {value!r}")


def _number(name: str, value, positive: bool) -> float:
    bound = "> 0" if positive else ">= 0"
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
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


def _loss_params(params) -> tuple[tuple[str, object], ...]:
    if isinstance(params, dict):
        pairs = list(params.items())
    else:
        try:
            pairs = [tuple(p) for p in params]
        except TypeError:
            pairs = None
        if pairs is None or any(len(p) != 2 for p in pairs):
            raise ValueError(
                f"loss_params must be a dict or (name, value) pairs, got {params!r}"
            ) from None
    names = [name for name, _ in pairs]
    if not all(isinstance(n, str) for n in names):
        raise ValueError(f"loss_params names must be strings, got {names!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"loss_params repeats {', '.join(map(repr, duplicates))}")
    for name, value in pairs:
        if not isinstance(value, _SCALAR_TYPES) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise ValueError(
                f"loss_params[{name!r}] must be a finite number, bool, string or None, "
                f"got {value!r}"
            )
    reserved = sorted({"reduction", "num_dims"} & set(names))
    if reserved:
        raise ValueError(
            f"loss_params may not set {', '.join(map(repr, reserved))}: the model sets it "
            "(reduction 'sum'; num_dims = the image shape for per-pixel parameters)"
        )
    return tuple(sorted(pairs))
