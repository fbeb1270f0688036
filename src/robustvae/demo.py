"""The main job on bundled data: a VAE (MLP) trained with ``l2`` and one with ``logcosh``
(a = 100, as Chen et al.) on mnist-5k, and their samples, reconstructions and interpolations
side by side in one picture, with the test metrics of each."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from robustvae.evaluation import draw_run  # noqa: E402
from robustvae.training import RunConfig, RunDir, train  # noqa: E402

LOSSES = (("l2", {}), ("logcosh", {"a": 100.0}))
PANELS = ("samples", "reconstructions", "interpolations")


def run_demo(out_dir: str | Path, epochs: int = 30, progress: bool = True) -> Path:
    """Train (or resume, or reuse) both runs under ``out_dir``; return the comparison PNG."""
    out_dir = Path(out_dir)
    summaries = {}
    for loss, params in LOSSES:
        config = RunConfig.make(
            dataset="mnist-5k", loss=loss, loss_params=params, epochs=epochs, progress=progress
        )
        run = out_dir / loss

        def report(line: str, loss: str = loss) -> None:
            print(f"{loss}: {line}", flush=True)

        result = train(config, run, resume=RunDir(run).has_checkpoint(), report=report)
        metrics = result.metrics[-1]["test"]
        draw_run(run)
        summaries[loss] = metrics
    return _compose(out_dir, summaries)


def _compose(out_dir: Path, summaries: dict[str, dict]) -> Path:
    fig, axes = plt.subplots(
        len(PANELS),
        len(LOSSES),
        figsize=(4.2 * len(LOSSES), 12.5),
        gridspec_kw={"height_ratios": [1, 1, 0.9]},
    )
    for col, (loss, _) in enumerate(LOSSES):
        m = summaries[loss]
        for row, panel in enumerate(PANELS):
            ax = axes[row, col]
            ax.imshow(Image.open(out_dir / loss / f"{panel}.png"), cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(panel, fontsize=12)
        axes[0, col].set_title(
            f"{loss}{' (a = 100)' if loss == 'logcosh' else ''}\n"
            f"test squared L2 {m['sq_l2']:.2f}, KL {m['kl']:.2f}",
            fontsize=12,
        )
    fig.suptitle("VAE (MLP, latent 8) on mnist-5k: l2 against logcosh", fontsize=14)
    fig.tight_layout()
    path = out_dir / "comparison.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
