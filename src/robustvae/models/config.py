"""The settings of the autoencoder kinds (``AutoencoderConfig``, part of a run's config) and the
model they describe for one image shape (``ModelConfig``, what the nets are built from)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from robustvae.losses.spec import LossSpec
from robustvae.models.nets import ARCHS, CONV_SIZES, check_width
from robustvae.settings import (
    FlatSettings,
    check_choice,
    check_int,
    check_number,
    is_int,
    setting_field,
)

__all__ = ["AutoencoderConfig", "ModelConfig", "AUTOENCODER_KINDS", "default_latent_dim"]

#: The kinds these settings describe (the registry of every kind is ``robustvae.kinds.KINDS``).
AUTOENCODER_KINDS = ("vae", "wae")
_SCALAR_TYPES = (bool, int, float, str, type(None))
#: The largest latent_dim (the papers use 8 to 128).
MAX_LATENT_DIM = 4096


@dataclass(frozen=True)
class AutoencoderConfig(FlatSettings):
    """The settings of the ``vae`` and ``wae`` kinds: nets, latent size, reconstruction loss and
    the objective's weights. Everything a run can set; the data's image shape comes later
    (``resolve``). The help text of each field is the CLI's ``--help``."""

    arch: str = setting_field("mlp | conv (28×28 or 64×64 images)", "mlp")
    latent_dim: int | None = setting_field(
        "size of z, at most 4096; default: 8 below 64×64 images, 64 from there (the papers)",
        None,
    )
    width: float = setting_field("channel/unit multiplier: 1 is the papers' size (at most 64)", 1.0)
    loss: str = setting_field("the reconstruction loss, a robustvae.losses registry name", "l2")
    loss_params: tuple[tuple[str, object], ...] = setting_field(
        "the loss's parameters, e.g. a=100 (stored as sorted pairs)", ()
    )
    representation: str = setting_field(
        "pixels | dct | wavelet: where the loss compares images", "pixels"
    )
    color: str = setting_field("rgb | yuv (3-channel images only)", "rgb")
    recon_weight: float = setting_field("λ > 0, the weight of the reconstruction term", 1.0)
    mmd_weight: float = setting_field(
        "β ≥ 0, the weight of the WAE's MMD term (10 as Tolstikhin et al.); unused by a VAE", 10.0
    )
    prior_scale: float = setting_field("σ > 0 of the prior N(0, σ²·I)", 1.0)

    def __post_init__(self):
        check_choice("arch", self.arch, ARCHS)
        if self.latent_dim is not None:
            check_int("latent_dim", self.latent_dim, 1, MAX_LATENT_DIM)
        self._set("width", check_width(self.width))
        self._set("loss_params", self.loss_spec().params)
        self._set("recon_weight", check_number("recon_weight", self.recon_weight, positive=True))
        self._set("mmd_weight", check_number("mmd_weight", self.mmd_weight, positive=False))
        self._set("prior_scale", check_number("prior_scale", self.prior_scale, positive=True))
        if type(self) is AutoencoderConfig:  # the loss's constructor checks its parameters
            channels = 3 if self.color == "yuv" else 1
            self._build_loss((channels, 64, 64))

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _build_loss(self, image_shape):
        return self.loss_spec().image_module(image_shape)

    def loss_spec(self) -> LossSpec:
        """The reconstruction loss as these settings name it."""
        return LossSpec(self.loss, self.loss_params, self.representation, self.color)

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
        check_choice("kind", self.kind, AUTOENCODER_KINDS)
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


def _image_shape(shape) -> tuple[int, int, int]:
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3 or not all(is_int(s) and s > 0 for s in shape):
        raise ValueError(
            f"image_shape must be (channels, height, width), three ints > 0; got {shape!r}"
        )
    return shape
