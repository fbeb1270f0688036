"""The model's reconstruction loss, built from the registry by name, optionally compared in an
image representation (DCT, wavelet; RGB or YUV).

Every loss here is summed over the batch and all dimensions (``reduction='sum'``); the model
divides by the batch size. Losses with learned per-pixel parameters get ``num_dims`` = the
image shape: always the adaptive loss; the NLLs ('normal', 'laplace', 'cauchy', 'student_t')
when ``learn_scale=True`` (or ``learn_df=True``) is asked, else their scale is one fixed number.
"""

from __future__ import annotations

from torch import nn

from robustvae.losses.registry import LIKELIHOOD_LOSSES, get_loss
from robustvae.representations import AdaptiveImageLoss, Representation, RepresentedLoss

__all__ = ["build_reconstruction_loss"]


def build_reconstruction_loss(
    loss: str,
    params: dict,
    image_shape: tuple[int, int, int],
    representation: str = "pixels",
    color: str = "rgb",
) -> nn.Module:
    """The reconstruction loss ``loss`` (a registry name) with keyword ``params``, comparing
    images of ``image_shape`` in ``representation`` and ``color``, with ``reduction='sum'``.

    ``params`` may hold ``wavelet_levels`` when ``representation='wavelet'``.
    """
    kwargs = dict(params)
    channels, height, width = image_shape
    plain = representation == "pixels" and color == "rgb"
    levels = kwargs.pop("wavelet_levels", None)
    if levels is not None and representation != "wavelet":
        raise ValueError("loss_params 'wavelet_levels' applies only to representation 'wavelet'")
    try:
        if loss == "adaptive":
            if plain:
                return get_loss("adaptive", num_dims=tuple(image_shape), reduction="sum", **kwargs)
            return AdaptiveImageLoss(
                (height, width),
                channels,
                representation,
                color,
                wavelet_levels=levels,
                reduction="sum",
                **kwargs,
            )
        if loss in LIKELIHOOD_LOSSES and (kwargs.get("learn_scale") or kwargs.get("learn_df")):
            kwargs["num_dims"] = tuple(image_shape)
        module = get_loss(loss, reduction="sum", **kwargs)
        if plain:
            return module
        transform = Representation((height, width), channels, representation, color, levels)
        return RepresentedLoss(transform, module, likelihood=loss in LIKELIHOOD_LOSSES)
    except TypeError as error:  # e.g. a string where a number belongs
        raise ValueError(f"loss {loss!r}: bad loss_params: {error}") from None
