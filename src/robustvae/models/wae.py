"""Wasserstein autoencoder with the MMD penalty (Tolstikhin et al., 2018; Chen et al., A.1):

    L = λ · recon(x, decode(encode(x))) + β · MMD²(q(z), p(z)),

with a deterministic encoder, p(z) = N(0, σ²·I) (σ = ``prior_scale``) and the unbiased
multi-scale inverse-multiquadric MMD of ``robustvae.models.mmd`` between the batch's codes and
as many prior samples (drawn from torch's global RNG). MMD is a batch statistic: batches need
at least 2 images, and its value depends on the batch size.
"""

from __future__ import annotations

import torch
from torch import Tensor

from robustvae.models.base import AutoEncoder
from robustvae.models.mmd import mmd_imq

__all__ = ["WAE"]


class WAE(AutoEncoder):
    """Deterministic encoder, MMD to the prior."""

    kind = "wae"
    encoder_outputs_per_latent = 1

    def encode(self, x: Tensor) -> Tensor:
        self._check_images(x)
        return self.encoder(x)

    def terms(self, x: Tensor) -> dict[str, Tensor]:
        z = self.encode(x)
        x_hat = self.decoder(z)
        recon, sq_l2 = self._reconstruction_terms(x_hat, x)
        prior = torch.randn_like(z) * self.config.prior_scale
        mmd = mmd_imq(z, prior, prior_variance=self.config.prior_scale**2)
        loss = self.config.recon_weight * recon + self.config.mmd_weight * mmd
        return {"loss": loss, "recon": recon, "mmd": mmd, "sq_l2": sq_l2}
