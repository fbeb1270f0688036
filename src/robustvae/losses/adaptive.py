"""Barron's adaptive loss: the NLL of the general distribution with a shape α and a scale c
learned per output dimension, jointly with the model (Barron, Sec. 3 and the VAE experiment).

    α = (α_hi - α_lo)·sigmoid(ℓ_α) + α_lo,    c = softplus(ℓ_c) + c_lo

The loss is -log p = ρ(x, α, c) + log c + log Z(α): a negative log-likelihood, so it can be
(and on well-fit data usually is) negative. Without the log c + log Z(α) terms the model would
simply drive α and c to whatever makes ρ smallest; with them it must fit a density.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from robustvae.losses import functional as LF
from robustvae.losses.adaptive_kernel import AdaptiveRhoSum
from robustvae.losses.fused import ReducedLoss
from robustvae.losses.modules import Loss, check_flag
from robustvae.losses.parameters import BoundedParameter, PositiveParameter, as_shape
from robustvae.losses.partition import ALPHA_MAX, log_partition
from robustvae.losses.sampling import sample_general

__all__ = ["AdaptiveLoss", "find_adaptive"]


#: In training mode the loss checks its α every this many calls and warns (once per place in
#: the code, Python's default) when most of it sits at a bound: in a user's own loop too.
CHECK_EVERY = 1000


def _adaptive_values(input: Tensor, target: Tensor, log_norm: Tensor, *terms: Tensor) -> Tensor:
    return LF.general_per_dim(input - target, *terms) + log_norm


_ADAPTIVE = ReducedLoss(_adaptive_values)


class AdaptiveLoss(Loss):
    """General-distribution NLL with one learned α and c per dimension.

    Args:
        num_dims: number of dimensions (an int) or their shape (e.g. ``(3, 64, 64)``); the
            input's trailing dimensions must match it, leading ones are the batch. An int D
            may also be the values per item (flattened) or the channels (dim 1); where D is
            more than one dimension of the items (32 on N×3×32×32) it is refused: pass a
            shape.
        alpha_lo, alpha_hi: open range of α, within [0, 8] (the partition table's range).
            The default (0.001, 1.999) spans Cauchy-like to almost-normal.
        scale_lo: lower bound of c (> 0 keeps the NLL bounded below).
        alpha_init: initial α (default: the middle of the range); scale_init: initial c
            (default None: taken from the data, the median absolute residual of the first
            batch the loss sees in training mode, averaged over DDP processes; at c = 1 on
            pixels in [0, 1] the loss would start, and often stay, L2-like).
        learn_alpha, learn_scale: False fixes α or c at its initial value.
        reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
    """

    def __init__(
        self,
        num_dims: int | tuple[int, ...],
        alpha_lo: float = 0.001,
        alpha_hi: float = 1.999,
        scale_lo: float = 1e-5,
        alpha_init: float | None = None,
        scale_init: float | None = None,
        learn_alpha: bool = True,
        learn_scale: bool = True,
        reduction: str = "mean",
    ):
        super().__init__(reduction)
        LF.check_number("alpha_lo", alpha_lo, 0.0, ALPHA_MAX)
        LF.check_number("alpha_hi", alpha_hi, alpha_lo, ALPHA_MAX, lo_open=True)
        if alpha_init is None:
            alpha_init = (alpha_lo + alpha_hi) / 2
        LF.check_number("alpha_init", alpha_init, alpha_lo, alpha_hi, lo_open=True, hi_open=True)
        LF.check_positive("scale_lo", scale_lo)
        if scale_init is not None:
            LF.check_number("scale_init", scale_init, scale_lo, LF.SCALE_RANGE[1], lo_open=True)
        check_flag("learn_alpha", learn_alpha)
        check_flag("learn_scale", learn_scale)
        self.dims = as_shape(num_dims)
        if not self.dims:
            raise ValueError("num_dims must be given (an int or a shape)")
        self.given_as_int = not isinstance(num_dims, tuple | list)
        self.latent_alpha = BoundedParameter(
            self.dims, alpha_lo, alpha_hi, alpha_init, learn_alpha, name="alpha"
        )
        placeholder = max(1.0, 2 * scale_lo)  # until the first batch sets it
        self.latent_scale = PositiveParameter(
            self.dims,
            scale_lo,
            placeholder if scale_init is None else scale_init,
            learn_scale,
            name="scale",
        )
        # Whether c still waits for the first training batch (checkpointed: a resumed run
        # keeps the scale it started from).
        self.register_buffer("scale_pending", torch.tensor(scale_init is None))
        self._pending = scale_init is None  # its host copy: no device sync per call
        self._calls = 0

    def alpha(self) -> Tensor:
        """Current α, shape ``num_dims``."""
        return self.latent_alpha()

    def scale(self) -> Tensor:
        """Current c, shape ``num_dims``."""
        return self.latent_scale()

    def values(self, input: Tensor, target: Tensor, reduction: str) -> Tensor:
        """The NLL of ``input - target``. Their trailing dimensions must be ``num_dims``; or,
        for an int ``num_dims`` D, the input may be N×… with D values per item (flattened,
        e.g. N×1×28×28 for D = 784) or N×D×H×W… (one α and c per channel). With
        ``reduction='none'`` the values come back in the input's shape."""
        LF.check_same_shape(input, target)
        if self.training and self.latent_alpha.learnable:
            self._calls += 1
            if self._calls % CHECK_EVERY == 0:
                self.warn_if_at_bounds()
        shape, layout = input.shape, "as is"
        n = len(self.dims)
        if self.given_as_int and input.dim() >= 3 and list(shape[1:]).count(self.dims[0]) > 1:
            d, item = self.dims[0], tuple(shape[1:])
            raise ValueError(
                f"AdaptiveLoss(num_dims={d}) on a batch of {item} items is ambiguous: {d} is "
                f"more than one of their dimensions. Pass num_dims={math.prod(item)} (one α "
                f"and c per value), num_dims={item[0]} (per channel) or num_dims={item[-n:]} "
                f"(per {d}-long last dimension)"
            )
        if tuple(shape[-n:]) != self.dims:
            if n == 1 and input.dim() >= 2 and math.prod(shape[1:]) == self.dims[0]:
                input, target, layout = input.flatten(1), target.flatten(1), "flat"
            elif n == 1 and input.dim() >= 3 and shape[1] == self.dims[0]:
                input, target = input.movedim(1, -1), target.movedim(1, -1)
                layout = "channels"
            else:
                raise ValueError(
                    f"AdaptiveLoss has {self.dims} dimensions: input must end with them, hold "
                    f"that many values per item, or that many channels (dim 1); got shape "
                    f"{tuple(shape)}"
                )
        input, target = LF.computable(input, target)
        if self.training and self._pending:
            self._scale_from(input, target)
        if reduction != "none" and torch.is_grad_enabled():
            # ρ and its gradients in one pass (adaptive_kernel); log c + log Z(α) per dimension.
            # α and c come from their latents in float64 for float32 inputs, so that a
            # gradient past float32's range (∂ρ/∂α = 5e38 at α = 7.9, c = 2e-5, x = −3) still
            # reaches a latent whose own gradient is within it (5.4e37).
            wide = torch.float64 if input.dtype == torch.float32 else input.dtype
            alpha, scale = self.latent_alpha(wide), self.latent_scale(wide)
            log_norm = scale.log() + log_partition(alpha)
            n = input.numel()
            weight = 1.0 / n if reduction == "mean" else 1.0
            rho = AdaptiveRhoSum.apply(input, target, alpha, scale, weight)
            return (rho + log_norm.sum() * ((n // log_norm.numel()) * weight)).to(input.dtype)
        alpha = self.alpha().to(input.dtype)
        scale = self.scale().to(input.dtype)
        log_norm = scale.log() + log_partition(alpha)
        terms = LF.barron_terms(alpha, scale, input)
        value = _ADAPTIVE(reduction, input, target, log_norm, *terms)
        if reduction != "none" or layout == "as is":
            return value
        return value.reshape(shape) if layout == "flat" else value.movedim(-1, 1)

    @torch.no_grad()
    def _scale_from(self, input: Tensor, target: Tensor) -> None:
        """c = the median absolute residual of this batch (the mean of the processes' medians
        under DDP), at least twice its lower bound; then c learns (or stays) from there."""
        median = (input - target).abs().median().to(torch.float64)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(median)
            median /= torch.distributed.get_world_size()
        lo = self.latent_scale.lo
        self.latent_scale.fill_(max(float(median), 2 * lo, 1e-30))
        self.scale_pending.fill_(False)
        self._pending = False

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A checkpoint from before scale_pending existed started from a given scale.
        state_dict.setdefault(prefix + "scale_pending", torch.tensor(False))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._pending = bool(self.scale_pending)

    def fraction_at_bounds(self, tolerance: float = 1e-3) -> float:
        """Share of dimensions whose α lies within ``tolerance``·range of either bound."""
        alpha = self.alpha().detach()
        band = tolerance * (self.latent_alpha.hi - self.latent_alpha.lo)
        at = (alpha < self.latent_alpha.lo + band) | (alpha > self.latent_alpha.hi - band)
        return at.float().mean().item()

    def warn_if_at_bounds(self, tolerance: float = 1e-3, share: float = 0.5) -> bool:
        """Warn (and return True) when more than ``share`` of the α sit at a bound of their
        range: the data want α outside it, so widen ``alpha_lo``/``alpha_hi``."""
        fraction = self.fraction_at_bounds(tolerance)
        if fraction > share:
            warnings.warn(
                f"{fraction:.0%} of the adaptive loss's alpha sit at a bound of "
                f"({self.latent_alpha.lo}, {self.latent_alpha.hi}); consider a wider range",
                RuntimeWarning,
                stacklevel=2,
            )
            return True
        return False

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of the distribution it has learned: n × ``num_dims``, each dimension
        from the general distribution with its current α and c (``sample_general``)."""
        alpha, scale = self.alpha().detach().cpu(), self.scale().detach().cpu()
        return sample_general(alpha, scale, (n, *self.dims), generator, alpha.dtype)

    def statistics(self) -> dict[str, float]:
        """Median, min and max of the current α and c over the dimensions (logged per epoch)."""
        out = {}
        for name, value in (("alpha", self.alpha()), ("scale", self.scale())):
            flat = value.detach().double().flatten()
            out[f"{name}_median"] = flat.median().item()
            out[f"{name}_min"] = flat.min().item()
            out[f"{name}_max"] = flat.max().item()
        return out

    def extra_repr(self) -> str:
        return f"num_dims={self.dims}, " + super().extra_repr()


def find_adaptive(module) -> AdaptiveLoss | None:
    """The first ``AdaptiveLoss`` among ``module``'s submodules (itself included), or None."""
    return next((m for m in module.modules() if isinstance(m, AdaptiveLoss)), None)
