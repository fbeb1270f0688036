"""The ``depth`` kind: self-supervised stereo disparity with any photometric loss, as in
Barron's depth experiment (``002_…``: the fixed Laplace likelihood, i.e. L1 on RGB, replaced by
the general loss with fixed, annealed or adaptive α and a fixed scale).

The net (the shared U-Net, ``robustvae.unet``) sees the left view and a matching volume, one
channel per candidate disparity: ``input='cost'``, how much the right view shifted by it
differs from the left one (a fixed L1 matching cost on pixels), or ``'correlation'``,
DispNet-C's correlation of learned features (a small convolutional tower shared by both views,
trained with the net, so nothing in the input is an L1 cost); or both views (``'stereo'``), or
the left view alone (``'left'``, monocular). It predicts the left view's disparity as
``max_disparity · sigmoid(·)``.
The right view is warped into the left one by that disparity (bilinear ``grid_sample``) and
compared with the left view by the registry loss ``loss``, plus an edge-aware smoothness term:

    loss = c · mean ρ(warped − left) + smoothness · mean(|∂d*|·exp(−|∂I|))

where c is the loss's fixed scale (``scale`` or ``scale_init``; 1 for losses without one): at
α = 1 the general loss is then ≈ |x| − c away from 0, on L1's scale, so ``smoothness`` weighs
the same against every photometric loss. The adaptive loss learns one α per colour channel
(with ``learn_scale=False`` its scale stays fixed, as Barron's). No left-right consistency
term. The ground truth is never used for training: ``gt_epe``, the mean absolute disparity
error over the known pixels (each batch weighed by ``gt_known``, its share of known pixels,
so crops without ground truth count for nothing), is logged to watch training.

Each step crops the same random window from both views; the right crop reaches
``max_disparity`` columns further left, so every match lies inside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustvae.crops import crop_offsets, cut
from robustvae.depth.warp import edge_aware_smoothness, warp_right_to_left
from robustvae.losses.spec import LossSpec
from robustvae.models.nets import check_width
from robustvae.settings import (
    FlatSettings,
    check_choice,
    check_int,
    check_number,
    is_int,
    setting_field,
    shown,
)
from robustvae.task import Group, Task
from robustvae.unet import MAX_CROP, RECEPTIVE_RADIUS, UNet, check_crop

__all__ = ["DepthConfig", "DepthTask", "INPUTS"]

INPUTS = ("cost", "correlation", "stereo", "left")
#: The largest max_disparity: its matching volume has one channel per candidate disparity.
MAX_DISPARITY = 1024
#: The correlation's feature tower: three 3×3 convolutions of this many channels × width.
FEATURES = 48


@dataclass(frozen=True)
class DepthConfig(FlatSettings):
    """The settings of the ``depth`` kind."""

    width: float = setting_field(
        "channel multiplier of the U-Net: 1 is Noise2Noise's 48/96 (at most 64)", 1.0
    )
    loss: str = setting_field("the photometric loss, a robustvae.losses registry name", "l1")
    loss_params: tuple[tuple[str, object], ...] = setting_field(
        "the loss's parameters, e.g. alpha=0 scale=0.01", ()
    )
    max_disparity: int = setting_field(
        f"the largest disparity the net can predict, in pixels (at most {MAX_DISPARITY})", 80
    )
    smoothness: float = setting_field("weight of the edge-aware disparity smoothness term", 0.01)
    crop: int = setting_field(
        f"training crop side in pixels, a multiple of 32 up to {MAX_CROP}", 128
    )
    input: str = setting_field(
        "cost (the left view and a pixel matching-cost volume) | correlation (the left view "
        "and DispNet-C's correlation of learned features) | stereo (both views) | left "
        "(monocular): what the net sees",
        "cost",
    )
    cost_step: int = setting_field(
        "the disparity step of the cost or correlation volume, in pixels", 4
    )

    def __post_init__(self):
        object.__setattr__(self, "width", check_width(self.width))
        object.__setattr__(self, "loss_params", self.loss_spec().params)
        check_int("max_disparity", self.max_disparity, 1, MAX_DISPARITY)
        object.__setattr__(self, "smoothness", check_number("smoothness", self.smoothness, False))
        check_crop(self.crop)
        check_choice("input", self.input, INPUTS)
        if not is_int(self.cost_step) or not 1 <= self.cost_step <= self.max_disparity:
            raise ValueError(
                f"cost_step must be an int in [1, max_disparity], got {shown(self.cost_step)}"
            )
        self.loss_module()

    def input_channels(self) -> int:
        if self.input in ("cost", "correlation"):
            return 3 + len(range(0, self.max_disparity, self.cost_step))
        return 6 if self.input == "stereo" else 3

    def check(self, shape: tuple[int, ...]) -> None:
        if shape[0] != 3:
            raise ValueError(f"the depth kind takes RGB pairs, got {shape[0]} channel(s)")

    def loss_spec(self) -> LossSpec:
        """The photometric loss as these settings name it (on RGB pixels)."""
        return LossSpec(self.loss, self.loss_params)

    def loss_module(self, spec: LossSpec | None = None) -> nn.Module:
        """The photometric loss (``reduction='sum'``), per colour channel where it learns
        (``spec`` instead of these settings' loss when given)."""
        return (spec or self.loss_spec()).module(3)

    def loss_weight(self, spec: LossSpec | None = None) -> float:
        """c, the loss's fixed scale (``scale`` or ``scale_init``), or 1."""
        kwargs = (spec or self.loss_spec()).kwargs
        value = kwargs.get("scale", kwargs.get("scale_init", 1.0))
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else 1.0


class DepthTask(Task):
    """The disparity net and its self-supervised objective, for RGB pairs. Its best checkpoint
    is its latest: the held-out scene's photometric loss, over a few test crops, is too noisy
    to rank epochs (and the ground truth is never used to choose)."""

    best_metric = None
    term_weights = {"gt_epe": "gt_known"}

    def __init__(self, config: DepthConfig, shape: tuple[int, ...]):
        super().__init__()
        config.check(shape)
        self.config = config
        self.net = UNet(config.input_channels(), config.width, out_channels=1)
        if config.input == "correlation":
            self.features = feature_tower(round(FEATURES * config.width) or 1)
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
        offsets = crop_offsets(n, size, crop, generator, random=self.training)
        return {
            "left": cut(left, offsets, crop).float().div(255),
            "right": cut(right, offsets, crop, margin).float().div(255),
            "disparity": cut(truth, offsets, crop),
        }

    def net_input(self, left: Tensor, right: Tensor, margin: int) -> Tensor:
        """What the net sees. ``right`` starts ``margin`` columns left of ``left``. The cost
        volume holds, for d = 0, step, … < max_disparity, the mean absolute difference of
        the left view and the right view shifted by d (averaged over channels and a 5×5
        window): where it is low, d matches. The correlation volume holds the mean over
        channels of the product of both views' learned features, the right one shifted by d
        (DispNet-C's correlation with a 1-pixel patch): where it is high, d matches."""
        width = left.shape[-1]
        aligned = right[..., margin : margin + width]
        if self.config.input == "left":
            return left
        if self.config.input == "stereo":
            return torch.cat([left, aligned], 1)
        if margin < self.config.max_disparity - 1:
            raise ValueError(
                f"the matching volume needs the right view to start max_disparity - 1 columns "
                f"left of the left view, got {margin}"
            )
        shifts = range(0, self.config.max_disparity, self.config.cost_step)
        if self.config.input == "correlation":
            f_left, f_right = self.features(left), self.features(right)
            volume = correlation(f_left, f_right, margin, shifts)
        else:
            costs = [
                (left - right[..., margin - d : margin - d + width]).abs().mean(1, keepdim=True)
                for d in shifts
            ]
            volume = nn.functional.avg_pool2d(torch.cat(costs, 1), 5, stride=1, padding=2)
        return torch.cat([left, volume], 1)

    def disparity(self, left: Tensor, right: Tensor, margin: int = 0) -> Tensor:
        """The left view's disparity (N×1×H×W, pixels); ``right`` starts ``margin`` columns
        left of ``left`` (N×3×H×(W + margin))."""
        x = self.net_input(left, right, margin)
        return self.config.max_disparity * torch.sigmoid(self.net(x))

    def forward(self, pair: Tensor) -> Tensor:
        """A stereo pair (N×6×H×W: left, right) → disparity: what tiled inference runs. The
        right view is extended to the left by repeating its first column."""
        margin = self.config.max_disparity
        right = nn.functional.pad(pair[:, 3:], (margin, 0, 0, 0), mode="replicate")
        return self.disparity(pair[:, :3], right, margin)

    def reach(self) -> int:
        """How far an output pixel sees into the input: the U-Net's reach, plus the matching
        volume's shifts and window (the cost's 5×5 mean, or the feature tower's three 3×3
        convolutions)."""
        window = {"cost": 2, "correlation": 3, "stereo": 0, "left": 0}[self.config.input]
        shifts = self.config.max_disparity if self.config.input != "left" else 0
        return RECEPTIVE_RADIUS + shifts + window

    def loss_terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        left, right = batch["left"], batch["right"]
        margin = right.shape[-1] - left.shape[-1]
        disparity = self.disparity(left, right, margin)
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
            "gt_known": known.float().mean(),
        }

    def pictures(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(0)
        batch = self.batch_transform({k: v[:8].cpu() for k, v in batch.items()}, generator)
        device = next(self.parameters()).device
        left, right = batch["left"].to(device), batch["right"].to(device)
        margin = right.shape[-1] - left.shape[-1]
        disparity = self.disparity(left, right, margin).cpu() / self.config.max_disparity
        return {"disparity": torch.cat([batch["left"], disparity.expand(-1, 3, -1, -1)])}

    def set_loss_param(self, name: str, value: float) -> None:
        """Rebuild the photometric loss with one fixed parameter changed (annealing)."""
        spec = self.config.loss_spec()
        loss = spec.annealed(name, value, self.config.loss_module)
        self.loss = loss.to(next(self.parameters()).device)
        self.weight = self.config.loss_weight(spec.with_param(name, value))


def feature_tower(channels: int) -> nn.Sequential:
    """The correlation's features: three 3×3 convolutions (leaky ReLU between), full size."""
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(channels, channels, 3, padding=1),
    )


def correlation(left: Tensor, right: Tensor, margin: int, shifts) -> Tensor:
    """N×len(shifts)×H×W: for each shift d, the mean over channels of left[x] · right[x − d],
    where ``right`` (features) starts ``margin`` ≥ max(shifts) columns left of ``left``."""
    width = left.shape[-1]
    if margin < max(shifts):
        raise ValueError(f"the correlation needs a margin of {max(shifts)} columns, got {margin}")
    products = [(left * right[..., margin - d : margin - d + width]) for d in shifts]
    return torch.cat([p.mean(1, keepdim=True) for p in products], 1)
