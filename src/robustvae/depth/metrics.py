"""The error measures of depth estimation (Eigen et al. 2014, as Zhou et al. and Barron's
Table report them), on valid pixels only:

    AbsRel = mean(|p − g| / g)          SqRel  = mean((p − g)² / g)
    RMS    = sqrt(mean((p − g)²))       logRMS = sqrt(mean((log p − log g)²))
    δ < t  = share of pixels with max(p/g, g/p) < t, for t = 1.25, 1.25², 1.25³
    Avg    = geometric mean of AbsRel, SqRel, RMS, logRMS, 1 − δ<1.25, 1 − δ<1.25², 1 − δ<1.25³

(Avg is the seed table's column: its reproduced baseline gives 0.398, its adaptive row
0.332.) They apply to depth or to disparity maps alike; SqRel and RMS carry the maps' unit.
Sums run in float64.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["METRICS", "average_error", "depth_metrics", "disparity_to_depth", "valid_mask"]

METRICS = ("abs_rel", "sq_rel", "rms", "log_rms", "a1", "a2", "a3", "avg")


def valid_mask(gt: Tensor, low: float = 0.0, high: float = math.inf) -> Tensor:
    """Pixels whose ground truth is known: finite and in (low, high] (unknown is ``+inf``,
    NaN or 0 in the usual formats)."""
    return torch.isfinite(gt) & (gt > low) & (gt <= high)


def average_error(errors: dict) -> float:
    """The seed's Avg: the geometric mean of the four errors and the three 1 − δ."""
    terms = [errors[k] for k in ("abs_rel", "sq_rel", "rms", "log_rms")]
    terms += [1.0 - errors[k] for k in ("a1", "a2", "a3")]
    if any(t <= 0 for t in terms):
        return 0.0
    return math.exp(sum(math.log(t) for t in terms) / len(terms))


def depth_metrics(
    pred: Tensor, gt: Tensor, mask: Tensor | None = None, median_scaling: bool = False
) -> dict[str, float]:
    """The metrics of ``pred`` against ``gt`` (same shape), over ``mask`` (default: where
    ``gt`` is known, ``valid_mask``) and where ``pred`` > 0. ``median_scaling`` first multiplies
    ``pred`` by median(gt)/median(pred), as monocular methods report. Returns a dict with
    ``abs_rel``, ``sq_rel``, ``rms``, ``log_rms``, ``a1``, ``a2``, ``a3``, ``avg`` and
    ``pixels`` (how many were scored)."""
    if pred.shape != gt.shape:
        raise ValueError(
            f"pred and gt must have one shape, got {tuple(pred.shape)} and {tuple(gt.shape)}"
        )
    keep = valid_mask(gt) if mask is None else (mask.bool() & valid_mask(gt))
    p, g = pred.double()[keep], gt.double()[keep]
    positive = p > 0
    p, g = p[positive], g[positive]
    if p.numel() == 0:
        raise ValueError("no valid pixels to score (ground truth unknown everywhere)")
    if median_scaling:
        p = p * (g.median() / p.median())
    ratio = torch.maximum(p / g, g / p)
    out = {
        "abs_rel": ((p - g).abs() / g).mean().item(),
        "sq_rel": ((p - g) ** 2 / g).mean().item(),
        "rms": ((p - g) ** 2).mean().sqrt().item(),
        "log_rms": ((p.log() - g.log()) ** 2).mean().sqrt().item(),
        "a1": (ratio < 1.25).double().mean().item(),
        "a2": (ratio < 1.25**2).double().mean().item(),
        "a3": (ratio < 1.25**3).double().mean().item(),
    }
    out["avg"] = average_error(out)
    out["pixels"] = int(p.numel())
    return out


def disparity_to_depth(
    disparity: Tensor, focal: float, baseline: float, doffs: float = 0.0
) -> Tensor:
    """Depth = focal · baseline / (disparity + doffs) (Middlebury's ``doffs``: the principal
    points' offset; 0 for rectified KITTI). Non-positive disparities give +inf (unknown)."""
    shifted = disparity + doffs
    return torch.where(shifted > 0, focal * baseline / shifted.clamp(min=1e-12), math.inf)
