"""The latent API the generative kinds share (VAE, WAE, VAE-GAN, GAN), as mixins of a
``Task``: ``Generative`` models decode N×latent_dim codes into images in [0, 1] and sample
from the prior N(0, prior_scale²·I); ``Encoding`` ones also encode images and reconstruct
them. A model holds ``latent_dim``, ``config.prior_scale`` and its ``generator_net`` (the net
from codes to images). Callers ask ``isinstance(model, Encoding)``, never ``hasattr``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Generative", "Encoding"]


class Generative:
    """Decoding and sampling, from ``generator_net`` and the prior."""

    latent_dim: int
    generator_net: nn.Module

    def decode(self, z: Tensor) -> Tensor:
        """Latent codes N×latent_dim → images N×C×H×W in [0, 1]."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"expected latent codes shaped (N, {self.latent_dim}), got {tuple(z.shape)}"
            )
        return self.generator_net(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images decoded from z ~ N(0, prior_scale²·I), drawn with ``generator`` (or
        torch's global RNG). z is drawn on the generator's device and then moved to the
        model's, so a CPU generator gives the same codes whatever device the model is on."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        weight = next(self.generator_net.parameters())
        device = generator.device if generator is not None else weight.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device, dtype=weight.dtype)
        return self.decode(z.to(weight.device) * self.config.prior_scale)


class Encoding(Generative):
    """A generative model with an encoder: ``encode`` (its code of an image: a VAE's posterior
    mean) and ``reconstruct``."""

    def encode(self, x: Tensor) -> Tensor:
        """Images N×C×H×W → latent codes N×latent_dim."""
        raise NotImplementedError

    def reconstruct(self, x: Tensor) -> Tensor:
        """decode(encode(x)): for a VAE, the decoded posterior mean."""
        return self.decode(self.encode(x))
