"""What every autoencoder shares: nets, reconstruction loss, decoding and sampling."""

from __future__ import annotations

import torch
from torch import Tensor

from robustvae.models.config import ModelConfig
from robustvae.models.latent import Encoding
from robustvae.models.nets import build_nets
from robustvae.task import Task

__all__ = ["AutoEncoder"]


class AutoEncoder(Encoding, Task):
    """Encoder, decoder and reconstruction loss built from a ``ModelConfig``.

    A ``Task`` of one parameter group, trained on batches ``{"image": …}``. Subclasses define
    ``encode`` and ``terms``. ``forward(x)`` is ``terms(x)``: a dict of scalar tensors,
    ``"loss"`` the objective to minimise (batch mean), ``"recon"`` the reconstruction loss
    per example (summed over dimensions, batch mean), ``"sq_l2"`` the
    squared L2 error per example (detached: one error measure for every loss), plus the
    latent term (``"kl"`` or ``"mmd"``).

    The loss module is a submodule (``recon_loss``): learned loss parameters (the adaptive
    loss's α and c) are in ``parameters()`` and ``state_dict()``. Conv nets use batch norm:
    call ``.eval()`` before encoding, decoding or sampling for use.
    """

    kind = ""
    encoder_outputs_per_latent = 1

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise ValueError(f"expected a ModelConfig, got {type(config).__name__}")
        if config.kind != self.kind:
            raise ValueError(
                f"{type(self).__name__} needs a config of kind {self.kind!r}, got {config.kind!r} "
                "(build_model picks the class)"
            )
        self.config = config
        self.encoder, self.decoder = build_nets(
            config.arch,
            config.image_shape,
            config.latent_dim,
            config.width,
            self.encoder_outputs_per_latent * config.latent_dim,
        )
        self.recon_loss = config.reconstruction_loss()
        # Squared L2 in pixel space is the reconstruction loss itself: don't compute it twice.
        self._recon_is_sq_l2 = (
            config.loss == "l2" and config.representation == "pixels" and config.color == "rgb"
        )

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    @property
    def generator_net(self):
        return self.decoder

    def terms(self, x: Tensor) -> dict[str, Tensor]:
        """The loss terms of images ``x`` (see the class docstring)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.terms(x)

    # ------------------------------------------------------------------ the Task interface

    def loss_terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self(batch["image"])

    @torch.no_grad()
    def pictures(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """64 samples from fixed prior draws (the generator's seed is fixed)."""
        generator = torch.Generator().manual_seed(1)
        return {"samples": self.sample(64, generator=generator)}

    def set_loss_param(self, name: str, value: float) -> None:
        """Rebuild the reconstruction loss with one fixed parameter changed (annealing)."""
        shape = self.config.image_shape
        loss = self.config.loss_spec().annealed(name, value, lambda s: s.image_module(shape))
        self.recon_loss = loss.to(next(self.parameters()).device)

    # ------------------------------------------------------------------ shared by subclasses

    def _check_images(self, x: Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"expected images shaped (N, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(x.shape)}"
            )

    def _reconstruction_terms(self, x_hat: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """(reconstruction loss per example, squared L2 per example, detached)."""
        n = x.shape[0]
        recon = self.recon_loss(x_hat, x) / n
        if self._recon_is_sq_l2:
            sq_l2 = recon.detach()
        else:
            sq_l2 = (x_hat.detach() - x).pow(2).sum() / n
        return recon, sq_l2
