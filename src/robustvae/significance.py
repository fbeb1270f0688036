"""Whether a difference from the baseline is real: paired statistics over shared seeds, and over
shared test images.

- ``paired_difference``: the mean of the per-seed differences (row − baseline, same seed) and
  its Student-t 95% interval; "resolved" where the interval excludes 0.
- ``signed_rank``: Wilcoxon's signed-rank test over per-image differences (two-sided p).
- ``better_on``: how many images the row scores better on than the baseline (the points on
  one side of Fig. 10's diagonal), with the Clopper–Pearson 95% interval of that share.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import NamedTuple

LEVEL = 0.95


class Paired(NamedTuple):
    mean: float
    low: float | None  # None: fewer than two pairs, no interval
    high: float | None
    pairs: int

    @property
    def resolved(self) -> bool:
        """The interval excludes 0."""
        return self.low is not None and (self.low > 0 or self.high < 0)


def paired_difference(values: Sequence[float], baseline: Sequence[float]) -> Paired:
    """Mean of ``values[i] − baseline[i]`` with its two-sided Student-t interval at ``LEVEL``."""
    from scipy.stats import t

    if len(values) != len(baseline) or not values:
        raise ValueError(f"need pairs, got {len(values)} values and {len(baseline)} baselines")
    diffs = [a - b for a, b in zip(values, baseline, strict=True)]
    if not all(math.isfinite(d) for d in diffs):
        raise ValueError(f"paired differences must be finite, got {diffs}")
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return Paired(mean, None, None, 1)
    half = t.ppf((1 + LEVEL) / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return Paired(mean, mean - half, mean + half, len(diffs))


def signed_rank(values: Sequence[float], baseline: Sequence[float]) -> float | None:
    """Two-sided p of Wilcoxon's signed-rank test on the pairs (None when every pair ties,
    or with fewer than two pairs)."""
    from scipy.stats import wilcoxon

    diffs = [a - b for a, b in zip(values, baseline, strict=True)]
    if len(diffs) < 2 or not any(diffs):
        return None
    return float(wilcoxon(diffs).pvalue)


class Count(NamedTuple):
    better: int
    images: int
    low: float  # Clopper–Pearson interval of better / images
    high: float
    ties: int = 0


def better_on(values: Sequence[float], baseline: Sequence[float], higher_is_better: bool) -> Count:
    """The pairs where ``values`` beats ``baseline`` (a tie is not better; ties are counted)."""
    from scipy.stats import binomtest

    pairs = list(zip(values, baseline, strict=True))
    better = sum((a > b) if higher_is_better else (a < b) for a, b in pairs)
    ties = sum(a == b for a, b in pairs)
    n = len(pairs)
    if not n:
        raise ValueError("better_on needs at least one pair")
    interval = binomtest(better, n).proportion_ci(LEVEL, method="exact")
    return Count(better, n, float(interval.low), float(interval.high), ties)


def _number(value: float) -> str:
    """Three significant digits, without an exponent between 1e-4 and 1e5."""
    if abs(value) >= 100:
        return f"{value:+.0f}"
    return f"{value:+.3g}" if abs(value) >= 1e-4 or value == 0 else f"{value:+.2e}"


def paired_text(paired: Paired) -> str:
    """``−0.081 [−0.15, −0.012] resolved``; ``+3.2 (1 seed: no interval)``."""
    if paired.low is None:
        return f"{_number(paired.mean)} (1 seed: no interval)"
    text = f"{_number(paired.mean)} [{_number(paired.low)}, {_number(paired.high)}]"
    return text + (" resolved" if paired.resolved else "")


def per_image_text(p: float | None, count: Count) -> str:
    """``p = 0.002; better on 9/10 [0.55, 1.00]`` (and ``, 1 tied`` where images tie)."""
    if count.images < 2:
        return f"{count.images} image: no test"
    test = "every image ties" if p is None else f"p = {p:.2g}"
    ties = f", {count.ties} tied" if count.ties else ""
    share = f"[{count.low:.2f}, {count.high:.2f}]"
    return f"{test}; better on {count.better}/{count.images}{ties} {share}"
