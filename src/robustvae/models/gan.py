"""GAN with Larsen et al.'s nets: the VAE-GAN's decoder as the generator and its discriminator,
trained by the same rules (``robustvae.models.adversarial``), so that a grid can hold a VAE, a
GAN and a VAE-GAN side by side, as Larsen's Fig. 1 and Table 1 do:

    L_GAN      = −log D(x) − log(1 − D(Gen(z_p))), z_p ~ N(0, σ²·I)   (batch means)
    generator  minimises −(−log(1 − D(Gen(z_p)))) ('saturating', the minimax) or
               −log D(Gen(z_p)) ('non_saturating')
    discriminator  minimises L_GAN

Two groups, RMSProp each (Larsen's settings), both gradients from one forward pass, a
balancing rule on the discriminator's costs deciding which updates. A GAN has no encoder: it
samples and decodes codes, and its evaluation is the autoencoders' without reconstructions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from robustvae.models.adversarial import (
    RMSPROP,
    AdversarialSettings,
    Balancer,
    InstanceNoise,
    check_game,
    fake_cost,
    generator_cost,
    noisy,
    real_cost,
)
from robustvae.models.config import default_latent_dim
from robustvae.models.latent import Generative
from robustvae.models.vaegan_nets import Decoder, Discriminator, check_size
from robustvae.task import Group, Task

__all__ = ["GAN", "GANConfig"]


@dataclass(frozen=True)
class GANConfig(AdversarialSettings):
    """The settings of the ``gan`` kind: the adversarial settings the VAE-GAN shares."""

    def check(self, image_shape: tuple[int, int, int]) -> None:
        check_size("gan", image_shape)


class GAN(Generative, InstanceNoise, Task):
    """Generator (Larsen's decoder) and discriminator; see the module docstring."""

    best_metric = None  # no per-epoch quantity ranks a GAN's epochs: the best is the latest

    def __init__(self, config: GANConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        config.check(image_shape)
        self.config = config
        self.image_shape = tuple(image_shape)
        self.latent_dim = config.latent_dim or default_latent_dim(self.image_shape)
        self.generator = Decoder(self.image_shape, self.latent_dim, config.width)
        self.discriminator = Discriminator(self.image_shape, config.width)
        self.balancer = Balancer(
            config.balance, config.equilibrium, config.margin, config.balance_decay
        )
        self.noise_now = config.instance_noise

    @property
    def generator_net(self):
        return self.generator

    def parameter_groups(self) -> dict[str, Group]:
        lr = self.config.vaegan_lr
        return {
            "generator": Group(list(self.generator.parameters()), "rmsprop", lr, RMSPROP),
            "discriminator": Group(
                list(self.discriminator.parameters()),
                "rmsprop",
                self.config.discriminator_lr,
                RMSPROP,
            ),
        }

    def loss_terms(self, batch: dict[str, Tensor], noise: float = 0.0) -> dict[str, Tensor]:
        x = batch["image"]
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"expected images shaped (N, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(x.shape)}"
            )
        n = x.shape[0]
        z = torch.randn(n, self.latent_dim, device=x.device, dtype=x.dtype)
        x_p = self.generator(z * self.config.prior_scale)
        # One discriminator pass over reals and samples (batch norm sees both, as the VAE-GAN),
        # with the instance noise in training.
        _, logits = self.discriminator(noisy(torch.cat([x, x_p]), noise))
        real, sampled = logits[:n], logits[n:]
        cost_real, cost_sampled = real_cost(real), fake_cost(sampled)
        return {
            "gan": cost_real + cost_sampled,
            "gen_gan": generator_cost(sampled, self.config.generator_loss),
            "cost_real": cost_real.detach(),
            "cost_fake": cost_sampled.detach(),
            "acc_real": (real > 0).float().mean(),
            "acc_sampled": (sampled < 0).float().mean(),
        }

    def training_step(self, batch, updates) -> dict[str, Tensor]:
        terms = self.loss_terms(batch, self.noise_now)
        train_dis, train_gen = self.balancer.decide(terms["cost_real"], terms["cost_fake"])
        if train_gen:
            updates.backward("generator", terms["gen_gan"], terms, retain_graph=train_dis)
        else:
            updates.skip("generator")
        if train_dis:
            terms_now = None if train_gen else terms  # the step's first backward checks them
            updates.backward("discriminator", terms["gan"], terms_now)
        else:
            updates.skip("discriminator")
        if train_gen:
            updates.apply("generator")
        if train_dis:
            updates.apply("discriminator")
        return terms

    @torch.no_grad()
    def pictures(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"samples": self.sample(64, generator=torch.Generator().manual_seed(1))}

    def end_of_epoch(self, epoch: int, metrics: list[dict]) -> None:
        """Warn when balancing froze the discriminator; with the saturating generator loss,
        stop when it has been perfect on the test split for ``pinned_epochs`` epochs in a row
        (``check_game``)."""
        super().end_of_epoch(epoch, metrics)
        check_game(epoch, metrics, self.config, ("acc_real", "acc_sampled"))
