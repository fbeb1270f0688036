"""Robust reconstruction losses: functional forms, modules, and a registry by name."""

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

__all__ = [
    "functional",
    "AdaptiveLoss",
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
    "set_compile",
]
