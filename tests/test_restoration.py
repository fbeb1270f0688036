"""The restore kind: corruptions, the U-Net's reach and tiled inference, the data, training,
and the ``robustvae restore`` commands on real photos and on bad images."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from small_data import photo_folder as _folder

from robustvae.cli import main
from robustvae.data.image_file import read_image, write_image
from robustvae.restoration.corruption import corrupt, draw_levels, text_overlay
from robustvae.restoration.data import PHOTOS_TEST, PHOTOS_TRAIN, load_images, tile
from robustvae.restoration.model import Restorer, RestorerConfig
from robustvae.tiling import MARGIN, run_tiled
from robustvae.unet import MULTIPLE, RECEPTIVE_RADIUS, UNet


def _photo(size=(96, 128)) -> torch.Tensor:
    import skimage.data

    a = skimage.data.astronaut()[100 : 100 + size[0], 150 : 150 + size[1]]
    return torch.from_numpy(a.transpose(2, 0, 1).copy()).float() / 255


def _generator(seed=0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- corruptions


@pytest.mark.parametrize("noise,level", [("text", 0.3), ("gaussian", 0.1), ("poisson", 20.0)])
def test_corruption_is_a_function_of_the_generator(noise, level):
    images = _photo()[None].repeat(3, 1, 1, 1)
    levels = torch.full((3,), level)
    first = corrupt(images, noise, levels, _generator(1))
    assert torch.equal(first, corrupt(images, noise, levels, _generator(1)))
    assert not torch.equal(first, corrupt(images, noise, levels, _generator(2)))
    assert not torch.equal(first[0], first[1])  # each image its own draw


@pytest.mark.parametrize("banked", [False, True])
@pytest.mark.parametrize("coverage", [0.05, 0.25, 0.5])
@pytest.mark.parametrize("size", [(64, 64), (96, 128), (300, 200)])
def test_text_covers_the_requested_fraction(coverage, size, banked):
    image = torch.rand(3, *size, generator=_generator(3))
    for seed in range(3):
        out, mask = text_overlay(image, coverage, np.random.default_rng(seed), banked)
        measured = mask.float().mean().item()
        assert coverage - 1e-9 <= measured <= coverage + 0.011, (size, seed, measured)
        changed = (out != image).any(0)
        assert torch.equal(changed & ~mask, torch.zeros_like(mask))  # text only under the mask
        assert changed.float().mean() > 0.9 * measured  # text pixels took a new colour


@pytest.mark.parametrize("banked", [False, True])
@pytest.mark.parametrize("shape", [(3, 1, 1), (1, 2, 3)])
def test_text_on_a_tiny_image_ends_with_the_fewest_pixels_that_reach_the_coverage(shape, banked):
    import threading

    results = []

    def overlay_all():
        for coverage in (0.05, 0.25, 0.5, 1.0):
            for seed in range(5):
                image = torch.rand(shape, generator=_generator(seed))
                out, mask = text_overlay(image, coverage, np.random.default_rng(seed), banked)
                results.append((coverage, image, out, mask))

    worker = threading.Thread(target=overlay_all, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "text_overlay did not finish on a tiny image"
    assert len(results) == 20
    pixels = shape[1] * shape[2]
    for coverage, image, out, mask in results:
        assert int(mask.sum()) == math.ceil(coverage * pixels), (coverage, mask)
        assert torch.equal((out != image).any(0) & ~mask, torch.zeros_like(mask))


def test_a_string_is_placed_as_if_drawn_on_the_whole_image():
    """The bitmap-and-place path draws exactly what Pillow draws on a canvas of the image's
    size at that position, so freshly rendered test text is what it always was."""
    from PIL import Image, ImageDraw

    from robustvae.restoration import corruption

    for seed in range(40):
        height, width = (64, 64) if seed % 2 else (37, 250)
        placed = corruption._string_mask(height, width, np.random.default_rng(seed), False)
        rng = np.random.default_rng(seed)
        faces = corruption.fonts()
        face = faces[int(rng.integers(len(faces)))]
        font = corruption._font(face, int(rng.integers(*corruption.FONT_SIZES)) + 1)
        text = corruption._random_text(rng)
        canvas = Image.new("1", (width, height), 0)
        draw = ImageDraw.Draw(canvas)
        draw.fontmode = "1"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = int(rng.integers(-(right - left) // 2, max(width - (right - left) // 2, 1)))
        y = int(rng.integers(-(bottom - top) // 2, max(height - (bottom - top) // 2, 1)))
        draw.text((x - left, y - top), text, fill=1, font=font)
        assert np.array_equal(placed, np.asarray(canvas, dtype=bool)), seed


def test_the_text_bank_is_fixed_varied_and_drawn_like_fresh_text():
    from robustvae.restoration.corruption import FONT_SIZES, TEXT_BANK_SIZE, text_bank

    bank = text_bank()
    assert len(bank) == TEXT_BANK_SIZE and bank is text_bank()
    assert len({b.tobytes() + bytes(b.shape) for b in bank}) > 0.99 * len(bank)
    heights = np.array([b.shape[0] for b in bank])
    assert heights.min() >= 4 and heights.max() <= 2 * FONT_SIZES[1]
    # ink per string: the bank's mean against 400 fresh strings', within 10%
    rng = np.random.default_rng(1)
    from robustvae.restoration.corruption import _random_string

    fresh = np.mean([_random_string(rng).sum() for _ in range(400)])
    assert abs(np.mean([b.sum() for b in bank]) / fresh - 1) < 0.1
    # banked text differs between generators and is a function of its generator
    image = torch.rand(3, 64, 64, generator=_generator())
    a = text_overlay(image, 0.3, np.random.default_rng(5), banked=True)[1]
    assert torch.equal(a, text_overlay(image, 0.3, np.random.default_rng(5), banked=True)[1])
    assert not torch.equal(a, text_overlay(image, 0.3, np.random.default_rng(6), banked=True)[1])


def test_training_text_comes_from_the_bank_and_test_text_is_rendered():
    tiles = (torch.rand(2, 3, 128, 128, generator=_generator()) * 255).to(torch.uint8)
    banked = Restorer(RestorerConfig(width=0.25), (3, 64, 64))
    rendered = Restorer(RestorerConfig(width=0.25, text_bank=False), (3, 64, 64))
    train_a = banked.batch_transform({"clean": tiles}, _generator(1))
    train_b = rendered.batch_transform({"clean": tiles}, _generator(1))
    assert torch.equal(train_a["clean"], train_b["clean"])
    assert not torch.equal(train_a["input"], train_b["input"])
    banked.eval()
    rendered.eval()
    test_a = banked.batch_transform({"clean": tiles}, _generator(1))
    test_b = rendered.batch_transform({"clean": tiles}, _generator(1))
    assert torch.equal(test_a["input"], test_b["input"])
    with pytest.raises(ValueError, match="text_bank must be true or false"):
        RestorerConfig(text_bank="yes")


def test_text_on_grey_images_is_grey_and_zero_coverage_is_identity():
    image = torch.rand(1, 64, 64, generator=_generator())
    out, mask = text_overlay(image, 0.3, np.random.default_rng(0))
    assert out.shape == (1, 64, 64) and mask.float().mean() >= 0.3
    same, empty = text_overlay(image, 0.0, np.random.default_rng(0))
    assert torch.equal(same, image) and not empty.any()


def test_gaussian_noise_has_the_requested_sigma_and_zero_mean():
    images = torch.full((4, 3, 128, 128), 0.5)
    levels = torch.tensor([0.0, 0.05, 0.1, 0.2])
    residual = corrupt(images, "gaussian", levels, _generator()) - images
    for r, sigma in zip(residual, levels.tolist(), strict=True):
        assert abs(r.mean().item()) < 0.004 + 0.01 * sigma
        assert r.std().item() == pytest.approx(sigma, rel=0.02, abs=1e-7)


def test_poisson_noise_has_mean_x_and_variance_x_over_lambda():
    images = torch.full((2, 1, 256, 256), 0.4)
    levels = torch.tensor([10.0, 50.0])
    noisy = corrupt(images, "poisson", levels, _generator())
    for n, lam in zip(noisy, levels.tolist(), strict=True):
        assert n.mean().item() == pytest.approx(0.4, rel=0.01)
        assert n.var().item() == pytest.approx(0.4 / lam, rel=0.03)
        assert torch.allclose(n * lam, (n * lam).round(), atol=1e-4)  # counts / λ


def test_training_levels_are_drawn_from_the_range():
    levels = draw_levels(2000, 0.1, 0.4, _generator())
    assert levels.min() >= 0.1 and levels.max() <= 0.4
    assert levels.mean().item() == pytest.approx(0.25, abs=0.01)


def test_bad_noise_settings_are_clear_errors():
    with pytest.raises(ValueError, match="noise must be one of"):
        RestorerConfig(noise="salt")
    with pytest.raises(
        ValueError, match=r"noise_max \(coverage of text noise\) must be in \[0, 1\]"
    ):
        RestorerConfig(noise_max=1.5)
    with pytest.raises(ValueError, match="λ of poisson noise"):
        RestorerConfig(noise="poisson", noise_min=0)
    with pytest.raises(ValueError, match="noise_min must be ≤ noise_max"):
        RestorerConfig(noise_min=0.4, noise_max=0.2)
    with pytest.raises(ValueError, match="crop must be a multiple of 32"):
        RestorerConfig(crop=48)
    with pytest.raises(ValueError, match=r"crop must be a multiple of 32 in \[32, 4096\], got 41"):
        RestorerConfig(crop=4128)
    with pytest.raises(ValueError, match="noise_max must be a finite number, got an integer of 4"):
        RestorerConfig(noise="poisson", noise_max=10**400)
    assert RestorerConfig(crop=4096).crop == 4096
    with pytest.raises(ValueError, match="yuv' needs 3-channel"):
        Restorer(RestorerConfig(color="yuv"), (1, 64, 64))


@pytest.mark.parametrize(
    "noise,level,message",
    [
        ("poisson", "1e300", "--level (λ of poisson noise) must be in (0, 1e+06], got 1e+300"),
        ("gaussian", "inf", "--level (σ of gaussian noise) must be in [0, 1], got inf"),
        ("gaussian", "5", "--level (σ of gaussian noise) must be in [0, 1], got 5.0"),
        ("text", "1.5", "--level (coverage of text noise) must be in [0, 1], got 1.5"),
        ("poisson", "0", "--level (λ of poisson noise) must be in (0, 1e+06], got 0.0"),
    ],
)
def test_corrupt_refuses_a_level_out_of_bounds_before_reading(
    tmp_path, capsys, noise, level, message
):
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.new("RGB", (8, 8), (90, 120, 150)).save(source)
    assert main(["restore", "corrupt", source, out, "--noise", noise, "--level", level]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


# ----------------------------------------------------------------------------- the U-Net


def test_unet_keeps_the_shape_and_refuses_sides_off_the_grid():
    net = UNet(3, 0.25)
    assert net(torch.rand(2, 3, 64, 96)).shape == (2, 3, 64, 96)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 64, 80))
    full = UNet(3, 1.0)
    assert full.enc0.out_channels == 48 and full.dec[0][0].out_channels == 96
    assert full.top[0].out_channels == 64 and full.top[2].out_channels == 32


def test_an_output_pixel_sees_no_further_than_the_receptive_radius():
    torch.manual_seed(1)
    net = UNet(1, 0.125).double()
    size = 448
    x = torch.rand(1, 1, size, size, dtype=torch.float64)
    centre = size // 2
    base = net(x)[0, 0, centre, centre]
    far = x.clone()
    reach = RECEPTIVE_RADIUS + 1
    outside = torch.ones(size, size, dtype=torch.bool)
    outside[centre - reach + 1 : centre + reach, centre - reach + 1 : centre + reach] = False
    far[0, 0][outside] = torch.rand(int(outside.sum()), dtype=torch.float64)
    assert net(far)[0, 0, centre, centre] == base
    near = x.clone()
    near[0, 0, centre - 20, centre + 20] += 1.0  # within reach: the output moves
    assert net(near)[0, 0, centre, centre] != base


@pytest.mark.parametrize("shape", [(3, 200, 300), (1, 97, 450)])
def test_tiled_restoration_equals_one_pass(shape):
    net = UNet(shape[0], 0.25).eval()
    image = torch.rand(shape, generator=_generator())
    whole = run_tiled(net, image)
    tiled = run_tiled(net, image, tile=64)
    assert whole.shape == shape
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5)
    bare = run_tiled(net, image, tile=64, margin=0)  # without context tile edges show
    assert (bare - whole).abs().max() > 1e-3
    assert MARGIN >= RECEPTIVE_RADIUS and MARGIN % MULTIPLE == 0


def test_inference_runs_one_pass_up_to_the_pixel_limit_and_tiles_beyond(monkeypatch):
    """``infer``, the image-to-image kinds' one inference path: the evaluators and the CLI
    agree on when to tile (above ONE_PASS_PIXELS pixels), and tiling changes no output."""
    from robustvae import tiling

    calls = []

    def net(batch):
        calls.append(tuple(batch.shape[-2:]))
        return batch * 2

    image = torch.rand(1, 96, 160)
    assert torch.equal(tiling.infer(net, image, tile=64), image * 2) and calls == [(96, 160)]
    monkeypatch.setattr(tiling, "ONE_PASS_PIXELS", 96 * 160 - 1)
    calls.clear()
    assert torch.equal(tiling.infer(net, image, tile=64), image * 2) and len(calls) > 1
    calls.clear()
    tiling.infer(net, image, tile=None)  # never tiled
    assert calls == [(96, 160)]


# ----------------------------------------------------------------------------- data


def test_the_bundled_photos_are_split_by_image():
    assert not set(PHOTOS_TRAIN) & set(PHOTOS_TEST)
    test = load_images("photos", "test")
    assert [item.name for item in test] == list(PHOTOS_TEST)
    for item in test:
        assert item.image.shape[0] == 3 and max(item.image.shape[1:]) <= 640
        assert 0 <= item.image.min() and item.image.max() <= 1 and item.image.std() > 0.05


def test_tiles_cover_each_image_to_its_edges():
    images = load_images("photos", "test")[:2]
    tiles = tile(images, 128, 64)
    assert tiles.tiles.dtype == torch.uint8 and tiles.item_shape == (3, 128, 128)
    _, h, w = images[0].image.shape
    per_row = len(range(0, w - 128 + 1, 64)) + ((w - 128) % 64 > 0)
    last = (images[0].image[:, :128, w - 128 :] * 255).round().to(torch.uint8)
    assert torch.equal(tiles.tiles[per_row - 1], last)


def test_an_image_smaller_than_a_tile_is_named():
    from robustvae.restoration.data import NamedImage

    with pytest.raises(ValueError, match=r"tiny: image is 40×30, smaller than a 128×128 tile"):
        tile([NamedImage("tiny", torch.rand(3, 30, 40))], 128, 64)


# ----------------------------------------------------------------------------- training


def test_a_few_steps_of_noise2noise_lower_the_loss():
    torch.manual_seed(0)
    task = Restorer(RestorerConfig(width=0.25, loss="logcosh", loss_params={"a": 10}), (3, 64, 64))
    clean = (_photo((128, 128))[None].repeat(4, 1, 1, 1) * 255).to(torch.uint8)
    batch = task.batch_transform({"clean": clean}, _generator(0))
    optimizer = torch.optim.Adam(task.parameters(), 1e-3)
    losses = []
    for _ in range(40):
        loss = task.loss_terms(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_eval_batches_are_fixed_and_targets_never_clean_unless_asked():
    task = Restorer(RestorerConfig(width=0.25), (3, 64, 64))
    tiles = (torch.rand(2, 3, 128, 128, generator=_generator()) * 255).to(torch.uint8)
    task.eval()
    a = task.batch_transform({"clean": tiles}, _generator(1))
    b = task.batch_transform({"clean": tiles}, _generator(2))
    assert torch.equal(a["clean"], b["clean"])  # centred crops
    assert torch.equal(a["clean"][0], tiles[0, :, 32:96, 32:96].float() / 255)
    task.train()
    c = task.batch_transform({"clean": tiles}, _generator(1))
    assert not torch.equal(c["target"], c["clean"]) and not torch.equal(c["input"], c["target"])
    n2c = Restorer(RestorerConfig(width=0.25, clean_targets=True), (3, 64, 64))
    d = n2c.batch_transform({"clean": tiles}, _generator(1))
    assert torch.equal(d["target"], d["clean"])


def test_adaptive_loss_learns_one_alpha_and_scale_per_channel():
    task = Restorer(RestorerConfig(width=0.25, loss="adaptive"), (3, 64, 64))
    adaptive = task.adaptive_loss()
    assert adaptive.alpha().shape == (3,)
    names = {n for n, _ in task.named_parameters()}
    assert any("latent_alpha" in n for n in names)
    clean = (_photo((128, 128))[None].repeat(2, 1, 1, 1) * 255).to(torch.uint8)
    terms = task.loss_terms(task.batch_transform({"clean": clean}, _generator()))
    terms["loss"].backward()
    assert adaptive.latent_alpha.latent.grad.abs().sum() > 0


def test_training_on_a_folder_resumes_bit_for_bit(tmp_path):
    from robustvae.training import RunConfig, train

    root = _folder(tmp_path)
    settings = dict(
        kind="restore",
        dataset="folder",
        data_root=str(root),
        width=0.125,
        crop=32,
        batch_size=4,
        progress=False,
        tensorboard=False,
    )
    whole = train(RunConfig.make(epochs=2, **settings), tmp_path / "whole")
    train(RunConfig.make(epochs=1, **settings), tmp_path / "split")
    resumed = train(RunConfig.make(epochs=2, **settings), tmp_path / "split", resume=True)
    resumed_state = resumed.model.state_dict()
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed_state[name]), name
    assert set(whole.metrics[-1]["test"]) == {"loss", "clean_mse"}


# ----------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny restorer trained for one epoch on a folder of photo crops, with its folder."""
    tmp = tmp_path_factory.mktemp("restore")
    root = _folder(tmp)
    run = tmp / "run"
    status = main(
        ["restore", "train", "--out", run, "--dataset", "folder", "--data-root", root,
         "--width", "0.125", "--crop", "32", "--batch-size", "4", "--epochs", "1",
         "--loss", "l1", "--no-progress", "--no-tensorboard"]
    )  # fmt: skip
    assert status == 0
    return run, root


