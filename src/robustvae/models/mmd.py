"""Maximum mean discrepancy with the inverse multiquadric kernel, as WAE-MMD uses it.

Tolstikhin et al. (2018), and their code (``wae.py``, ``mmd_penalty``): for a prior
N(0, σ²·I_d) the kernel is a sum over scales s of

    k_s(x, y) = C_s / (C_s + ‖x - y‖²),    C_s = s · 2·d·σ²,
    s ∈ {0.1, 0.2, 0.5, 1, 2, 5, 10},

(2·d·σ² is the expected ‖x - y‖² of two prior samples) and MMD² is estimated by the unbiased
U-statistic

    MMD²(x, y) = Σ_{i≠j} k(x_i, x_j) / (n(n-1)) + Σ_{i≠j} k(y_i, y_j) / (m(m-1))
                 - 2 Σ_{i,j} k(x_i, y_j) / (n·m),

which is 0 in expectation when both samples come from one distribution, so a single estimate
can be slightly negative.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["IMQ_SCALES", "squared_distances", "imq_kernel", "mmd_imq"]

IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """‖x_i - y_j‖² for x (n×d) and y (m×d), as an n×m matrix (clamped at 0 against rounding)."""
    xx = x.pow(2).sum(1, keepdim=True)
    yy = y.pow(2).sum(1, keepdim=True)
    return (xx + yy.T - 2.0 * (x @ y.T)).clamp_min(0.0)


def imq_kernel(distances: Tensor, base_c: float, scales: Sequence[float] = IMQ_SCALES) -> Tensor:
    """Σ_s C_s / (C_s + D) elementwise over squared distances D, with C_s = s·``base_c``."""
    total = torch.zeros_like(distances)
    for s in scales:
        c = s * base_c
        total = total + c / (c + distances)
    return total


def _off_diagonal_mean(k: Tensor) -> Tensor:
    n = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def mmd_imq(
    x: Tensor, y: Tensor, prior_variance: float = 1.0, scales: Sequence[float] = IMQ_SCALES
) -> Tensor:
    """Unbiased MMD² between samples x (n×d) and y (m×d), n, m ≥ 2, with the multi-scale
    inverse multiquadric kernel for a N(0, ``prior_variance``·I_d) prior (see the module)."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"mmd_imq needs samples shaped (n, d) and (m, d), got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(
            f"the unbiased MMD needs at least 2 samples on each side, got {x.shape[0]} and "
            f"{y.shape[0]} (use batches of 2 or more)"
        )
    if not prior_variance > 0:
        raise ValueError(f"prior_variance must be > 0, got {prior_variance!r}")
    base_c = 2.0 * x.shape[1] * prior_variance
    k_xx = imq_kernel(squared_distances(x, x), base_c, scales)
    k_yy = imq_kernel(squared_distances(y, y), base_c, scales)
    k_xy = imq_kernel(squared_distances(x, y), base_c, scales)
    return _off_diagonal_mean(k_xx) + _off_diagonal_mean(k_yy) - 2.0 * k_xy.mean()
