"""The pictures a restorer is judged by (the log-cosh paper's Appendix D):

- ``crops_grid``: corrupted test crops, their restorations and the clean crops (per run);
- ``scatter``: Fig. 10, one point per test image, the SSIM of one loss against another's, the
  diagonal, and the number of points above it (red: below);
- ``example_grid``: Fig. 11, a clean image, its corrupted input and each loss's restoration,
  with 1 − SSIM (of the whole image) under each.

"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from robustvae.image_grid import save_grid  # noqa: E402

CROP = 160


def _centre(image: torch.Tensor, size: int) -> torch.Tensor:
    _, height, width = image.shape
    side = min(size, height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[:, top : top + side, left : left + side]


def crops_grid(inputs, outputs, cleans, path: str | Path) -> Path:
    """Three rows: centre crops of the inputs, of the restorations, of the clean images."""
    side = min(min(x.shape[-2:]) for x in cleans + [torch.zeros(1, CROP, CROP)])
    rows = [
        torch.stack([_centre(x.clamp(0, 1), side) for x in group])
        for group in (inputs, outputs, cleans)
    ]
    return save_grid(torch.cat(rows), path, nrow=len(cleans))


def scatter(ax, xs: list[float], ys: list[float], x_label: str, y_label: str) -> int:
    """Fig. 10's panel on ``ax``: returns the number of points above the diagonal. Its title
    gives that count with its Clopper–Pearson 95% interval and Wilcoxon's signed-rank p."""
    from robustvae.significance import better_on, signed_rank

    above = [y > x for x, y in zip(xs, ys, strict=True)]
    colours = ["tab:blue" if a else "tab:red" for a in above]
    ax.scatter(xs, ys, c=colours, s=18, zorder=3)
    low = min(xs + ys) - 0.02
    high = min(1.0, max(xs + ys) + 0.02)
    ax.plot([low, high], [low, high], color="tab:green", lw=1, zorder=2)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel(f"SSIM ({x_label})")
    ax.set_ylabel(f"SSIM ({y_label})")
    count, p = better_on(ys, xs, higher_is_better=True), signed_rank(ys, xs)
    ax.set_title(
        f"{y_label} above the diagonal: {count.better} of {count.images} "
        f"[{count.low:.2f}, {count.high:.2f}]\n"
        + ("every image ties" if p is None else f"Wilcoxon signed-rank p = {p:.2g}"),
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    return sum(above)


def scatter_figure(per_loss: dict[str, dict[str, float]], focus: str, path: Path) -> dict:
    """One panel per other loss: ``focus``'s SSIM (y) against it (x), image by image.
    ``per_loss``: label → {image name: SSIM}. Returns {other label: points above}."""
    others = [label for label in per_loss if label != focus]
    if not others:
        raise ValueError("a scatter plot needs two runs")
    fig, axes = plt.subplots(1, len(others), figsize=(4.2 * len(others), 4.4), squeeze=False)
    counts = {}
    names = list(per_loss[focus])
    for ax, other in zip(axes[0], others, strict=True):
        xs = [per_loss[other][n] for n in names]
        ys = [per_loss[focus][n] for n in names]
        counts[other] = scatter(ax, xs, ys, other, focus)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return counts


def example_grid(
    clean: torch.Tensor,
    noisy: torch.Tensor,
    restored: dict[str, torch.Tensor],
    one_minus_ssim: dict[str, float],
    path: Path,
    crop: int = 256,
) -> Path:
    """Fig. 11: clean, input and each restoration (centre crops of ``crop`` pixels), with
    1 − SSIM of the whole image under each (``one_minus_ssim`` has 'input' and each label)."""
    panels = [("clean target", clean, None), ("input", noisy, one_minus_ssim["input"])]
    panels += [(label, image, one_minus_ssim[label]) for label, image in restored.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
    for ax, (title, image, score) in zip(axes[0], panels, strict=True):
        picture = _centre(image.clamp(0, 1), crop).permute(1, 2, 0).numpy()
        ax.imshow(picture.squeeze(-1) if picture.shape[-1] == 1 else picture, cmap="gray")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if score is not None:
            ax.set_xlabel(f"1 − SSIM {score:.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def focus_loss(labels: list[str]) -> str:
    """The loss whose SSIM goes on the y axis: logcosh when present (the paper's), else the
    first label."""
    return next((label for label in labels if label.startswith("logcosh")), labels[0])