def test_restore_train_writes_a_run_of_the_restore_kind(trained):
    from conftest import assert_picture

    run, _ = trained
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "restore" and config["dataset"] == "folder" and config["loss"] == "l1"
    assert_picture(run / "restorations.png")


def test_corrupt_is_deterministic_and_apply_keeps_the_size(trained, tmp_path, capsys, monkeypatch):
    from robustvae import tiling

    monkeypatch.setattr(tiling, "ONE_PASS_PIXELS", 0)  # small images in tiles of 32 too
    run, root = trained
    source = sorted(root.iterdir())[0]
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["restore", "corrupt", source, a, "--coverage", "0.3", "--seed", "4"]) == 0
    assert main(["restore", "corrupt", source, b, "--coverage", "0.3", "--seed", "4"]) == 0
    assert a.read_bytes() == b.read_bytes()
    changed = (read_image(a) != read_image(source)).any(0).float().mean().item()
    assert 0.25 < changed <= 0.32
    out = tmp_path / "out"
    assert main(["restore", "apply", run, root, out, "--tile", "32"]) == 0
    for image in root.iterdir():
        restored = read_image(out / image.name)
        assert restored.shape == read_image(image).shape
    pair = tmp_path / "pair" / "r.png"
    assert main(["restore", "apply", run, a, pair, "--before-after"]) == 0
    both = read_image(pair.with_name("r-before-after.png"))
    height, width = read_image(a).shape[-2:]
    assert both.shape[-2:] == (height, 2 * width)
    assert torch.allclose(both[..., :width], read_image(a), atol=1 / 255)  # the input, left
    assert torch.allclose(both[..., width:], read_image(pair), atol=1 / 255)  # restored, right


