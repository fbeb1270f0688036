"""VAE-GAN (Larsen et al., 2016): a VAE whose reconstruction likelihood lives in the features
of a GAN discriminator's layer l, trained with the GAN, as ``003_…`` writes it:

    L_prior  = KL(q(z|x) ‖ N(0, σ²·I))
    L_llike  = −log p(Dis_l(x) | z): any registry loss between Dis_l(x̃) and Dis_l(x), x̃ =
               Dec(z), z ~ q(z|x), summed over the features (Larsen: the Gaussian N(·|·, I),
               the registry's ``normal`` with scale 1: ½·squared L2 plus a constant)
    L_GAN    = −r·log D(x) − log(1 − D(Dec(z_p))) − log(1 − D(Dec(Enc(x)))), z_p ~ p(z)
               (the discriminator's cross-entropy, each term a batch mean; the paper's
               L_GAN has r = 1, so two fakes weigh against each real; Larsen's code weighs
               the reals as much as both fakes together, ``real_vs_gen_weight = 0.5``: r = 2)

and Larsen's training rules: three parameter groups with their own optimizers (RMSProp, as the
paper), every gradient from one forward pass, then the updates:

    encoder        minimises L_prior + L_llike
    decoder        minimises γ·L_llike − L_GAN (its fake terms; 'non_saturating' uses
                   −log D(fake) instead, the common fix of a saturating generator)
    discriminator  minimises L_GAN; L_llike never reaches it (each group's gradient is taken
                   with respect to its own parameters only)

Which of the decoder and the discriminator update in a step may be decided by a balancing
rule from the discriminator's costs (``balance = "larsen"`` is the rule of the authors' code);
by default every group updates on every step and the discriminator learns 30× slower
(``discriminator_lr``), with the non-saturating generator loss: see
``robustvae.models.adversarial`` (which also holds the settings this kind shares with the
``gan`` kind) and the README's measurements of each choice.

The learned parameters of the feature loss (the adaptive loss's α and c, one per feature)
train with the encoder, which minimises L_llike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustvae.losses.spec import LossSpec
from robustvae.models.adversarial import (
    GENERATOR_LOSSES,
    RMSPROP,
    AdversarialSettings,
    Balancer,
    InstanceNoise,
    balancing,
    check_game,
    fake_cost,
    generator_cost,
    noisy,
    real_cost,
)
from robustvae.models.config import default_latent_dim
from robustvae.models.latent import Encoding
from robustvae.models.vae import gaussian_kl
from robustvae.models.vaegan_nets import build_vaegan_nets, check_size
from robustvae.settings import check_number, setting_field
from robustvae.task import Group, Task

__all__ = ["VAEGAN", "VAEGANConfig", "GENERATOR_LOSSES", "balancing"]


@dataclass(frozen=True)
class VAEGANConfig(AdversarialSettings):
    """The settings of the ``vaegan`` kind: the shared adversarial ones
    (``robustvae.models.adversarial``) and the feature loss."""

    feature_loss: str = setting_field(
        "the loss in the discriminator's feature space, a registry name; 'normal' (scale 1) "
        "is Larsen's Gaussian",
        "normal",
    )
    feature_loss_params: tuple[tuple[str, object], ...] = setting_field(
        "the feature loss's parameters, e.g. a=1", ()
    )
    real_weight: float = setting_field(
        "r > 0: the weight of the discriminator's cost on reals against each of its two costs "
        "on fakes (the paper's L_GAN: 1; Larsen's code, real_vs_gen_weight = 0.5: 2, reals "
        "weigh as much as both fakes together)",
        1.0,
    )
    gamma: float = setting_field(
        "γ > 0: the weight of L_llike against L_GAN in the decoder's loss (Larsen's code: 1e-6 "
        "for 62,500 updates; 0.1 learns in a few thousand)",
        0.1,
    )

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "feature_loss_params", self.feature_loss_spec().params)
        for name in ("gamma", "real_weight"):
            object.__setattr__(self, name, check_number(name, getattr(self, name), positive=True))
        self.feature_loss_module(16)  # the loss's own constructor checks its parameters

    def feature_loss_spec(self) -> LossSpec:
        """The loss in the discriminator's features as these settings name it."""
        return LossSpec(self.feature_loss, self.feature_loss_params, setting="feature_loss")

    def feature_loss_module(self, num_features: int) -> nn.Module:
        """The feature loss over ``num_features`` features, per element (``reduction='none'``):
        L_llike is backpropagated into two groups from one graph, which a compiled (fused)
        reduction cannot do (its backward frees its buffers), so the sum is taken eagerly."""
        return self.feature_loss_spec().module(num_features, reduction="none")

    def check(self, image_shape: tuple[int, int, int]) -> None:
        check_size("vaegan", image_shape)


