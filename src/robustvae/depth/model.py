"""The ``depth`` kind: self-supervised stereo disparity with any photometric loss, as in
Barron's depth experiment (``002_…``: the fixed Laplace likelihood, i.e. L1 on RGB, replaced by
the general loss with fixed, annealed or adaptive α and a fixed scale).

The net (the shared U-Net, ``robustvae.unet``) sees the left view, and the right one with
``input='stereo'``, and predicts the left view's disparity as ``max_disparity · sigmoid(·)``.
The right view is warped into the left one by that disparity (bilinear ``grid_sample``) and
compared with the left view by the registry loss ``loss``, plus an edge-aware smoothness term:

    loss = c · mean ρ(warped − left) + smoothness · mean(|∂d*|·exp(−|∂I|))

where c is the loss's fixed scale (``scale`` or ``scale_init``; 1 for losses without one): at
α = 1 the general loss is then ≈ |x| − c away from 0, on L1's scale, so ``smoothness`` weighs
the same against every photometric loss. The adaptive loss learns one α per colour channel
(with ``learn_scale=False`` its scale stays fixed, as Barron's). No left-right consistency
term. The ground truth is never used for training: ``gt_epe``, the mean absolute disparity
error on the crop's known pixels (0 when none is known), is logged to watch training.

Each step crops the same random window from both views; the right crop reaches
``max_disparity`` columns further left, so every match lies inside it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from robustvae.depth.warp import edge_aware_smoothness, warp_right_to_left
from robustvae.losses.registry import LIKELIHOOD_LOSSES, LOSSES, get_loss
from robustvae.models.config import FlatSettings, _choice, _is_int, _loss_params, _number
from robustvae.models.nets import check_width
from robustvae.task import Group, Task
from robustvae.unet import MULTIPLE, UNet

__all__ = ["DepthConfig", "DepthTask", "INPUTS"]

INPUTS = ("stereo", "left")


def _help(text: str, default):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class DepthConfig(FlatSettings):
    """The settings of the ``depth`` kind."""

    width: float = _help("channel multiplier of the U-Net: 1 is Noise2Noise's 48/96", 1.0)
    loss: str = _help("the photometric loss, a robustvae.losses registry name", "l1")
    loss_params: tuple[tuple[str, object], ...] = _help(
        "the loss's parameters, e.g. alpha=0 scale=0.01", ()
    )
    max_disparity: int = _help("the largest disparity the net can predict, in pixels", 128)
    smoothness: float = _help("weight of the edge-aware disparity smoothness term", 0.01)
    crop: int = _help("training crop side in pixels, a multiple of 32", 128)
    input: str = _help("stereo (the net sees both views) | left (monocular)", "stereo")

    def __post_init__(self):
        object.__setattr__(self, "width", check_width(self.width))
        _choice("loss", self.loss, tuple(LOSSES))
        object.__setattr__(self, "loss_params", _loss_params(self.loss_params))
        if not _is_int(self.max_disparity) or self.max_disparity < 1:
            raise ValueError(f"max_disparity must be a positive int, got {self.max_disparity!r}")
        object.__setattr__(self, "smoothness", _number("smoothness", self.smoothness, False))
        if not _is_int(self.crop) or self.crop < MULTIPLE or self.crop % MULTIPLE:
            raise ValueError(
                f"crop must be a multiple of {MULTIPLE} (≥ {MULTIPLE}), got {self.crop!r}"
            )
        _choice("input", self.input, INPUTS)
        self.loss_module()

    def check(self, shape: tuple[int, ...]) -> None:
        if shape[0] != 3:
            raise ValueError(f"the depth kind takes RGB pairs, got {shape[0]} channel(s)")

    def loss_module(self, params: dict | None = None) -> nn.Module:
        """The photometric loss (``reduction='sum'``), per colour channel where it learns."""
        kwargs = dict(self.loss_params) if params is None else dict(params)
        if self.loss == "adaptive" or (
            self.loss in LIKELIHOOD_LOSSES and (kwargs.get("learn_scale") or kwargs.get("learn_df"))
        ):
            kwargs["num_dims"] = 3
        try:
            return get_loss(self.loss, reduction="sum", **kwargs)
        except TypeError as error:
            raise ValueError(f"loss {self.loss!r}: bad loss_params: {error}") from None

    def loss_weight(self, params: dict | None = None) -> float:
        """c, the loss's fixed scale (``scale`` or ``scale_init``), or 1."""
        kwargs = dict(self.loss_params) if params is None else dict(params)
        value = kwargs.get("scale", kwargs.get("scale_init", 1.0))
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else 1.0


