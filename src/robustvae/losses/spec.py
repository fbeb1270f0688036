"""A loss as a run's settings name it: a registry name, its parameters, and the image
representation and colour it compares in. Every kind builds its loss from a ``LossSpec``, so
the rules live here once:

- a loss that learns parameters per dimension (always the adaptive loss; a likelihood
  — 'normal', 'laplace', 'cauchy', 'student_t' — when ``learn_scale`` or ``learn_df`` is
  asked) gets ``num_dims``: one set per element of the dimensions the kind names (``module``);
- a loss in a representation other than RGB pixels compares whole images
  (``image_module``): its coefficients through ``RepresentedLoss``, a likelihood's value the
  NLL of the pixels;
- annealing rebuilds the loss with one fixed parameter changed (``annealed``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from robustvae.losses.registry import LIKELIHOOD_LOSSES, LOSSES, get_loss, loss_parameters
from robustvae.losses.represented import AdaptiveImageLoss, RepresentedLoss
from robustvae.representations import COLORS, REPRESENTATIONS, Representation
from robustvae.settings import check_choice, check_loss_params

__all__ = ["LossSpec"]


@dataclass(frozen=True)
class LossSpec:
    """``name`` (a registry loss) with ``params`` (a dict or sorted (name, value) pairs),
    compared in ``representation`` and ``color``. ``setting`` names it in messages ('loss',
    'feature_loss'; its parameters are ``{setting}_params``). Every module is built with
    ``reduction='sum'`` unless asked otherwise."""

    name: str
    params: Any = ()
    representation: str = "pixels"
    color: str = "rgb"
    setting: str = "loss"

    def __post_init__(self):
        check_choice(self.setting, self.name, tuple(LOSSES))
        params = check_loss_params(self.params, f"{self.setting}_params")
        object.__setattr__(self, "params", params)
        check_choice("representation", self.representation, REPRESENTATIONS)
        check_choice("color", self.color, COLORS)

    @property
    def label(self) -> str:
        """``logcosh (a=10)``, ``adaptive [dct, yuv]``: the loss as a row label."""
        params = ", ".join(f"{k}={v}" for k, v in self.params)
        label = self.name + (f" ({params})" if params else "")
        if not self.in_pixels:
            label += f" [{self.representation}, {self.color}]"
        return label

    @property
    def kwargs(self) -> dict[str, Any]:
        """The parameters as keyword arguments of ``get_loss``."""
        return dict(self.params)

    @property
    def in_pixels(self) -> bool:
        """Whether it compares RGB (or grey) pixels as they are."""
        return self.representation == "pixels" and self.color == "rgb"

    @property
    def likelihood(self) -> bool:
        return self.name in LIKELIHOOD_LOSSES

    @property
    def learns_per_dim(self) -> bool:
        """Whether it learns parameters per dimension (and so needs ``num_dims``)."""
        kwargs = self.kwargs
        return self.name == "adaptive" or (
            self.likelihood and bool(kwargs.get("learn_scale") or kwargs.get("learn_df"))
        )

    def module(self, dims: int | tuple[int, ...], reduction: str = "sum") -> nn.Module:
        """The loss on items whose trailing dimensions are ``dims`` (a count or a shape): one
        learned parameter set per element of ``dims`` where it learns. In pixels only."""
        if not self.in_pixels:
            raise ValueError(
                f"{self.setting} {self.name!r} in {self.representation}/{self.color} compares "
                "whole images: build it with image_module"
            )
        kwargs = self.kwargs
        if self.learns_per_dim:
            kwargs["num_dims"] = dims
        return self._build(lambda: get_loss(self.name, reduction=reduction, **kwargs))

    def image_module(self, image_shape: tuple[int, int, int], reduction: str = "sum") -> nn.Module:
        """The loss comparing C×H×W images of ``image_shape`` in its representation and
        colour, one learned parameter set per pixel or coefficient where it learns.
        ``params`` may hold ``wavelet_levels`` with the wavelet representation."""
        kwargs = self.kwargs
        channels, height, width = image_shape
        levels = kwargs.pop("wavelet_levels", None)
        if levels is not None and self.representation != "wavelet":
            raise ValueError(
                f"{self.setting}_params 'wavelet_levels' applies only to representation 'wavelet'"
            )
        if self.in_pixels:
            return LossSpec(self.name, kwargs, setting=self.setting).module(
                tuple(image_shape), reduction
            )
        if self.name == "adaptive":
            return self._build(
                lambda: AdaptiveImageLoss(
                    (height, width),
                    channels,
                    self.representation,
                    self.color,
                    wavelet_levels=levels,
                    reduction=reduction,
                    **kwargs,
                )
            )
        if self.learns_per_dim:
            kwargs["num_dims"] = tuple(image_shape)
        inner = self._build(lambda: get_loss(self.name, reduction=reduction, **kwargs))
        transform = Representation(
            (height, width), channels, self.representation, self.color, levels
        )
        return RepresentedLoss(transform, inner, likelihood=self.likelihood)

    def with_param(self, parameter: str, value: float) -> LossSpec:
        """This loss with one fixed parameter set to ``value`` (an annealing step);
        ValueError unless ``parameter`` is one of the loss's parameters."""
        allowed = [p for p in loss_parameters(self.name) if p not in ("reduction", "num_dims")]
        if parameter not in allowed:
            raise ValueError(
                f"loss {self.name!r} has no parameter {parameter!r} to anneal; its parameters: "
                f"{', '.join(allowed) or 'none'}"
            )
        return LossSpec(
            self.name,
            {**self.kwargs, parameter: value},
            self.representation,
            self.color,
            self.setting,
        )

    def annealed(
        self, parameter: str, value: float, build: Callable[[LossSpec], nn.Module]
    ) -> nn.Module:
        """``build(self.with_param(parameter, value))``: the kind's loss rebuilt at an
        annealing step. ValueError where the rebuilt loss learns parameters (annealing sets a
        fixed one)."""
        module = build(self.with_param(parameter, value))
        if any(p.requires_grad for p in module.parameters()):
            raise ValueError(
                f"loss {self.name!r} learns its parameters here: annealing {parameter!r} needs a "
                "fixed one (learn_alpha/learn_scale false)"
            )
        return module

    def _build(self, make: Callable[[], nn.Module]) -> nn.Module:
        try:
            return make()
        except TypeError as error:  # e.g. a string where a number belongs
            raise ValueError(
                f"{self.setting} {self.name!r}: bad {self.setting}_params: {error}"
            ) from None
