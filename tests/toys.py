"""Toy model kinds that exercise the trainer's seams: a two-group adversarial model and a
paired-input (noisy → noisy) task. Register them with ``register(kinds)``; ``ddp_toy.py`` runs
them under torchrun.

Both keep their randomness in the data (the adversarial toy's noise is a data column) or in the
trainer's per-step generator (the paired task's corruption), so runs are reproducible and a
data-parallel run can be compared with one process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from robustvae.kinds import Kind
from robustvae.task import Group, Task


class _Flat:
    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown toy setting(s) {unknown}")
        return cls(**data)


def _field(default, text="a toy setting"):
    return dataclasses.field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class GanToyConfig(_Flat):
    hidden: int = _field(8)
    batchnorm: bool = _field(False)
    gen_lr: float = _field(0.05)
    dis_lr: float = _field(0.05)
    nan_after_step: int = _field(0, "make the 'd_fake' term NaN after this many steps (0: never)")
    nan_weights_at_step: int = _field(0, "fill a weight with NaN at this step (0: never)")


class _Data:
    def __init__(self, tensors):
        self.tensors = tensors
        first = next(iter(tensors.values()))
        self.item_shape = tuple(first.shape[1:])

    def __len__(self):
        return len(next(iter(self.tensors.values())))


def load_gan_data(run):
    g = torch.Generator().manual_seed(1234)
    real = torch.randn(320, 2, generator=g) * 0.5 + torch.tensor([2.0, -1.0])
    noise = torch.randn(320, 2, generator=g)
    train = _Data({"point": real[:256], "noise": noise[:256]})
    test = _Data({"point": real[256:], "noise": noise[256:]})
    return train, test


class GanToy(Task):
    """Generator: an affine map of noise. Discriminator: a small MLP. Two groups, two SGD
    optimizers; both gradients come from one forward pass, then both groups step."""

    best_metric = "moment_error"

    def __init__(self, config: GanToyConfig):
        super().__init__()
        self.config = config
        self.generator = nn.Linear(2, 2)
        layers = [nn.Linear(2, config.hidden)]
        if config.batchnorm:
            layers.append(nn.BatchNorm1d(config.hidden))
        layers += [nn.Tanh(), nn.Linear(config.hidden, 1)]
        self.discriminator = nn.Sequential(*layers)
        self.steps = 0

    def parameter_groups(self):
        c = self.config
        return {
            "discriminator": Group(list(self.discriminator.parameters()), "sgd", c.dis_lr),
            "generator": Group(list(self.generator.parameters()), "sgd", c.gen_lr),
        }

    def _terms(self, batch):
        real, fake = batch["point"], self.generator(batch["noise"])
        bce = nn.functional.binary_cross_entropy_with_logits
        d_real = self.discriminator(real)
        d_fake = self.discriminator(fake.detach())
        terms = {
            "d_real": bce(d_real, torch.ones_like(d_real)),
            "d_fake": bce(d_fake, torch.zeros_like(d_fake)),
        }
        g_out = self.discriminator(fake)
        terms["g_loss"] = bce(g_out, torch.ones_like(g_out))
        terms["moment_error"] = (fake.mean(0) - real.mean(0)).pow(2).sum().detach()
        return terms

    @staticmethod
    def _total(terms):
        terms["loss"] = (terms["d_real"] + terms["d_fake"] + terms["g_loss"]).detach()
        return terms

    def loss_terms(self, batch):
        return self._total(self._terms(batch))

    def training_step(self, batch, updates):
        terms = self._terms(batch)
        self.steps += 1
        if self.config.nan_after_step and self.steps > self.config.nan_after_step:
            terms["d_fake"] = terms["d_fake"] * float("nan")
        self._total(terms)
        d_loss = terms["d_real"] + terms["d_fake"]
        updates.backward("discriminator", d_loss, terms, retain_graph=True)
        updates.backward("generator", terms["g_loss"])
        updates.apply("discriminator")
        updates.apply("generator")
        if self.config.nan_weights_at_step == self.steps:
            with torch.no_grad():
                self.generator.weight.fill_(float("nan"))
        return terms

    def pictures(self, batch):
        return {}


@dataclass(frozen=True)
class PairedToyConfig(_Flat):
    channels: int = _field(4)
    sigma: float = _field(0.2, "σ of the Gaussian noise of both the input and the target")
    clean_targets: bool = _field(False)


def load_paired_data(run):
    g = torch.Generator().manual_seed(99)
    # Smooth 1×8×8 images: random low-frequency patterns.
    coarse = torch.rand(80, 1, 2, 2, generator=g)
    images = nn.functional.interpolate(coarse, size=(8, 8), mode="bilinear", align_corners=False)
    return _Data({"image": images[:64].contiguous()}), _Data({"image": images[64:].contiguous()})


class PairedToy(Task):
    """Noise2Noise in small: two independent corruptions of each clean image make the
    (input, target) pair, drawn from the trainer's per-step generator."""

    has_batch_transform = True

    def __init__(self, config: PairedToyConfig):
        super().__init__()
        self.config = config
        c = config.channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, 1, 3, padding=1),
        )

    def batch_transform(self, batch, generator):
        clean = batch["image"]
        sigma = self.config.sigma
        noisy_in = clean + sigma * torch.randn(clean.shape, generator=generator)
        target = (
            clean
            if self.config.clean_targets
            else clean + sigma * torch.randn(clean.shape, generator=generator)
        )
        return {"input": noisy_in, "target": target, "clean": clean}

    def loss_terms(self, batch):
        out = self.net(batch["input"])
        return {
            "loss": (out - batch["target"]).pow(2).mean(),
            "clean_mse": (out - batch["clean"]).pow(2).mean().detach(),
        }


def register(kinds: dict) -> None:
    """Add the toys to a kinds registry (the tests pass ``robustvae.kinds.KINDS`` through
    ``monkeypatch.setitem``)."""
    kinds["gan-toy"] = Kind(
        "gan-toy", "two-group adversarial toy", GanToyConfig,
        lambda config, shape: GanToy(config), lambda config, shape: None, load_gan_data,
    )  # fmt: skip
    kinds["paired-toy"] = Kind(
        "paired-toy", "noisy → noisy toy", PairedToyConfig,
        lambda config, shape: PairedToy(config), lambda config, shape: None, load_paired_data,
    )  # fmt: skip