class DepthTask(Task):
    """The disparity net and its self-supervised objective, for RGB pairs. Its best checkpoint
    is its latest: the held-out scene's photometric loss, over a few test crops, is too noisy
    to rank epochs (and the ground truth is never used to choose)."""

    best_metric = None

    def __init__(self, config: DepthConfig, shape: tuple[int, ...]):
        super().__init__()
        config.check(shape)
        self.config = config
        inputs = 6 if config.input == "stereo" else 3
        self.net = UNet(inputs, config.width, out_channels=1)
        self.loss = config.loss_module()
        self.weight = config.loss_weight()
        self.per_channel = getattr(self.loss, "dims", None) == (3,)

    def parameter_groups(self) -> dict[str, Group]:
        return {"model": Group(list(self.parameters()), "adam")}

    has_batch_transform = True

    def batch_transform(self, batch: dict[str, Tensor], generator: torch.Generator):
        """The same random (training) or centred (eval) crop of both views' tiles."""
        left, right, truth = batch["left"], batch["right"], batch["disparity"]
        n, _, size, _ = left.shape
        crop, margin = self.config.crop, right.shape[-1] - left.shape[-1]
        if size < crop:
            raise ValueError(f"tiles of {size} pixels are smaller than the crop ({crop})")
        if self.training:
            offsets = torch.randint(0, size - crop + 1, (n, 2), generator=generator).tolist()
        else:
            offsets = [((size - crop) // 2,) * 2] * n
        pick = lambda t, r, c, extra=0: t[:, r : r + crop, c : c + crop + extra]  # noqa: E731
        return {
            "left": torch.stack([pick(t, r, c) for t, (r, c) in zip(left, offsets, strict=True)])
            .float()
            .div(255),
            "right": torch.stack(
                [pick(t, r, c, margin) for t, (r, c) in zip(right, offsets, strict=True)]
            )
            .float()
            .div(255),
            "disparity": torch.stack(
                [pick(t, r, c) for t, (r, c) in zip(truth, offsets, strict=True)]
            ),
        }

    def disparity(self, left: Tensor, right: Tensor) -> Tensor:
        """The left view's disparity (N×1×H×W, pixels) from aligned views (N×3×H×W each)."""
        x = torch.cat([left, right], 1) if self.config.input == "stereo" else left
        return self.config.max_disparity * torch.sigmoid(self.net(x))

    def forward(self, pair: Tensor) -> Tensor:
        """A 6×H×W-per-item stereo pair (left, right stacked) → disparity: what tiled
        inference runs."""
        return self.disparity(pair[:, :3], pair[:, 3:])

    def loss_terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        left, right = batch["left"], batch["right"]
        margin = right.shape[-1] - left.shape[-1]
        disparity = self.disparity(left, right[..., margin:])
        warped = warp_right_to_left(right, disparity, offset=margin)
        if self.per_channel:
            rho = self.loss(warped.movedim(1, -1), left.movedim(1, -1))
        else:
            rho = self.loss(warped, left)
        photometric = self.weight * rho / left.numel()
        smooth = edge_aware_smoothness(disparity, left)
        with torch.no_grad():
            truth = batch["disparity"]
            known = torch.isfinite(truth)
            error = torch.where(known, (disparity - truth).abs(), torch.zeros_like(truth))
            gt_epe = error.sum() / known.sum().clamp(min=1)
        return {
            "loss": photometric + self.config.smoothness * smooth,
            "photometric": photometric,
            "smoothness": smooth,
            "gt_epe": gt_epe,
        }

    def pictures(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(0)
        batch = self.batch_transform({k: v[:8].cpu() for k, v in batch.items()}, generator)
        device = next(self.parameters()).device
        left, right = batch["left"].to(device), batch["right"].to(device)
        margin = right.shape[-1] - left.shape[-1]
        disparity = self.disparity(left, right[..., margin:]).cpu() / self.config.max_disparity
        return {"disparity": torch.cat([batch["left"], disparity.expand(-1, 3, -1, -1)])}

    def set_loss_param(self, name: str, value: float) -> None:
        """Rebuild the photometric loss with one fixed parameter changed (annealing)."""
        from robustvae.losses.registry import with_parameter

        params = dict(self.config.loss_params)
        self.loss = with_parameter(
            self.config.loss, params, name, value, self.config.loss_module
        ).to(next(self.parameters()).device)
        self.weight = self.config.loss_weight({**params, name: value})

    def adaptive_loss(self) -> nn.Module | None:
        from robustvae.losses.adaptive import AdaptiveLoss

        return next((m for m in self.loss.modules() if isinstance(m, AdaptiveLoss)), None)

    def end_of_epoch(self, epoch: int, metrics: list[dict]) -> None:
        adaptive = self.adaptive_loss()
        if adaptive is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                adaptive.warn_if_at_bounds()
