"""Variational autoencoder (Kingma & Welling) with any reconstruction loss (Chen et al., A.1):

    L = λ · E_{z~q(z|x)} [recon(x, decode(z))] + KL(q(z|x) ‖ N(0, σ²·I)),

q(z|x) = N(μ(x), diag exp(log_var(x))), one reparameterised sample per example, σ =
``prior_scale`` (1 in the papers, where the KL is to N(0, I)).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from robustvae.models.base import AutoEncoder

__all__ = ["VAE", "gaussian_kl"]


def gaussian_kl(mean: Tensor, log_var: Tensor, prior_scale: float = 1.0) -> Tensor:
    """KL(N(mean, diag exp(log_var)) ‖ N(0, prior_scale²·I)) per row (summed over the last
    dimension):  ½ Σ_j [(exp(log_var_j) + mean_j²)/σ² - 1 - log_var_j + log σ²]."""
    if prior_scale == 1.0:
        return 0.5 * (log_var.exp() + mean.pow(2) - 1.0 - log_var).sum(-1)
    variance = prior_scale**2
    log_variance = math.log(variance)
    terms = (log_var.exp() + mean.pow(2)) / variance - 1.0 - log_var + log_variance
    return 0.5 * terms.sum(-1)


class VAE(AutoEncoder):
    """Gaussian encoder (its ``2·latent_dim`` outputs are the mean, then the log-variance),
    reparameterisation with torch's global RNG, analytic KL."""

    kind = "vae"
    encoder_outputs_per_latent = 2

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log-variance) of q(z|x), each N×latent_dim."""
        self._check_images(x)
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var

    def encode(self, x: Tensor) -> Tensor:
        """The posterior mean."""
        return self.posterior(x)[0]

    def terms(self, x: Tensor) -> dict[str, Tensor]:
        mean, log_var = self.posterior(x)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        x_hat = self.decoder(z)
        recon, sq_l2 = self._reconstruction_terms(x_hat, x)
        kl = gaussian_kl(mean, log_var, self.config.prior_scale).mean()
        loss = self.config.recon_weight * recon + kl
        return {"loss": loss, "recon": recon, "kl": kl, "sq_l2": sq_l2}
