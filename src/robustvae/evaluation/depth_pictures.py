"""The picture a disparity net is judged by: per scene, the left view, the predicted and the
true disparity on one colour scale, and the absolute error where the truth is known."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def disparity_figure(rows: list, max_disparity: float, path: Path) -> Path:
    """``rows``: (scene, predicted disparity H×W) pairs; one row of four panels each."""
    fig, axes = plt.subplots(len(rows), 4, figsize=(13, 2.9 * len(rows)), squeeze=False)
    for (scene, predicted), ax in zip(rows, axes, strict=True):
        truth = scene.disparity
        top = max_disparity if truth is None else float(torch.nan_to_num(truth, 0).max())
        ax[0].imshow(scene.left.permute(1, 2, 0).numpy())
        ax[0].set_title(f"{scene.name}: left view", fontsize=9)
        ax[1].imshow(predicted.numpy(), cmap="magma", vmin=0, vmax=top)
        ax[1].set_title("predicted disparity", fontsize=9)
        if truth is not None:
            ax[2].imshow(truth.numpy(), cmap="magma", vmin=0, vmax=top)
            error = (predicted - truth).abs()
            shown = ax[3].imshow(error.numpy(), cmap="viridis", vmin=0, vmax=max(top / 4, 1))
            known = torch.isfinite(error)
            ax[3].set_title(f"|error|, mean {error[known].mean():.2f} px", fontsize=9)
            fig.colorbar(shown, ax=ax[3], fraction=0.046)
        ax[2].set_title("ground truth" if truth is not None else "no ground truth", fontsize=9)
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def colour_disparity(disparity: torch.Tensor, max_disparity: float, path: Path, bar: bool) -> Path:
    """A disparity map (H×W, pixels) as a PNG a browser shows: the magma colour map over
    [0, max_disparity] at the map's own size, or with ``bar`` a figure with a colour bar."""
    from robustvae.files import atomic_write

    values = disparity.numpy()
    if not bar:
        rgba = plt.get_cmap("magma")(values / max_disparity, bytes=True)
        from PIL import Image

        image = Image.fromarray(rgba[..., :3])
        return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    height, width = values.shape
    fig, ax = plt.subplots(figsize=(max(3.0, width / 100 + 1.2), max(2.0, height / 100)))
    shown = ax.imshow(values, cmap="magma", vmin=0, vmax=max_disparity)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(shown, ax=ax, fraction=0.046, label="disparity (px)")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path
