"""A loss compared in an image representation (``robustvae.representations``): any loss on
the coefficients (``RepresentedLoss``), and the adaptive NLL with one α and c per coefficient
(``AdaptiveImageLoss``, Barron's VAE experiment). A likelihood's value is the NLL of the
pixels, so sums compare across representations."""

from __future__ import annotations

import math

from torch import Tensor, nn

from robustvae.losses import functional as LF
from robustvae.losses.adaptive import AdaptiveLoss
from robustvae.representations import Representation

__all__ = ["RepresentedLoss", "AdaptiveImageLoss"]


class RepresentedLoss(nn.Module):
    """``loss(T(input), T(target))`` for an image representation T (a ``Representation``).

    With ``likelihood=True`` (an NLL: the adaptive loss, 'normal', 'cauchy', …) the value is the
    NLL of the *pixels*: the coefficients' NLL minus log|det J| of T, shared equally by all
    elements, so that sums compare across representations. Other losses are left as they are.
    """

    def __init__(self, transform: Representation, loss: nn.Module, likelihood: bool = False):
        super().__init__()
        self.transform = transform
        self.loss = loss
        self.log_det_per_element = (
            transform.log_abs_det() / math.prod(transform.shape) if likelihood else 0.0
        )
        self._register_load_state_dict_pre_hook(_rename_adaptive_keys)

    @property
    def reduction(self) -> str:
        return self.loss.reduction

    @reduction.setter
    def reduction(self, value: str) -> None:
        self.loss.reduction = LF.check_reduction(value)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        LF.check_same_shape(input, target)
        value = self.loss(self.transform(input), self.transform(target))
        if not self.log_det_per_element:
            return value
        if self.reduction == "sum":
            return value - self.log_det_per_element * input.numel()
        return value - self.log_det_per_element


def _rename_adaptive_keys(state_dict, prefix, *args) -> None:
    """Checkpoints written before ``AdaptiveImageLoss`` became a ``RepresentedLoss`` named its
    inner loss ``adaptive``."""
    for key in [k for k in state_dict if k.startswith(prefix + "adaptive.")]:
        state_dict[prefix + "loss." + key[len(prefix + "adaptive.") :]] = state_dict.pop(key)


class AdaptiveImageLoss(RepresentedLoss):
    """The adaptive general-distribution NLL on an image representation, with one α and c per
    coefficient (Barron's VAE experiment: pixels+RGB, DCT+YUV, wavelets+YUV): a
    ``RepresentedLoss`` of an ``AdaptiveLoss``. Keyword arguments go to ``AdaptiveLoss``
    (``alpha_lo``, ``scale_init``, ``reduction``, …).
    """

    def __init__(
        self,
        image_size: int | tuple[int, int],
        channels: int,
        representation: str = "pixels",
        color: str = "rgb",
        wavelet_levels: int | None = None,
        **adaptive_kwargs,
    ):
        transform = Representation(image_size, channels, representation, color, wavelet_levels)
        super().__init__(transform, AdaptiveLoss(transform.shape, **adaptive_kwargs), True)

    @property
    def adaptive(self) -> AdaptiveLoss:
        return self.loss

    def alpha(self) -> Tensor:
        return self.loss.alpha()

    def scale(self) -> Tensor:
        return self.loss.scale()
