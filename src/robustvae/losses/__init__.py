"""Robust reconstruction losses: functional forms, modules, a registry by name, losses in an
image representation, and ``LossSpec``, a loss as a run's settings name it."""

from robustvae.losses import functional
from robustvae.losses.adaptive import AdaptiveLoss
from robustvae.losses.fused import set_compile
from robustvae.losses.modules import (
    CauchyNLL,
    GeneralLoss,
    L1Loss,
    LaplaceNLL,
    LogCoshLoss,
    NormalNLL,
    SquaredL2Loss,
    StudentTNLL,
)
from robustvae.losses.partition import log_partition
from robustvae.losses.registry import LIKELIHOOD_LOSSES, LOSSES, get_loss, loss_parameters
from robustvae.losses.represented import AdaptiveImageLoss, RepresentedLoss
from robustvae.losses.sampling import sample_general
from robustvae.losses.spec import LossSpec

__all__ = [
    "functional",
    "AdaptiveLoss",
    "AdaptiveImageLoss",
    "RepresentedLoss",
    "LossSpec",
    "CauchyNLL",
    "GeneralLoss",
    "L1Loss",
    "LaplaceNLL",
    "LogCoshLoss",
    "NormalNLL",
    "SquaredL2Loss",
    "StudentTNLL",
    "LOSSES",
    "LIKELIHOOD_LOSSES",
    "get_loss",
    "loss_parameters",
    "log_partition",
    "sample_general",
    "set_compile",
]
