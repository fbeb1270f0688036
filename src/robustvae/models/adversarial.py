"""What the adversarial kinds (``vaegan``, ``gan``) share: their settings, the discriminator's
costs, the balancing rules that decide which groups update in a step, and the checks of the
game's health after every epoch.

The discriminator D gives logits; its costs are binary cross-entropies, batch means:
``cost_real = −log D(x)`` and, for each kind of fake x̂, ``−log(1 − D(x̂))``. The generator
(Larsen's decoder) maximises the discriminator's cost on fakes ('saturating', the paper's
minimax) or minimises ``−log D(x̂)`` ('non_saturating', Goodfellow et al.'s fix of a generator
that learns nothing while D wins).

Balancing (``balance``) decides from the discriminator's costs whether the discriminator and
the generator update in this step:

- ``larsen``, the rule of Larsen et al.'s code (``model/aegan.py``; not in the paper): the
  discriminator waits while its cost on reals *or* on fakes is below equilibrium − margin
  (it is winning), the generator while either is above equilibrium + margin; if both would
  wait, both update. Its premise fails at small scale: once a waiting discriminator's cost on
  reals is low it stays low (nothing else moves it), and the discriminator never updates
  again: 0–3% of the steps in every epoch in ``docs/results/vaegan-dynamics.csv``.
- ``mean``: the same thresholds on the mean of the two costs, the discriminator's whole cost.
  A waiting discriminator's cost on fakes rises as the generator catches up, and with it the
  mean, so it updates again, where the generator can catch up (at γ = 0.1 on mnist-5k it
  does not, and the discriminator stays frozen as under ``larsen``).
- ``none`` (the default): every group updates on every step. What keeps the discriminator
  from winning at once is its learning rate (``discriminator_lr``, 30× below the others).

With ``instance_noise`` = σ > 0, every image the discriminator sees in training, real or fake,
carries N(0, σ²) noise, σ decaying linearly to 0 over the run: the two distributions overlap, so
the discriminator cannot separate them perfectly while the generator is poor (Sønderby et al.,
2016, "Amortised MAP inference for image super-resolution"). Test terms see clean images. In
the VAE-GAN the feature likelihood comes from the same discriminator pass, so in training it
compares the features of noisy images too.

With ``balance_decay`` > 0 the rule reads exponential moving averages of the costs (that
decay per step, kept in a buffer, so a resumed run decides the same) instead of the step's own.
Under data parallelism the costs are averaged over the ranks first, so every rank decides the
same. Deciding reads two numbers on the host: one synchronisation per step on a GPU.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from robustvae.models.config import MAX_LATENT_DIM
from robustvae.models.nets import check_width
from robustvae.settings import (
    FlatSettings,
    check_choice,
    check_int,
    check_number,
    is_int,
    setting_field,
)
from robustvae.task import TrainingStopped

__all__ = [
    "AdversarialSettings",
    "BALANCE_RULES",
    "Balancer",
    "GENERATOR_LOSSES",
    "InstanceNoise",
    "LOW_SHARE",
    "RMSPROP",
    "balancing",
    "check_game",
    "fake_cost",
    "generator_cost",
    "instance_noise_at",
    "mean_balancing",
    "noisy",
]

GENERATOR_LOSSES = ("saturating", "non_saturating")
BALANCE_RULES = ("larsen", "mean", "none")
RMSPROP = {"alpha": 0.9, "eps": 1e-8}  # the authors' RMSProp: decay 0.9, eps 1e-8
#: Below this share of an epoch's steps the discriminator counts as frozen (a warning).
LOW_SHARE = 0.1


@dataclass(frozen=True)
class AdversarialSettings(FlatSettings):
    """The settings both adversarial kinds take (nets, optimizer, the game's rules)."""

    latent_dim: int | None = setting_field(
        "size of z, at most 4096; default: 8 below 64×64 images, 64 from there (Larsen's "
        "CelebA: 128)",
        None,
    )
    width: float = setting_field("channel/unit multiplier: 1 is Larsen's size (at most 64)", 1.0)
    vaegan_lr: float = setting_field(
        "RMSProp's learning rate for the groups other than the discriminator (Larsen: 3e-4; "
        "the run's lr is not used)",
        3e-4,
    )
    discriminator_lr: float = setting_field(
        "the discriminator's RMSProp learning rate (Larsen: 3e-4, as the others); 30× below "
        "the generator's, it learns on every step without winning at once (two time-scales)",
        1e-5,
    )
    generator_loss: str = setting_field(
        "non_saturating (the generator minimises −log D(fake)) | saturating (Larsen: it "
        "maximises the discriminator's cost)",
        "non_saturating",
    )
    balance: str = setting_field(
        "which groups update in a step: none (all, every step) | larsen (skip the "
        "discriminator while its cost on reals or on fakes is below equilibrium − margin, the "
        "generator while either is above equilibrium + margin, as Larsen's code) | mean (the "
        "same on the discriminator's mean cost)",
        "none",
    )
    balance_decay: float = setting_field(
        "in [0, 1): balance on moving averages of the costs with this decay per step (0: each "
        "step's own costs)",
        0.0,
    )
    equilibrium: float = setting_field(
        "the balancing rule's target cost (Larsen's code: 0.68)", 0.68
    )
    margin: float = setting_field("the balancing rule's margin (Larsen's code: 0.35)", 0.35)
    pinned_epochs: int = setting_field(
        "with the saturating generator loss, stop when the discriminator tells every test "
        "image apart for this many epochs in a row (0: never)",
        3,
    )
    prior_scale: float = setting_field("σ > 0 of the prior N(0, σ²·I)", 1.0)
    instance_noise: float = setting_field(
        "σ ≥ 0 of Gaussian noise added in training to every image the discriminator sees, "
        "reals and fakes, decaying linearly from σ in the first epoch to 0 after the last "
        "(Sønderby et al., 2016); 0: none",
        0.0,
    )

    def __post_init__(self):
        if self.latent_dim is not None:
            check_int("latent_dim", self.latent_dim, 1, MAX_LATENT_DIM)
        object.__setattr__(self, "width", check_width(self.width))
        for name in ("vaegan_lr", "discriminator_lr", "prior_scale"):
            object.__setattr__(self, name, check_number(name, getattr(self, name), positive=True))
        for name in ("equilibrium", "margin", "balance_decay", "instance_noise"):
            object.__setattr__(self, name, check_number(name, getattr(self, name), positive=False))
        if self.balance_decay >= 1:
            raise ValueError(f"balance_decay must be in [0, 1), got {self.balance_decay!r}")
        check_choice("generator_loss", self.generator_loss, GENERATOR_LOSSES)
        if isinstance(self.balance, bool):  # runs saved when balance was true/false
            object.__setattr__(self, "balance", "larsen" if self.balance else "none")
        check_choice("balance", self.balance, BALANCE_RULES)
        if not is_int(self.pinned_epochs) or self.pinned_epochs < 0:
            raise ValueError(f"pinned_epochs must be an int ≥ 0, got {self.pinned_epochs!r}")


# ---------------------------------------------------------------------- costs


def fake_cost(logits: Tensor) -> Tensor:
    """The discriminator's cost on fakes, −log(1 − D(x̂)), a batch mean."""
    return bce(logits, torch.zeros_like(logits))


def real_cost(logits: Tensor) -> Tensor:
    """The discriminator's cost on reals, −log D(x), a batch mean."""
    return bce(logits, torch.ones_like(logits))


def generator_cost(logits: Tensor, generator_loss: str) -> Tensor:
    """What the generator minimises for one kind of fake: −(the discriminator's cost on it)
    ('saturating'), or −log D(x̂) ('non_saturating')."""
    if generator_loss == "saturating":
        return -fake_cost(logits)
    return real_cost(logits)


def instance_noise_at(epoch: int, epochs: int, sigma: float) -> float:
    """The instance noise's σ in ``epoch`` (0-based) of ``epochs``: σ·(1 − epoch/epochs)."""
    return sigma * (1 - epoch / epochs)


def noisy(images: Tensor, sigma: float) -> Tensor:
    """``images`` with N(0, σ²) noise added to each value (unchanged for σ = 0)."""
    return images if sigma == 0 else images + sigma * torch.randn_like(images)


class InstanceNoise:
    """What an adversarial task mixes in before ``Task``: ``noise_now``, the instance noise's
    σ in the current epoch, set before each epoch and logged with the epoch's statistics."""

    noise_now: float = 0.0

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        super().begin_epoch(epoch, epochs)
        self.noise_now = instance_noise_at(epoch, epochs, self.config.instance_noise)

    def epoch_statistics(self) -> dict[str, float]:
        statistics = super().epoch_statistics()
        if self.config.instance_noise > 0:
            statistics = {**statistics, "instance_noise": self.noise_now}
        return statistics


# ---------------------------------------------------------------------- balancing


def balancing(real: float, fake: float, equilibrium: float, margin: float) -> tuple[bool, bool]:
    """Larsen's rule: (update the discriminator, update the generator) for the
    discriminator's costs on real images and on fakes (``model/aegan.py``)."""
    low, high = equilibrium - margin, equilibrium + margin
    train_dis = not (real < low or fake < low)  # it is winning: let the generator catch up
    train_dec = not (real > high or fake > high)  # it is losing: let it catch up
    if not (train_dis or train_dec):
        return True, True
    return train_dis, train_dec


def mean_balancing(real: float, fake: float, equilibrium: float, margin: float):
    """The ``mean`` rule: Larsen's thresholds on the discriminator's mean cost."""
    mean = 0.5 * (real + fake)
    return balancing(mean, mean, equilibrium, margin)


class Balancer(nn.Module):
    """Decides each step which of the discriminator and the generator update (see the module
    docstring). Its moving averages, when ``decay`` > 0, are a buffer: checkpointed and
    resumed with the weights."""

    def __init__(self, rule: str, equilibrium: float, margin: float, decay: float = 0.0):
        super().__init__()
        self.rule, self.equilibrium, self.margin, self.decay = rule, equilibrium, margin, decay
        if decay > 0:
            self.register_buffer("averages", torch.full((2,), math.nan, dtype=torch.float64))

    def decide(self, cost_real: Tensor, cost_fake: Tensor) -> tuple[bool, bool]:
        """(update the discriminator, update the generator) after this step's costs."""
        if self.rule == "none":
            return True, True
        costs = torch.stack([cost_real.detach(), cost_fake.detach()]).double()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(costs)
            costs /= torch.distributed.get_world_size()
        if self.decay > 0:
            averages = self.averages
            first = torch.isnan(averages)
            blended = self.decay * averages + (1 - self.decay) * costs.to(averages.device)
            averages.copy_(torch.where(first, costs.to(averages.device), blended))
            costs = averages
        real, fake = costs.tolist()
        rule = balancing if self.rule == "larsen" else mean_balancing
        return rule(real, fake, self.equilibrium, self.margin)


# ---------------------------------------------------------------------- the game's health


def check_game(epoch: int, metrics: list[dict], config: AdversarialSettings, accuracies) -> None:
    """After an epoch: warn (one line) when the discriminator updated on under ``LOW_SHARE``
    of its steps, frozen while the generator trains against a fixed opponent. With the
    saturating generator loss, stop when it has told every test image apart (each of
    ``accuracies`` 1.0) for ``pinned_epochs`` epochs in a row: that loss's gradient then
    vanishes (the non-saturating one's does not)."""
    share = metrics[-1].get("update_share", {}).get("discriminator") if metrics else None
    if share is not None and share < LOW_SHARE:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn(
                f"epoch {epoch + 1}: the discriminator updated on {share:.0%} of the steps "
                f"(under {LOW_SHARE:.0%}): balancing has frozen it, and the generator trains "
                "against a fixed opponent (balance = 'none' updates it on every step)",
                RuntimeWarning,
                stacklevel=2,
            )
    n = config.pinned_epochs if config.generator_loss == "saturating" else 0
    recent = metrics[-n:] if n else []
    if (
        n
        and len(recent) == n
        and all(min(row["test"][a] for a in accuracies) >= 1.0 for row in recent)
    ):
        raise TrainingStopped(
            f"the discriminator has told every test image apart for {n} epochs in a row "
            f"({', '.join(a.removeprefix('acc_') for a in accuracies)}): the saturating "
            "generator loss gives no useful gradient. Try generator_loss = 'non_saturating', a "
            "smaller discriminator_lr, or a smaller width"
        )
