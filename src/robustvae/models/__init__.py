"""Autoencoders with robust reconstruction losses: the papers' nets, VAE and WAE-MMD.

``build_model(ModelConfig(...))`` is the entry point; ``robustvae.models.nets`` documents the
architectures and their shapes, ``robustvae.models.mmd`` the WAE's kernel.
"""

from robustvae.models.base import AutoEncoder
from robustvae.models.config import (
    AUTOENCODER_KINDS,
    AutoencoderConfig,
    ModelConfig,
    default_latent_dim,
)
from robustvae.models.mmd import IMQ_SCALES, imq_kernel, mmd_imq
from robustvae.models.nets import (
    ARCHS,
    ConvDecoder28,
    ConvDecoder64,
    ConvEncoder28,
    ConvEncoder64,
    MLPDecoder,
    MLPEncoder,
    build_nets,
)
from robustvae.models.vae import VAE, gaussian_kl
from robustvae.models.wae import WAE

__all__ = [
    "ARCHS",
    "AUTOENCODER_KINDS",
    "MODELS",
    "AutoEncoder",
    "AutoencoderConfig",
    "default_latent_dim",
    "ConvDecoder28",
    "ConvDecoder64",
    "ConvEncoder28",
    "ConvEncoder64",
    "IMQ_SCALES",
    "MLPDecoder",
    "MLPEncoder",
    "ModelConfig",
    "VAE",
    "WAE",
    "build_model",
    "build_nets",
    "gaussian_kl",
    "imq_kernel",
    "mmd_imq",
]

MODELS: dict[str, type[AutoEncoder]] = {"vae": VAE, "wae": WAE}


def build_model(config: ModelConfig) -> AutoEncoder:
    """The autoencoder ``config`` describes (``config.kind``: 'vae' | 'wae'), freshly
    initialised from torch's global RNG."""
    if not isinstance(config, ModelConfig):
        raise ValueError(f"build_model needs a ModelConfig, got {type(config).__name__}")
    return MODELS[config.kind](config)
