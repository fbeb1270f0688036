"""A tiny version of every preset in experiments/ runs end to end: the preset's own grid,
losses, representations and overrides, on small data files the test makes (MNIST and
Fashion-MNIST as IDX, CelebA as JPEGs), one epoch of a narrow net."""

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_picture
from PIL import Image
from small_data import make_idx_dir

from robustvae.experiments import load_experiment, run_experiment
from robustvae.losses import fused

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*differs from the official:robustvae.data.DataWarning"
)


@pytest.fixture(autouse=True)
def _private_cache_and_eager_losses(tmp_path, monkeypatch):
    """A private data cache; losses run eagerly (a cold torch.compile per loss costs more
    than these runs: the fused path has its own tests)."""
    monkeypatch.setenv("ROBUSTVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(fused._state, "enabled", False)


def _celeba(root: Path, n: int = 12) -> Path:
    """``n`` 178×218 JPEGs and a partition file: the first two thirds train, the rest test."""
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(pixels, "RGB").save(folder / name, quality=90)
        lines.append(f"{name} {0 if i < 2 * n // 3 else 2}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


# preset → (cells it runs: a glob on cell ids, width, cells expected)
TINY = {
    "paper-mnist": ("kind=vae,arch=conv,*", 0.05, 3),
    "quick-mnist5k": ("kind=wae,arch=mlp,seed=0,*", 0.05, 3),
    "fashion-mnist": ("arch=mlp,seed=0,*", 0.05, 4),
    "paper-celeba": ("kind=wae,*", 1 / 32, 3),
    "barron-vae": ("representation=wavelet,*", 1 / 32, 4),
    "barron-vae-fashion": ("representation=dct,seed=0,*", 0.05, 4),
    "sweep-a-lambda": ("*", 0.02, 13),
    "vaegan-similarity": ("seed=0,*", 0.05, 6),
    "vaegan-dynamics": ("seed=0,loss=none-nonsat-g0.1-dlr1e-5", 0.05, 1),
    "vaegan-gamma": ("dataset=mnist-5k,seed=0,loss=*-0.1", 0.05, 1),
    "text-removal": ("seed=0,*", 0.05, 4),
    "text-removal-long": ("loss=l[12]", 0.05, 2),
    "stereo-depth": ("input=correlation,seed=0,loss=l1", 0.05, 1),
    "stereo-depth-mono": ("seed=0,loss=annealed*", 0.05, 1),
    "gan-discriminator-rate": ("seed=0,loss=dlr3e-4", 0.05, 1),
    "vaegan-instance-noise": ("seed=0,loss=noise0.4", 0.05, 1),
    "vaegan-real-weight": ("seed=0,loss=real2", 0.05, 1),
}


def test_every_preset_has_a_tiny_version():
    assert set(TINY) == {p.stem for p in EXPERIMENTS.glob("*.toml")}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_version_of_preset_runs(name, tmp_path):
    only, width, expected = TINY[name]
    preset = EXPERIMENTS / f"{name}.toml"
    dataset = load_experiment(preset).cells[0].config.dataset
    settings = {"epochs": 1, "width": width}
    if dataset in ("mnist", "fashion-mnist"):
        make_idx_dir(tmp_path / "data", n_train=60, n_test=40)
        settings.update(data_root=str(tmp_path / "data"), batch_size=20)
    elif dataset == "celeba":
        settings.update(data_root=str(_celeba(tmp_path / "data")), batch_size=4)
    elif dataset == "photos":  # the restorer: a folder of photo crops instead of the photos
        from small_data import photo_folder as _folder

        settings.update(dataset="folder", data_root=str(_folder(tmp_path)), crop=32, batch_size=4)
    elif dataset == "mnist-5k":  # the bundled 4,000 training images: 8 steps an epoch
        settings.update(batch_size=500)
    elif dataset == "motorcycle":  # the real scenes; bigger crops, few steps
        settings.update(crop=64, max_disparity=64, batch_size=64)
    out = tmp_path / "out"
    experiment = run_experiment(
        preset,
        out,
        progress=lambda *_: None,
        settings=settings,
        only=only,
        evaluate={"images": 20, "samples": 20, "fid": False},
    )
    assert len(experiment.cells) == expected
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["cell"] for r in rows] == [c.id for c in experiment.cells]
    report = (out / "report.md").read_text()
    if dataset == "photos":
        assert all(0 < float(r["ssim"]) <= 1 for r in rows)
        for cell in experiment.cells:
            assert_picture(out / "cells" / cell.id / "restorations.png")
        assert "ssim-scatter-all.png" in report and "examples-all.png" in report
        assert_picture(out / "report" / "ssim-scatter-all.png")
        return
    if dataset == "motorcycle":
        assert all(float(r["avg"]) > 0 and float(r["fit_avg"]) > 0 for r in rows)
        for cell in experiment.cells:
            assert_picture(out / "cells" / cell.id / "disparity.png")
        assert "annealed" in report
        return
    assert all(np.isfinite(float(r["sharpness_generated"])) for r in rows)
    if name.startswith("barron"):  # likelihoods: the negative ELBO in bits per dimension
        assert all(np.isfinite(float(r["negative_elbo_bits_per_dim"])) for r in rows)
    for cell in experiment.cells:
        assert_picture(out / "cells" / cell.id / "samples.png")
        assert f"(cells/{cell.id}/samples.png)" in report
    if name == "sweep-a-lambda":
        assert "## Sweeps" in report and list((out / "report").glob("sweep-*.png"))
    if name.startswith("vaegan"):  # the game's health: the discriminator's update share
        shares = [float(r["discriminator_share"]) for r in rows if r.get("discriminator_share")]
        assert shares and all(0 <= share <= 1 for share in shares)
        assert "D's update share" in (out / "results.md").read_text()