class VAEGAN(Encoding, InstanceNoise, Task):
    """Encoder, decoder (the generator) and discriminator; see the module docstring.

    Like a VAE it encodes (the posterior mean), decodes, reconstructs and samples, so the
    autoencoders' evaluation and pictures apply to it.
    """

    best_metric = None  # no per-epoch quantity ranks a GAN's epochs: the best is the latest

    def __init__(self, config: VAEGANConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        config.check(image_shape)
        self.config = config
        self.image_shape = tuple(image_shape)
        self.latent_dim = config.latent_dim or default_latent_dim(self.image_shape)
        nets = build_vaegan_nets(self.image_shape, self.latent_dim, config.width)
        self.encoder, self.decoder = nets.encoder, nets.decoder
        self.discriminator = nets.discriminator
        self.feature_loss = config.feature_loss_module(self.discriminator.num_features)
        self.balancer = Balancer(
            config.balance, config.equilibrium, config.margin, config.balance_decay
        )
        self.noise_now = config.instance_noise

    # ------------------------------------------------------------------ the autoencoder

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"expected images shaped (N, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(x.shape)}"
            )
        return self.encoder(x)

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    @property
    def generator_net(self):
        return self.decoder

    # ------------------------------------------------------------------ the Task interface

    def parameter_groups(self) -> dict[str, Group]:
        lr = self.config.vaegan_lr
        return {
            "encoder": Group(
                [*self.encoder.parameters(), *self.feature_loss.parameters()],
                "rmsprop",
                lr,
                RMSPROP,
            ),
            "decoder": Group(list(self.decoder.parameters()), "rmsprop", lr, RMSPROP),
            "discriminator": Group(
                list(self.discriminator.parameters()),
                "rmsprop",
                self.config.discriminator_lr,
                RMSPROP,
            ),
        }

    def _terms(self, x: Tensor, noise: float = 0.0) -> dict[str, Tensor]:
        n = x.shape[0]
        mean, log_var = self.posterior(x)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        x_tilde = self.decoder(z)
        x_p = self.decoder(torch.randn_like(mean) * self.config.prior_scale)
        # One discriminator pass over reals and both kinds of fakes (batch norm sees all three,
        # as in the authors' code), with the instance noise in training.
        features, logits = self.discriminator(noisy(torch.cat([x, x_tilde, x_p]), noise))
        real, recon, sampled = logits[:n], logits[n : 2 * n], logits[2 * n :]
        cost_real = real_cost(real)
        cost_sampled, cost_recon = fake_cost(sampled), fake_cost(recon)
        loss = self.config.generator_loss
        dec_gan = generator_cost(sampled, loss) + generator_cost(recon, loss)
        llike = self.feature_loss(features[n : 2 * n], features[:n].detach()).sum() / n
        return {
            "kl": gaussian_kl(mean, log_var, self.config.prior_scale).mean(),
            "llike": llike,
            "gan": self.config.real_weight * cost_real + cost_sampled + cost_recon,
            "dec_gan": dec_gan,
            "cost_real": cost_real.detach(),
            "cost_fake": (0.5 * (cost_sampled + cost_recon)).detach(),
            "acc_real": (real > 0).float().mean(),
            "acc_sampled": (sampled < 0).float().mean(),
            "acc_recon": (recon < 0).float().mean(),
            "sq_l2": (x_tilde.detach() - x).pow(2).sum() / n,
        }

    def loss_terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self._terms(batch["image"])

    def training_step(self, batch, updates) -> dict[str, Tensor]:
        terms = self._terms(batch["image"], self.noise_now)
        train_dis, train_dec = self.balancer.decide(terms["cost_real"], terms["cost_fake"])
        updates.backward("encoder", terms["kl"] + terms["llike"], terms, retain_graph=True)
        if train_dec:
            decoder_loss = self.config.gamma * terms["llike"] + terms["dec_gan"]
            updates.backward("decoder", decoder_loss, retain_graph=True)
        else:
            updates.skip("decoder")
        if train_dis:
            updates.backward("discriminator", terms["gan"])
        else:
            updates.skip("discriminator")
        updates.apply("encoder")
        if train_dec:
            updates.apply("decoder")
        if train_dis:
            updates.apply("discriminator")
        return terms

    @torch.no_grad()
    def pictures(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(1)
        images = batch["image"][:32]
        pairs = torch.stack([images, self.reconstruct(images)], 1).flatten(0, 1)
        return {"samples": self.sample(64, generator=generator), "reconstructions": pairs}

    def end_of_epoch(self, epoch: int, metrics: list[dict]) -> None:
        """Warn when balancing froze the discriminator; with the saturating generator loss,
        stop when it has been perfect on the test split for ``pinned_epochs`` epochs in a row
        (``check_game``)."""
        super().end_of_epoch(epoch, metrics)
        accuracies = ("acc_real", "acc_sampled", "acc_recon")
        check_game(epoch, metrics, self.config, accuracies)
