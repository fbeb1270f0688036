"""The ``restore`` kind: a Noise2Noise restorer (Lehtinen et al., 2018) trained with any
registry loss, as in Appendix D of the log-cosh paper (``001_…``).

Each training step takes a random ``crop``×``crop`` window of each tile (with a random flip),
corrupts it twice, independently, and trains the U-Net to map one corruption to the other:
the net never sees a clean image (``clean_targets`` trains on clean targets instead, the N2C
baseline). With zero-mean noise the L2 minimiser is the clean image; with text it is not, and
the loss decides what the net learns: L2 the mean of the observations (shifted towards the
text's colours), L1 their median.

The loss is compared per pixel (``representation='pixels'``), or in a DCT or wavelet
representation of the crop. Learned loss parameters (the adaptive loss's α and c, a
likelihood's scale with ``learn_scale``) are one per channel in pixels, one per coefficient
of the crop in a representation. The ``loss`` term is the loss per element (its sum over
the batch divided by the number of values); ``clean_mse`` is the mean squared error against
the clean crop, logged to watch training (no gradient flows from it).

While training, text comes from the corruption's bank of pre-rendered strings
(``text_bank``, on by default); in eval mode (test terms) crops are centred and corrupted at
``noise_test`` with freshly rendered text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustvae.crops import crop_offsets, cut
from robustvae.losses.spec import LossSpec
from robustvae.models.nets import check_width
from robustvae.restoration.corruption import LEVELS, NOISES, check_levels, corrupt, draw_levels
from robustvae.settings import (
    FlatSettings,
    check_choice,
    is_float,
    setting_field,
    shown,
)
from robustvae.task import Group, Task
from robustvae.unet import MAX_CROP, UNet, check_crop

__all__ = ["Restorer", "RestorerConfig"]

ADAM = {"betas": (0.9, 0.99), "eps": 1e-8}  # Noise2Noise's Adam


@dataclass(frozen=True)
class RestorerConfig(FlatSettings):
    """The settings of the ``restore`` kind."""

    width: float = setting_field(
        "channel multiplier of the U-Net: 1 is Noise2Noise's 48/96 (at most 64)", 1.0
    )
    loss: str = setting_field("the restoration loss, a robustvae.losses registry name", "l2")
    loss_params: tuple[tuple[str, object], ...] = setting_field(
        "the loss's parameters, e.g. a=10", ()
    )
    representation: str = setting_field(
        "pixels | dct | wavelet: where the loss compares images", "pixels"
    )
    color: str = setting_field("rgb | yuv (3-channel images only)", "rgb")
    noise: str = setting_field("text | gaussian | poisson: the corruption", "text")
    noise_min: float | None = setting_field(
        "lowest training level: text coverage, gaussian σ (of 1) or poisson λ; default per "
        "noise (Noise2Noise): text 0–0.5, test 0.25; σ 0–50/255, test 25/255; λ 1–50, test 30",
        None,
    )
    noise_max: float | None = setting_field("highest training level (default per noise)", None)
    noise_test: float | None = setting_field("the level of test images (default per noise)", None)
    crop: int = setting_field(
        f"training crop side in pixels, a multiple of 32 up to {MAX_CROP}", 64
    )
    clean_targets: bool = setting_field(
        "train on clean targets (N2C) instead of noisy ones (N2N)", False
    )
    text_bank: bool = setting_field(
        "text noise while training: strings from a bank rendered once (fast), or, when false, "
        "each rendered afresh with Pillow (as runs before the bank trained); test text is "
        "always rendered afresh",
        True,
    )

    def __post_init__(self):
        object.__setattr__(self, "width", check_width(self.width))
        object.__setattr__(self, "loss_params", self.loss_spec().params)
        check_choice("noise", self.noise, NOISES)
        for name in ("noise_min", "noise_max", "noise_test"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not is_float(value)
            ):
                raise ValueError(f"{name} must be a finite number, got {shown(value)}")
        check_levels(self.noise, *self.levels())
        check_crop(self.crop)
        for name in ("clean_targets", "text_bank"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {shown(getattr(self, name))}")
        self.check((3 if self.color == "yuv" else 1, self.crop, self.crop))

    def levels(self) -> tuple[float, float, float]:
        """(training low, high, test level), defaults filled in."""
        low, high, test = LEVELS[self.noise]
        pick = lambda value, default: default if value is None else float(value)  # noqa: E731
        return pick(self.noise_min, low), pick(self.noise_max, high), pick(self.noise_test, test)

    def check(self, shape: tuple[int, ...]) -> None:
        """ValueError unless these settings can train on images of ``shape`` (C, …)."""
        channels = shape[0]
        if self.color == "yuv" and channels != 3:
            raise ValueError(f"color 'yuv' needs 3-channel images, got {channels} channel(s)")
        self.loss_module(channels)

    def loss_spec(self) -> LossSpec:
        """The restoration loss as these settings name it."""
        return LossSpec(self.loss, self.loss_params, self.representation, self.color)

    def loss_module(self, channels: int, spec: LossSpec | None = None) -> nn.Module:
        """The loss (``reduction='sum'``) for crops of ``channels`` channels (``spec``
        instead of these settings' loss when given): in pixels, a learned parameter set per
        channel; in a representation, per coefficient of a crop."""
        spec = spec or self.loss_spec()
        if spec.in_pixels and spec.learns_per_dim:
            return spec.module(channels)
        return spec.image_module((channels, self.crop, self.crop))


class Restorer(Task):
    """The Noise2Noise U-Net and its loss, for images of ``shape`` (C, …)."""

    def __init__(self, config: RestorerConfig, shape: tuple[int, ...]):
        super().__init__()
        config.check(shape)
        self.config = config
        self.channels = shape[0]
        self.net = UNet(self.channels, config.width)
        self.loss = config.loss_module(self.channels)
        self.per_channel = getattr(self.loss, "dims", None) == (self.channels,)

    def parameter_groups(self) -> dict[str, Group]:
        return {"model": Group(list(self.parameters()), "adam", options=dict(ADAM))}

    has_batch_transform = True

    def batch_transform(self, batch: dict[str, Tensor], generator: torch.Generator):
        """A random (training) or centred (eval) crop of each tile, flipped at random while
        training; ``input`` and ``target`` two independent corruptions of it (``target`` the
        clean crop with ``clean_targets``)."""
        tiles = batch["clean"]
        n, _, size, _ = tiles.shape
        crop = self.config.crop
        offsets = crop_offsets(n, size, crop, generator, random=self.training)
        low, high, test = self.config.levels()
        if self.training:
            flips = torch.rand(n, generator=generator) < 0.5
        else:
            flips = torch.zeros(n, dtype=torch.bool)
        clean = cut(tiles, offsets, crop).float() / 255.0
        clean = torch.where(flips.view(-1, 1, 1, 1), clean.flip(-1), clean)

        def levels():
            if self.training:
                return draw_levels(n, low, high, generator)
            return torch.full((n,), test, dtype=torch.float64)

        banked = self.training and self.config.text_bank
        noisy = corrupt(clean, self.config.noise, levels(), generator, banked)
        if self.config.clean_targets:
            target = clean
        else:
            target = corrupt(clean, self.config.noise, levels(), generator, banked)
        return {"input": noisy, "target": target, "clean": clean}

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)

    def loss_terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        output = self.net(batch["input"])
        target = batch["target"]
        if self.per_channel:  # learned parameters per channel: channels last
            value = self.loss(output.movedim(1, -1), target.movedim(1, -1))
        else:
            value = self.loss(output, target)
        with torch.no_grad():
            clean_mse = (output - batch["clean"]).square().mean()
        return {"loss": value / output.numel(), "clean_mse": clean_mse}

    def pictures(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(0)
        batch = self.batch_transform({"clean": batch["clean"][:8].cpu()}, generator)
        device = next(self.parameters()).device
        output = self.net(batch["input"].to(device)).cpu().clamp(0, 1)
        rows = [batch["input"].clamp(0, 1), output, batch["clean"]]
        return {"restorations": torch.cat(rows)}

    def set_loss_param(self, name: str, value: float) -> None:
        """Rebuild the loss with one fixed parameter changed (annealing)."""
        build = lambda spec: self.config.loss_module(self.channels, spec)  # noqa: E731
        loss = self.config.loss_spec().annealed(name, value, build)
        self.loss = loss.to(next(self.parameters()).device)