def test_evaluate_scores_every_run_on_the_same_inputs(trained, tmp_path, capsys):
    import csv

    run, root = trained
    out = tmp_path / "eval"
    assert main(["restore", "evaluate", run, run, "--test", root, "--out", out]) == 0
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    assert len(rows) == len(list(root.iterdir()))
    ssims = [k for k in rows[0] if k.endswith(" ssim")]
    assert len(ssims) == 2  # the same run twice, labelled by its folder name or path
    for row in rows:
        assert row[ssims[0]] == row[ssims[1]]  # same inputs, same model: same score
        assert -1 <= float(row[ssims[0]]) <= 1 and float(row["input_ssim"]) < 1
    summary = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["run"] for r in summary][0] == "input"
    # The same run twice: every image ties, better on none, no signed-rank p.
    assert summary[2]["against"] == summary[1]["run"] and summary[2]["better_on"] == "0"
    assert summary[2]["wilcoxon_p"] == "" and float(summary[2]["better_high"]) < 1
    assert f"better on 0 of {len(rows)} images" in capsys.readouterr().out
    from conftest import assert_picture

    assert_picture(out / "ssim-scatter.png")
    assert_picture(out / "examples.png")


def test_bad_images_get_one_line(trained, tmp_path, capsys):
    run, _ = trained
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    truncated = tmp_path / "truncated.jpg"
    Image.fromarray((_photo().permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:600])
    grey = tmp_path / "grey.png"
    Image.new("L", (64, 64), 100).save(grey)
    for path, message in [
        (garbage, "garbage.png: unreadable image"),
        (truncated, "truncated.jpg: unreadable image"),
        (grey, "grey.png has 1 channel(s), the model in"),
        (tmp_path / "missing.png", "missing.png: no such file"),
    ]:
        capsys.readouterr()
        assert main(["restore", "apply", run, path, tmp_path / "o.png"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_two_images_for_one_output_are_refused_before_any_work(trained, tmp_path, capsys):
    run, _ = trained
    folder = tmp_path / "in"
    folder.mkdir()
    photo = Image.fromarray((_photo().permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    photo.save(folder / "a.png")
    photo.save(folder / "a.jpg")
    out = tmp_path / "out"
    for command in (["restore", "apply", run], ["restore", "corrupt"]):
        capsys.readouterr()
        assert main([*command, folder, out]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert f"{folder / 'a.jpg'} and {folder / 'a.png'} would both be written to" in err
        assert not out.exists()


def test_sixteen_bit_greyscale_is_read_and_written_at_full_precision(tmp_path):
    values = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16 + 3).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    image = read_image(path)
    assert image.shape == (1, 64, 64)
    assert torch.allclose(image[0].double(), torch.from_numpy(values / 65535.0), atol=1e-7)
    out = write_image(tmp_path / "again.png", image, bits=16)
    assert np.array_equal(np.asarray(Image.open(out)), values)


def test_apply_restores_a_sixteen_bit_grey_image_with_a_grey_model(tmp_path):
    from robustvae.training import RunConfig, train

    root = _folder(tmp_path, mode="L")
    settings = dict(kind="restore", dataset="folder", data_root=str(root), width=0.125, crop=32)
    config = RunConfig.make(epochs=1, batch_size=4, progress=False, tensorboard=False, **settings)
    train(config, tmp_path / "grey")
    deep = tmp_path / "deep.png"
    Image.fromarray((np.random.default_rng(0).random((70, 90)) * 65535).astype(np.uint16)).save(
        deep
    )
    assert main(["restore", "apply", tmp_path / "grey", deep, tmp_path / "out.png"]) == 0
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode.startswith("I;16") and out.size == (90, 70)


def test_crops_scored_one_by_one_are_a_centred_grid_of_whole_crops():
    from robustvae.evaluation.restoration import SCORE_CROP, crop_boxes, crop_scores
    from robustvae.metrics.quality import ssim_per_image

    assert SCORE_CROP == 128
    assert crop_boxes(300, 451) == [
        (22, 33),
        (22, 161),
        (22, 289),
        (150, 33),
        (150, 161),
        (150, 289),
    ]
    assert crop_boxes(127, 1000) == []
    photos = load_images("photos", "test")
    assert sum(len(crop_boxes(*p.image.shape[-2:])) for p in photos) >= 100  # Fig. 10's count
    clean = torch.rand(3, 300, 451, generator=_generator(2))
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=_generator())).clamp(0, 1)
    rows = crop_scores(["a", "b"], [noisy, clean], [clean, clean])
    assert [r["name"] for r in rows[:2]] == ["a@22,33", "a@22,161"] and len(rows) == 12
    expected = ssim_per_image(noisy[None, :, 150:278, 289:417], clean[None, :, 150:278, 289:417])
    assert rows[5]["ssim"] == pytest.approx(expected.item(), abs=1e-6)
    assert all(r["ssim"] == pytest.approx(1.0, abs=1e-6) for r in rows[6:])


def test_corrupt_says_which_existing_outputs_it_replaces(tmp_path, capsys):
    source = tmp_path / "in.png"
    Image.fromarray((_photo((64, 64)).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(source)
    out = tmp_path / "out.png"
    assert main(["restore", "corrupt", source, out]) == 0
    assert "replacing" not in capsys.readouterr().err
    assert main(["restore", "corrupt", source, out]) == 0
    assert f"robustvae: replacing 1 existing file: {out}" in capsys.readouterr().err
