"""The depth kind: warping, smoothness, the metrics (and the seed table's Avg), stereo data in
every layout, a few training steps, the annealing schedule, and ``robustvae depth``."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image
from small_data import stereo_window as _pair_files
from small_data import write_pfm as _write_pfm

from robustvae.cli import main
from robustvae.depth.data import (
    StereoScene,
    load_folder,
    load_scene,
    read_disparity,
    stereo_tiles,
)
from robustvae.depth.metrics import average_error, depth_metrics, disparity_to_depth, valid_mask
from robustvae.depth.model import DepthConfig, DepthTask, correlation
from robustvae.depth.warp import edge_aware_smoothness, warp_right_to_left
from robustvae.training.schedule import Anneal, parse_anneal

# ----------------------------------------------------------------------------- warping


def test_a_known_shift_warps_back_exactly_and_borders_repeat_the_edge():
    torch.manual_seed(0)
    left = torch.rand(2, 3, 16, 40)
    shift = 5
    right = torch.zeros_like(left)  # left[y, x] = right[y, x − 5]
    right[..., : 40 - shift] = left[..., shift:]
    disparity = torch.full((2, 1, 16, 40), float(shift))
    warped = warp_right_to_left(right, disparity)
    torch.testing.assert_close(warped[..., shift:], left[..., shift:], rtol=0, atol=1e-5)
    # columns whose match falls left of the right view take its first column
    torch.testing.assert_close(warped[..., :shift], right[..., :1].expand(-1, -1, -1, shift))


def test_a_wider_right_crop_holds_every_match():
    torch.manual_seed(1)
    image = torch.rand(1, 3, 8, 60)
    margin, d = 12, 7.0  # the left crop is columns 20..39, the right crop 8..39
    left = image[..., 20 + 0 : 40]
    right_view = torch.roll(image, -int(d), -1)  # right[x] = image[x + d]: left[x] = right[x − d]
    right = right_view[..., 20 - margin : 40]
    warped = warp_right_to_left(right, torch.full((1, 1, 8, 20), d), offset=margin)
    torch.testing.assert_close(warped, left, rtol=0, atol=1e-5)


def test_fractional_disparity_interpolates_linearly():
    right = torch.arange(10.0).view(1, 1, 1, 10).expand(1, 1, 2, 10).contiguous()
    warped = warp_right_to_left(right, torch.full((1, 1, 2, 10), 2.5))
    torch.testing.assert_close(warped[0, 0, 0, 3:], torch.arange(3.0, 10.0) - 2.5)


def test_smoothness_is_zero_for_constant_disparity_and_forgives_edges():
    image = torch.zeros(1, 3, 8, 8)
    image[..., 4:] = 1.0  # an edge between columns 3 and 4
    flat = torch.full((1, 1, 8, 8), 3.0)
    assert edge_aware_smoothness(flat, image).item() == 0.0
    step_at_edge = flat.clone()
    step_at_edge[..., 4:] = 6.0
    step_elsewhere = flat.clone()
    step_elsewhere[..., 2:] = 6.0
    assert edge_aware_smoothness(step_at_edge, image) < edge_aware_smoothness(step_elsewhere, image)


# ----------------------------------------------------------------------------- metrics


def test_metrics_against_hand_computed_values():
    pred, gt = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([2.0, 2.0, 2.0])
    m = depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["sq_rel"] == pytest.approx((0.5 + 0 + 2) / 3)
    assert m["rms"] == pytest.approx(math.sqrt(5 / 3))
    assert m["log_rms"] == pytest.approx(math.sqrt(2 * math.log(2) ** 2 / 3))
    assert (m["a1"], m["a2"], m["a3"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert m["pixels"] == 3
    assert depth_metrics(pred, gt, median_scaling=True)["abs_rel"] == pytest.approx(0.5)


def _avg_range(row: dict, digits: float = 0.0005) -> tuple[float, float]:
    """The Avg over every value the row's 3-digit roundings stand for (errors raise the Avg,
    accuracies lower it)."""
    errors, accuracies = ("abs_rel", "sq_rel", "rms", "log_rms"), ("a1", "a2", "a3")
    low = {**{k: row[k] - digits for k in errors}, **{k: row[k] + digits for k in accuracies}}
    high = {**{k: row[k] + digits for k in errors}, **{k: row[k] - digits for k in accuracies}}
    return average_error(low), average_error(high)


KEYS = ("abs_rel", "sq_rel", "rms", "log_rms", "a1", "a2", "a3")


@pytest.mark.parametrize(
    "values,printed",
    [  # the seed table's "Baseline reproduced" and "Ours, adaptive" rows
        ((0.208, 2.773, 7.085, 0.286, 0.726, 0.895, 0.953), 0.398),
        ((0.181, 2.144, 6.454, 0.254, 0.766, 0.916, 0.965), 0.332),
    ],
)
def test_avg_reproduces_the_seed_tables_column(values, printed):
    row = dict(zip(KEYS, values, strict=True))
    assert average_error(row) == pytest.approx(printed, abs=0.001)
    low, high = _avg_range(row)  # the printed Avg was computed from unrounded values
    assert low <= printed + 0.0005 and printed - 0.0005 <= high
    assert high - low < 0.003


def test_unknown_ground_truth_is_masked_whatever_its_encoding():
    gt = torch.tensor([2.0, math.inf, 0.0, math.nan, 4.0])
    pred = torch.tensor([2.0, 100.0, 100.0, 100.0, 2.0])
    assert valid_mask(gt).tolist() == [True, False, False, False, True]
    m = depth_metrics(pred, gt)
    assert m["pixels"] == 2 and m["abs_rel"] == pytest.approx(0.25)
    assert depth_metrics(pred, gt, mask=torch.tensor([1, 1, 1, 1, 0]))["abs_rel"] == 0.0
    with pytest.raises(ValueError, match="no valid pixels"):
        depth_metrics(pred, torch.full((5,), math.inf))
    assert valid_mask(torch.tensor([50.0, 150.0]), 0, 128).tolist() == [True, False]


def test_disparity_to_depth():
    depth = disparity_to_depth(torch.tensor([10.0, 0.0, -3.0]), focal=100.0, baseline=0.5)
    assert depth[0].item() == pytest.approx(5.0) and math.isinf(depth[1]) and math.isinf(depth[2])


# ----------------------------------------------------------------------------- data


@pytest.mark.parametrize("name", ["motorcycle", "aloe"])
def test_bundled_scenes_warp_into_each_other_with_their_ground_truth(name):
    scene = load_scene(name)
    assert scene.left.shape == scene.right.shape and scene.left.shape[0] == 3
    truth = scene.disparity
    known = torch.isfinite(truth)
    assert 0.9 < known.float().mean() < 0.98 and truth[known].min() > 5
    assert truth[known].max() < 75  # both scenes span the same range of disparities
    warped = warp_right_to_left(scene.right[None], torch.nan_to_num(truth)[None, None])[0]
    before = (scene.left - scene.right).mean(0).abs()[known].mean() * 255
    after = (scene.left - warped).mean(0).abs()[known].mean() * 255
    assert before > 25 and after < 10, (before, after)


def test_stereo_tiles_keep_the_right_view_reaching_further_left():
    scene = load_scene("motorcycle")
    tiles = stereo_tiles([scene], 128, 64, 32)
    assert tiles.left.shape[1:] == (3, 128, 128) and tiles.right.shape[1:] == (3, 128, 160)
    # the second tile of the first row starts at column 64: its right tile at column 32
    expected = (scene.right[:, :128, 32:192] * 255).round().to(torch.uint8)
    assert torch.equal(tiles.right[1], expected)
    # the first tile's right view is the image's first column repeated on the left
    assert torch.equal(tiles.right[0, :, :, 0], tiles.right[0, :, :, 31])


@pytest.mark.parametrize("layout", ["kitti", "middlebury", "plain"])
def test_stereo_folders_load_in_every_layout(tmp_path, layout):
    left, right, truth = _pair_files()
    if layout == "kitti":
        for d in ("image_2", "image_3", "disp_occ_0"):
            (tmp_path / d).mkdir()
        Image.fromarray(left).save(tmp_path / "image_2" / "000000_10.png")
        Image.fromarray(right).save(tmp_path / "image_3" / "000000_10.png")
        encoded = np.where(np.isfinite(truth), np.rint(truth * 256), 0).astype(np.uint16)
        Image.fromarray(encoded).save(tmp_path / "disp_occ_0" / "000000_10.png")
    elif layout == "middlebury":
        scene = tmp_path / "Motorcycle-perfect"
        scene.mkdir()
        Image.fromarray(left).save(scene / "im0.png")
        Image.fromarray(right).save(scene / "im1.png")
        _write_pfm(scene / "disp0.pfm", truth)
    else:
        for d in ("left", "right"):
            (tmp_path / d).mkdir()
        Image.fromarray(left).save(tmp_path / "left" / "a.png")
        Image.fromarray(right).save(tmp_path / "right" / "a.png")
    (scene,) = load_folder(tmp_path)
    assert scene.left.shape == (3, 96, 160)
    if layout == "plain":
        assert scene.disparity is None
        return
    known = np.isfinite(truth)
    got = scene.disparity.numpy()
    assert np.array_equal(np.isfinite(got), known)
    tolerance = 1 / 512 if layout == "kitti" else 0
    assert np.abs(got[known] - truth[known]).max() <= tolerance


def test_bad_stereo_input_is_one_clear_line(tmp_path):
    with pytest.raises(ValueError, match="no stereo pairs found"):
        load_folder(tmp_path)
    bad = tmp_path / "x.pfm"
    bad.write_bytes(b"P6\n1 1\n255\n")
    with pytest.raises(ValueError, match="not a PFM file"):
        read_disparity(bad)
    with pytest.raises(ValueError, match="left is"):
        StereoScene("s", torch.rand(3, 4, 4), torch.rand(3, 4, 5))


def _png_header_only(path, width, height):
    """A PNG whose header claims ``width``×``height`` 8-bit grey pixels, with no pixel data."""
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def test_a_disparity_png_must_be_sixteen_bit_and_of_a_safe_size(tmp_path):
    eight_bit = tmp_path / "eight.png"
    Image.fromarray(np.full((4, 6), 4, np.uint8)).save(eight_bit)
    with pytest.raises(ValueError) as caught:
        read_disparity(eight_bit)
    message = str(caught.value)
    assert message.startswith(f"{eight_bit}: a disparity PNG must be 16-bit greyscale (KITTI")
    assert "'L'" in message and "PFM" in message and len(message.splitlines()) == 1
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 30000, 30000)
    with pytest.raises(ValueError) as caught:
        read_disparity(bomb)
    message = str(caught.value)
    assert message.startswith(f"{bomb}: too many pixels to decode safely")
    assert len(message.splitlines()) == 1
    sixteen_bit = tmp_path / "sixteen.png"
    Image.fromarray(np.full((4, 6), 4 * 256, np.uint16)).save(sixteen_bit)
    assert torch.equal(read_disparity(sixteen_bit), torch.full((4, 6), 4.0))


# ----------------------------------------------------------------------------- training


def _crops(n=4):
    task = DepthTask(DepthConfig(width=0.25, crop=64, max_disparity=64), (3, 64, 64))
    tiles = stereo_tiles([load_scene("motorcycle")], 128, 128, 64)
    batch = {k: v[6 : 6 + n] for k, v in tiles.tensors.items()}
    return task, task.batch_transform(batch, torch.Generator().manual_seed(0))


def test_a_few_steps_lower_the_photometric_loss():
    torch.manual_seed(0)
    task, batch = _crops()
    optimizer = torch.optim.Adam(task.parameters(), 1e-3)
    first = None
    for _ in range(40):
        terms = task.loss_terms(batch)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        first = first if first is not None else terms["photometric"].item()
    assert task.loss_terms(batch)["photometric"].item() < 0.8 * first


def test_crops_match_between_the_views_and_disparity_stays_in_range():
    task, batch = _crops()
    margin = batch["right"].shape[-1] - batch["left"].shape[-1]
    assert margin == 64 and batch["left"].shape[-1] == 64
    disparity = task.disparity(batch["left"], batch["right"], margin)
    assert disparity.min() >= 0 and disparity.max() <= 64
    terms = task.loss_terms(batch)
    assert set(terms) == {"loss", "photometric", "smoothness", "gt_epe", "gt_known"}
    assert 0 < terms["gt_epe"] < 64


def test_the_general_loss_is_weighted_by_its_scale_and_adaptive_is_per_channel():
    config = DepthConfig(loss="general", loss_params={"alpha": 1.0, "scale": 0.01})
    assert config.loss_weight() == 0.01
    task = DepthTask(DepthConfig(loss="adaptive", loss_params={"learn_scale": False}), (3, 1, 1))
    assert task.per_channel and task.adaptive_loss().alpha().shape == (3,)
    assert not task.adaptive_loss().latent_scale.latent.requires_grad
    with pytest.raises(ValueError, match="RGB pairs"):
        DepthTask(DepthConfig(), (1, 64, 64))
    with pytest.raises(ValueError, match="crop must be a multiple of 32"):
        DepthConfig(crop=100)


@pytest.mark.parametrize(
    "setting,value,message",
    [
        ("--max-disparity", "100000000", "max_disparity must be an int in [1, 1024], got 1000"),
        ("--max-disparity", "1" + "0" * 400, "max_disparity must be an int in [1, 1024], got an "
         "integer of 401 digits"),
        ("--crop", "4128", "crop must be a multiple of 32 in [32, 4096], got 4128"),
        ("--crop", "1" + "0" * 400, "crop must be a multiple of 32 in [32, 4096], got an integer "
         "of 401 digits"),
        ("--width", "65", "width must be a number in (0, 64], got 65"),
    ],
)  # fmt: skip
def test_size_settings_beyond_their_bounds_are_one_line_before_training(
    tmp_path, capsys, setting, value, message
):
    run = tmp_path / "run"
    assert main(["depth", "train", "--out", run, setting, value]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not run.exists()
    config = DepthConfig(max_disparity=1024, crop=4096, width=64)  # the bounds themselves
    assert (config.max_disparity, config.crop, config.width) == (1024, 4096, 64.0)


def test_the_correlation_peaks_at_the_true_shift():
    generator = torch.Generator().manual_seed(0)
    left = torch.randn(2, 8, 16, 40, generator=generator)
    right = torch.randn(2, 8, 16, 40 + 24, generator=generator)
    right[..., 24 - 12 : 24 - 12 + 40] = left  # right[x + margin − 12] = left[x]: disparity 12
    volume = correlation(left, right, 24, range(0, 24, 4))
    assert volume.shape == (2, 6, 16, 40)
    assert (volume.mean((2, 3)).argmax(1) == 3).all()  # the shift of 12: the 4th channel
    assert torch.allclose(volume[:, 3], left.square().mean(1))
    with pytest.raises(ValueError, match="margin of 20"):
        correlation(left, right[..., 8:], 16, range(0, 24, 4))


def test_the_correlation_input_learns_its_features_and_tiles_exactly():
    from robustvae.evaluation.depth import margin
    from robustvae.tiling import run_tiled

    torch.manual_seed(0)
    config = DepthConfig(width=0.125, crop=64, max_disparity=64, input="correlation")
    task = DepthTask(config, (3, 64, 64))
    assert config.input_channels() == 3 + 16 and task.reach() == 189 + 64 + 3
    tiles = stereo_tiles([load_scene("motorcycle")], 128, 128, 64)
    batch = task.batch_transform(
        {k: v[6:8] for k, v in tiles.tensors.items()}, torch.Generator().manual_seed(0)
    )
    task.loss_terms(batch)["loss"].backward()
    assert task.features[0].weight.grad.abs().sum() > 0  # the photometric loss trains them
    pair = torch.rand(6, 64, 640)
    with torch.no_grad():
        whole = task(pair[None])[0]
    tiled = run_tiled(task, pair, tile=64, margin=margin(task))
    assert torch.allclose(whole, tiled, atol=1e-5)


# ----------------------------------------------------------------------------- annealing


def test_anneal_schedules_reach_both_ends():
    linear = Anneal("alpha", 2.0, 0.0, "linear")
    assert [linear.value(e, 5) for e in range(5)] == [2.0, 1.5, 1.0, 0.5, 0.0]
    cosine = Anneal("alpha", 2.0, 0.0, "cosine")
    values = [cosine.value(e, 5) for e in range(5)]
    assert values[0] == 2.0 and values[-1] == 0.0 and values[2] == pytest.approx(1.0)
    assert values[1] > 1.5 and values[3] < 0.5  # slow at both ends
    assert Anneal("a", 1.0, 3.0).value(0, 1) == 3.0  # one epoch: the end value
    assert parse_anneal("alpha = 2 : -1e-3") == Anneal("alpha", 2.0, -0.001)
    for bad in ("alpha", "alpha=2", "=2:0", "alpha=x:0"):
        with pytest.raises(ValueError, match="NAME=START:END"):
            parse_anneal(bad)
    with pytest.raises(ValueError, match="anneal_shape"):
        parse_anneal("alpha=2:0", "step")


def test_the_trainer_anneals_a_loss_parameter_every_epoch_and_on_load(tmp_path):
    from robustvae.training import RunConfig, load_run, train

    config = RunConfig.make(
        kind="vae",
        loss="general",
        loss_params={"alpha": 2.0, "scale": 0.1},
        anneal="alpha=2:0",
        epochs=3,
        progress=False,
        tensorboard=False,
    )
    result = train(config, tmp_path / "run")
    assert [row["anneal"] for row in result.metrics] == [{"alpha": a} for a in (2.0, 1.0, 0.0)]
    assert result.model.recon_loss.alpha == 0.0
    _, loaded = load_run(tmp_path / "run", "latest")
    assert loaded.recon_loss.alpha == 0.0


def test_annealing_is_refused_where_it_cannot_apply(tmp_path):
    from robustvae.training import RunConfig, train

    def run(**settings):
        config = RunConfig.make(epochs=1, progress=False, tensorboard=False, **settings)
        return train(config, tmp_path / str(len(list(tmp_path.iterdir()))))

    with pytest.raises(ValueError, match="no parameter 'alpha' to anneal"):
        run(loss="l2", anneal="alpha=2:0")
    with pytest.raises(ValueError, match="learns its parameters"):
        run(loss="adaptive", anneal="alpha_init=1:0.5")
    with pytest.raises(ValueError, match="no loss parameter that can be annealed"):
        run(kind="vaegan", anneal="a=1:2")


# ----------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def stereo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("depth")
    folder = tmp / "pairs"
    scene = folder / "bike"
    scene.mkdir(parents=True)
    left, right, truth = _pair_files((128, 192))
    Image.fromarray(left).save(scene / "im0.png")
    Image.fromarray(right).save(scene / "im1.png")
    _write_pfm(scene / "disp0.pfm", truth)
    run = tmp / "run"
    status = main(
        ["depth", "train", "--out", run, "--dataset", "stereo-folder", "--data-root", folder,
         "--width", "0.125", "--crop", "32", "--max-disparity", "64", "--batch-size", "8",
         "--epochs", "1", "--no-progress", "--no-tensorboard"]
    )  # fmt: skip
    assert status == 0
    return run, folder


@pytest.mark.parametrize("truth", ["none", "unknown everywhere", "beyond max_disparity"])
def test_a_stereo_folder_without_ground_truth_is_refused_before_training(truth, tmp_path, capsys):
    left, right, known = _pair_files((128, 192))
    for side, view in (("left", left), ("right", right)):
        (tmp_path / side).mkdir()
        Image.fromarray(view).save(tmp_path / side / "a.png")
    if truth != "none":  # a file, but no pixel a 64-pixel net can be scored on
        (tmp_path / "disparity").mkdir()
        value = np.inf if truth == "unknown everywhere" else 65.0
        _write_pfm(tmp_path / "disparity" / "a.pfm", np.full_like(known, value))
    run = tmp_path / "run"
    status = main(
        ["depth", "train", "--out", run, "--dataset", "stereo-folder", "--data-root", tmp_path,
         "--width", "0.125", "--crop", "32", "--max-disparity", "64", "--epochs", "1",
         "--no-progress", "--no-tensorboard"]
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert f"{tmp_path}: no pair has ground-truth disparity to score" in err, err
    assert len(err.splitlines()) == 1, err
    assert not run.exists() or not any(run.iterdir())


def test_depth_train_evaluates_and_draws(stereo_run):
    from conftest import assert_picture

    from robustvae.evaluation import evaluate_run

    run, _ = stereo_run
    assert_picture(run / "disparity.png")
    results = evaluate_run(run, images=10, samples=10, fid=False)
    assert set(results["scenes"]) == {"bike"}
    assert results["abs_rel"] > 0 and results["avg"] >= 0 and 0 <= results["a1"] <= 1


def test_depth_evaluate_writes_tables_and_pictures(stereo_run, tmp_path, capsys):
    from conftest import assert_picture

    run, folder = stereo_run
    out = tmp_path / "eval"
    assert main(["depth", "evaluate", run, "--scene", folder, "--out", out]) == 0
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["scene"] for r in rows] == ["bike"]
    assert float(rows[0]["abs_rel"]) > 0 and float(rows[0]["avg"]) >= 0
    assert "| run | scene | abs_rel |" in (out / "metrics.md").read_text()
    assert_picture(out / "run-disparity.png")
    # The same run twice: its rows and pictures must still tell the two apart.
    assert main(["depth", "evaluate", run, run, "--scene", folder, "--out", out / "2"]) == 0
    labels = [r["label"] for r in csv.DictReader(open(out / "2" / "metrics.csv"))]
    assert len(set(labels)) == 2, labels
    assert len(list((out / "2").glob("*-disparity.png"))) == 2


def test_depth_predict_writes_kitti_png_and_pfm(stereo_run, tmp_path, capsys, monkeypatch):
    from robustvae import tiling

    run, folder = stereo_run
    left, right = folder / "bike" / "im0.png", folder / "bike" / "im1.png"
    monkeypatch.setattr(tiling, "ONE_PASS_PIXELS", 0)  # this small pair in tiles too
    assert main(["depth", "predict", run, left, right, tmp_path / "d.png", "--tile", "64"]) == 0
    monkeypatch.undo()
    with Image.open(tmp_path / "d.png") as image:
        encoded = np.asarray(image)
    assert encoded.dtype == np.uint16 and encoded.shape == (128, 192)
    assert main(["depth", "predict", run, left, right, tmp_path / "d.pfm", "--tile", "0"]) == 0
    whole = read_disparity(tmp_path / "d.pfm").numpy()
    assert np.abs(encoded / 256 - whole).max() < 1e-2  # tiled equals one pass
    from conftest import assert_picture

    with Image.open(tmp_path / "d-colour.png") as colour:  # one for looking at, same size
        assert colour.mode == "RGB" and colour.size == (192, 128)
    assert_picture(tmp_path / "d-colour.png")
    assert main(["depth", "predict", run, left, right, tmp_path / "e.pfm", "--colour-bar"]) == 0
    assert_picture(tmp_path / "e-colour.png")
    capsys.readouterr()
    assert main(["depth", "predict", run, left, folder / "nope.png", tmp_path / "x.png"]) == 2
    assert "nope.png" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_depth_predict_refuses_a_view_that_is_not_finite(stereo_run, tmp_path, capsys, bad):
    run, folder = stereo_run
    left = np.asarray(Image.open(folder / "bike" / "im0.png").convert("L"), np.float32) / 255
    left[5, 7] = bad
    view = tmp_path / "left.tiff"
    Image.fromarray(left, "F").save(view)
    out = tmp_path / "d.png"
    capsys.readouterr()
    assert main(["depth", "predict", run, view, folder / "bike" / "im1.png", out]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{view}: holds NaN or infinite values" in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_predictions_pinned_at_max_disparity_warn():
    from robustvae.cli.depth import _warn_if_saturated

    pinned = torch.full((10, 10), 5.0)
    pinned[:, :2] = 80.0  # 20% at the top of the range
    with pytest.warns(UserWarning, match="20% of the pixels predict the largest disparity"):
        _warn_if_saturated(pinned, 80.0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_saturated(torch.full((10, 10), 5.0), 80.0)


def test_training_scenes_beyond_max_disparity_warn():
    from robustvae.depth.data import warn_beyond

    truth = torch.full((8, 8), 20.0)
    truth[:4] = 200.0
    truth[0, 0] = math.inf  # unknown
    scene = StereoScene("wide", torch.rand(3, 8, 8), torch.rand(3, 8, 8), truth)
    with pytest.warns(
        UserWarning,
        match=r"wide: 49% of its known disparities exceed max_disparity 80 \(up to 200 px\)",
    ):
        warn_beyond([scene], 80)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_beyond([scene], 256)


def test_a_grey_and_a_colour_view_pair_up_and_odd_sizes_name_both_files(stereo_run, tmp_path):
    run, folder = stereo_run
    grey = tmp_path / "grey.png"
    Image.open(folder / "bike" / "im0.png").convert("L").save(grey)
    assert (
        main(["depth", "predict", run, grey, folder / "bike" / "im1.png", tmp_path / "d.pfm"]) == 0
    )
    left, right, _ = _pair_files()
    for d in ("left", "right"):
        (tmp_path / "pairs" / d).mkdir(parents=True)
    Image.fromarray(left).save(tmp_path / "pairs" / "left" / "a.png")
    Image.fromarray(right[:, :-8]).save(tmp_path / "pairs" / "right" / "a.png")
    with pytest.raises(ValueError, match=r"left/a.png is 160×96 but .*right/a.png is 152×96"):
        load_folder(tmp_path / "pairs")


def test_written_disparities_read_back(tmp_path):
    from robustvae.data.image_file import write_disparity

    disparity = torch.rand(5, 7) * 100
    write_disparity(tmp_path / "d.pfm", disparity)
    assert torch.equal(read_disparity(tmp_path / "d.pfm"), disparity)  # float32, exact
    write_disparity(tmp_path / "d.png", disparity)
    assert (read_disparity(tmp_path / "d.png") - disparity).abs().max() <= 0.5 / 256
    with pytest.raises(ValueError, match="write a .png"):
        write_disparity(tmp_path / "d.tif", disparity)
