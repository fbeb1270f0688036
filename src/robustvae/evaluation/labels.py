"""Row labels for runs shown side by side (the restore and depth CLIs' comparisons)."""

from __future__ import annotations

from pathlib import Path


def run_label(config) -> str:
    """A run's loss as a row label: ``logcosh (a=10)``, ``adaptive [dct, yuv]``, with its
    annealing (``general (alpha=2.0, scale=0.01), alpha=2:0 linear``) and ``N2C`` for a
    restorer trained on clean targets."""
    label = config.model.loss_spec().label
    if config.anneal:
        label += f", {config.anneal} {config.anneal_shape}"
    return label + (" N2C" if config.model.to_dict().get("clean_targets") else "")


def unique_labels(labels: list[str], run_dirs: list) -> list[str]:
    """Row labels for runs compared side by side: their loss labels, else their folder names,
    else their paths; repeats numbered (the same run twice)."""
    for candidate in (labels, [Path(r).name for r in run_dirs], [str(r) for r in run_dirs]):
        if len(set(candidate)) == len(candidate):
            return candidate
    seen: dict[str, int] = {}
    out = []
    for label in map(str, run_dirs):
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out
