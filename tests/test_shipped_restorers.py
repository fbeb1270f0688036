"""Shipped restorers: exported from a run, checked by SHA-256 on load, listed and applied by
``restore apply --model``; and the models this package ships, on photos they never saw."""

from __future__ import annotations

import json

import pytest
import torch

from robustvae.cli import main
from robustvae.data.image_file import read_image
from robustvae.restoration import shipped

ENTRY = {
    "removes": "text",
    "summary": "tiny U-Net for the tests",
    "trained": {"steps": 1},
    "scores": {"input_ssim": 0.5, "ssim": 0.6, "input_psnr": 15.0, "psnr": 16.0},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny restorer trained for one epoch on crops of a photo, and the photo's folder."""
    import skimage.data
    from PIL import Image

    tmp = tmp_path_factory.mktemp("shipped")
    root = tmp / "photos"
    root.mkdir()
    source = skimage.data.coffee()
    for k in range(6):
        Image.fromarray(source[40 * k : 40 * k + 96, 50 * k : 50 * k + 128]).save(root / f"{k}.png")
    status = main(
        ["restore", "train", "--out", tmp / "run", "--dataset", "folder", "--data-root", root,
         "--test-fraction", "0", "--width", "0.125", "--crop", "32", "--batch-size", "4",
         "--epochs", "1", "--ema", "0.9", "--no-progress", "--no-tensorboard"]
    )  # fmt: skip
    assert status == 0
    return tmp / "run", root


@pytest.fixture
def weights(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    monkeypatch.setattr(shipped, "weights_dir", lambda: folder)
    shipped.manifest.cache_clear()
    yield folder
    shipped.manifest.cache_clear()


def test_an_exported_model_holds_the_runs_averaged_weights_and_its_checksum(run, weights):
    from robustvae.training import load_run

    path = shipped.export(run[0], "tiny", ENTRY)
    assert path.parent == weights and path.name == "tiny.safetensors"
    entry = json.loads((weights / "manifest.json").read_text())["tiny"]
    assert entry["removes"] == "text" and len(entry["sha256"]) == 64
    config, task = shipped.load("tiny")
    _, from_run = load_run(run[0])
    assert config.kind == "restore" and config.ema == 0.9
    for name, value in from_run.state_dict().items():
        assert torch.equal(value, task.state_dict()[name]), name
    assert "tiny" in shipped.listing() and "0.500 → 0.600" in shipped.listing()
    assert "| `tiny` | text |" in shipped.shipped_table()


def test_apply_with_a_shipped_model_equals_apply_with_its_run(run, weights, tmp_path, capsys):
    shipped.export(run[0], "tiny", ENTRY)
    image = sorted(run[1].iterdir())[0]
    by_run, by_model = tmp_path / "run.png", tmp_path / "model.png"
    assert main(["restore", "apply", run[0], image, by_run]) == 0
    assert main(["restore", "apply", "--model", "tiny", image, by_model]) == 0
    assert torch.equal(read_image(by_run), read_image(by_model))
    capsys.readouterr()
    assert main(["restore", "apply", "--model"]) == 0
    assert capsys.readouterr().out.startswith("tiny")


def test_a_damaged_or_unknown_model_is_one_line(run, weights, tmp_path, capsys):
    path = shipped.export(run[0], "tiny", ENTRY)
    image = sorted(run[1].iterdir())[0]
    with pytest.raises(ValueError, match="no shipped restorer named 'tekst'; shipped: tiny"):
        shipped.load("tekst")
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    assert main(["restore", "apply", "--model", "tiny", image, tmp_path / "o.png"]) == 2
    err = capsys.readouterr().err
    assert "SHA-256" in err and "reinstall" in err and len(err.strip().splitlines()) == 1
    path.unlink()
    with pytest.raises(ValueError, match="missing"):
        shipped.load("tiny")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "tiny", "a.png"], "with --model, give IN and OUT; got 1 path"),
        (["run", "a.png"], "give RUN IN OUT"),
        (["--model", "", "a.png", "b.png"], "--model needs a NAME"),
    ],
)
def test_apply_says_which_paths_it_needs(args, message, weights, capsys):
    assert main(["restore", "apply", *args]) == 2
    assert message in capsys.readouterr().err


def test_with_nothing_shipped_the_list_says_so(weights, capsys):
    assert main(["restore", "apply", "--model"]) == 0
    assert "no restorer is shipped" in capsys.readouterr().out


# ----------------------------------------------------------------------------- what ships


def test_each_shipped_model_loads_and_restores_a_photo_it_never_saw():
    """Every model in the package's manifest: its checksum holds, and on a centre crop of a
    held-out photo corrupted as its manifest says it was scored, it raises SSIM."""
    from robustvae.evaluation.restoration import corrupt_test_images, restore_images
    from robustvae.metrics.quality import ssim_per_image
    from robustvae.restoration.data import PHOTOS_TEST, load_images

    entries = shipped.manifest()
    assert set(entries) >= {"text", "gaussian"}, "the package ships a text and a gaussian model"
    photos = load_images("photos", "test")
    assert {p.name for p in photos} == set(PHOTOS_TEST)
    photo = next(p for p in photos if p.name == "baboon")
    crop = type(photo)("baboon", photo.image[:, 96:352, 96:352].contiguous())
    for name in entries:
        config, task = shipped.load(name)
        noise, level = config.model.noise, config.model.levels()[2]
        (noisy,) = corrupt_test_images([crop], noise, level)
        (restored,) = restore_images(task, [noisy], "cpu")
        before = ssim_per_image(noisy[None].clamp(0, 1), crop.image[None]).item()
        after = ssim_per_image(restored[None], crop.image[None]).item()
        assert after > before + 0.05, (name, before, after)
