"""Losses by name: the one place that maps the names used in the CLI, experiment files, result
tables and reports to loss classes."""

from __future__ import annotations

import inspect

from torch import nn

from robustvae.losses.adaptive import AdaptiveLoss
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

# Negative log-likelihoods of a normalised distribution: their sum is a likelihood (an ELBO's
# reconstruction term in nats), and in a representation they take log|det J| of the transform.
LIKELIHOOD_LOSSES = ("normal", "laplace", "cauchy", "student_t", "adaptive")

LOSSES: dict[str, type[nn.Module]] = {
    "l2": SquaredL2Loss,
    "l1": L1Loss,
    "logcosh": LogCoshLoss,
    "general": GeneralLoss,
    "adaptive": AdaptiveLoss,
    "normal": NormalNLL,
    "laplace": LaplaceNLL,
    "cauchy": CauchyNLL,
    "student_t": StudentTNLL,
}


def loss_parameters(name: str) -> list[str]:
    """The keyword parameters that ``get_loss(name, ...)`` accepts."""
    cls = _lookup(name)
    names = []
    for klass in cls.__mro__:
        if klass in (nn.Module, object):
            break
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.name != "self" and p.kind is not p.VAR_KEYWORD and p.name not in names:
                names.append(p.name)
    return names


def get_loss(name: str, **params) -> nn.Module:
    """Build the loss registered as ``name`` with keyword ``params``.

    Raises ValueError for an unknown name or parameter (naming the valid ones) and for an
    invalid parameter value.
    """
    cls = _lookup(name)
    unknown = sorted(set(params) - set(loss_parameters(name)))
    if unknown:
        raise ValueError(
            f"loss {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(loss_parameters(name))}"
        )
    missing = [p for p in _required_parameters(cls) if p not in params]
    if missing:
        raise ValueError(f"loss {name!r} needs the parameter {', '.join(map(repr, missing))}")
    return cls(**params)


def _required_parameters(cls: type[nn.Module]) -> list[str]:
    signature = inspect.signature(cls.__init__)
    return [
        p.name
        for p in signature.parameters.values()
        if p.name != "self"
        and p.default is p.empty
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def _lookup(name: str) -> type[nn.Module]:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}") from None
