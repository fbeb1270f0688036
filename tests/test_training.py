import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import DEVICES, require_fashion_mnist
from PIL import Image

from robustvae.cli import main
from robustvae.models import AutoEncoder
from robustvae.training import (
    RunConfig,
    TrainingDiverged,
    load_checkpoint,
    load_run,
    save_checkpoint,
    train,
)
from robustvae.training import checkpoint as ckpt_module

SMALL = dict(dataset="mnist-5k", width=0.2, epochs=2, progress=False, tensorboard=False)
QUIET = dict(progress=False, tensorboard=False, device="cpu")


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_is_pickle_free(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    path = save_checkpoint(
        tmp_path / "c.safetensors", model, {"model": opt}, meta={"epoch": 3, "x": [1, 2]}
    )
    assert path.read_bytes()[8:9] == b"{"  # a safetensors JSON header, not a pickle
    loaded = load_checkpoint(path)
    assert loaded.meta == {"epoch": 3, "x": [1, 2]}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model[key], value)
    fresh = torch.optim.Adam(model.parameters(), lr=0.5)
    fresh.load_state_dict(loaded.optimizers["model"])
    assert fresh.param_groups[0]["lr"] == 0.01
    for p in model.parameters():
        assert torch.equal(fresh.state[p]["exp_avg"], opt.state[p]["exp_avg"])
    assert torch.equal(loaded.rng["rng.torch"], torch.get_rng_state())


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ValueError, match="not a readable robustvae checkpoint"):
        load_checkpoint(bad)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "latest.safetensors", model, meta={"epoch": 1})

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_module, "save_file", disk_full)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError, match="could not write checkpoint.*No space left"):
        save_checkpoint(path, model, meta={"epoch": 2})
    assert load_checkpoint(path).meta == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.safetensors"]


# ----------------------------------------------------------------------------- training


def test_train_writes_run_and_loss_falls(tmp_path):
    config = RunConfig.make(**SMALL, loss="logcosh", loss_params={"a": 100.0})
    result = train(config, tmp_path / "run")
    run = tmp_path / "run"
    assert {"config.json", "latest.safetensors", "best.safetensors", "metrics.jsonl"} <= {
        p.name for p in run.iterdir()
    }
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["train"]["loss"] < rows[0]["train"]["loss"]
    assert {"loss", "recon", "kl", "sq_l2"} <= set(rows[0]["test"])
    assert RunConfig.from_dict(json.loads((run / "config.json").read_text())) == config
    loaded_config, model = load_run(run)
    assert loaded_config == config and isinstance(model, AutoEncoder)
    for key, value in result.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


@pytest.mark.parametrize("kind, loss", [("vae", "adaptive"), ("wae", "l1")])
def test_resume_continues_bit_for_bit(tmp_path, kind, loss):
    config = RunConfig.make(**{**SMALL, "epochs": 3}, kind=kind, loss=loss)
    whole = train(config, tmp_path / "whole")
    train(config.replace(epochs=2), tmp_path / "split")
    resumed = train(config, tmp_path / "split", resume=True)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    lines = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    split = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in lines]
    assert strip == [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in split]


def test_resume_refuses_a_changed_config_and_a_fresh_run_refuses_an_old_dir(tmp_path):
    config = RunConfig.make(**{**SMALL, "epochs": 2})
    train(config, tmp_path / "run")
    with pytest.raises(ValueError, match="already holds a run"):
        train(config, tmp_path / "run")
    with pytest.raises(ValueError, match="different loss"):
        train(config.replace(loss="l1", epochs=3), tmp_path / "run", resume=True)
    with pytest.raises(ValueError, match="different epochs"):  # epochs may grow, not shrink
        train(config.replace(epochs=1), tmp_path / "run", resume=True)
    # Settings that change no result may change: the run goes on.
    resumed = train(config.replace(epochs=3, data_root=None, device="cpu"), tmp_path / "run", True)
    assert [row["epoch"] for row in resumed.metrics] == [1, 2, 3]


@pytest.mark.parametrize("device", DEVICES)
def test_nan_stops_with_step_and_term_and_keeps_last_checkpoint(tmp_path, toys, device):
    # 256 points in batches of 32: 8 steps an epoch; from step 11 (epoch 2) on 'd_fake' is NaN.
    # On a GPU the check runs a step later; it names the same step.
    quiet = {**QUIET, "device": device}
    config = RunConfig.make(kind="gan-toy", epochs=3, batch_size=32, nan_after_step=10, **quiet)
    with pytest.raises(TrainingDiverged, match=r"step 10 \(epoch 2\): the 'd_fake' term is nan"):
        train(config, tmp_path / "run")
    assert load_checkpoint(tmp_path / "run" / "latest.safetensors").meta["epoch"] == 1


def test_cli_train_then_grids(tmp_path, capsys):
    run = tmp_path / "run"
    status = main(
        [
            "train",
            "--out",
            run,
            "--width",
            "0.2",
            "--epochs",
            "1",
            "--no-progress",
            "--no-tensorboard",
            "--loss",
            "logcosh",
            "--loss-param",
            "a=100",
        ]
    )
    assert status == 0
    saved = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert saved.model.loss_params == (("a", 100),)
    # 28×28 tiles with 2-pixel padding, drawn at twice the size: 8×8 samples, 4 pairs of rows
    # of 8 reconstructions, 8 interpolations of 10 steps.
    sizes = {"samples": (484, 484), "reconstructions": (484, 484), "interpolations": (604, 484)}
    for name, size in sizes.items():
        picture = Image.open(run / f"{name}.png")
        assert picture.size == size and picture.getextrema()[1] > picture.getextrema()[0], name
    pictures = {
        "sample": "samples",
        "reconstruct": "reconstructions",
        "interpolate": "interpolations",
    }
    for command, name in pictures.items():
        out = tmp_path / f"{command}.png"
        assert main([command, run, "--out", out]) == 0
        assert Image.open(out).size == sizes[name]
    capsys.readouterr()
    assert main(["sample", run, "--out", tmp_path / "sample.png"]) == 0  # an existing file
    assert f"replacing 1 existing file: {tmp_path / 'sample.png'}" in capsys.readouterr().err
    assert main(["train", "--out", tmp_path / "x", "--loss", "nope"]) == 2
    assert "got 'nope'" in capsys.readouterr().err


def test_a_toml_file_sets_only_what_it_names_over_the_commands_kind(tmp_path):
    """``depth train --config f.toml`` with a file that names no kind is a depth run's file;
    on resume, a file changes only the settings it names."""
    from robustvae.training.config import run_settings

    toml = tmp_path / "run.toml"
    toml.write_text("max_disparity = 64\nepochs = 3\n")
    config = run_settings({"kind": "depth"}, toml, {"crop": 64})
    assert (config.kind, config.model.max_disparity, config.epochs) == ("depth", 64, 3)
    assert config.model.crop == 64 and config.batch_size == 4  # the flag; the kind's default
    saved = RunConfig.make(kind="vae", loss="l1", epochs=2).to_dict()
    toml.write_text("epochs = 5\n")
    resumed = run_settings(saved, toml, {})
    assert (resumed.model.loss, resumed.epochs) == ("l1", 5)


def test_toml_config_with_unknown_key_is_an_error(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('loss = "l1"\nepocs = 3\n')
    with pytest.raises(ValueError, match="unknown run setting.*epocs"):
        RunConfig.from_toml(toml)


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"epochs": 1_000_001}, "epochs must be an int in [1, 1000000], got 1000001"),
        ({"epochs": 10**400}, "epochs must be an int in [1, 1000000], got an integer of 401 d"),
        ({"batch_size": 10**400}, "batch_size must be an int in [1, 1000000], got an integer of"),
        ({"lr": 10**400}, "lr must be a finite number, got an integer of 401 digits"),
        ({"lr_gamma": [10**400]}, "lr_gamma must be finite numbers, got an integer of 401 digits"),
        ({"width": 10**400}, "width must be a number in (0, 64], got an integer of 401 digits"),
        ({"latent_dim": 4097}, "latent_dim must be an int in [1, 4096], got 4097"),
    ],
)
def test_settings_beyond_their_bounds_are_one_line(settings, message):
    with pytest.raises(ValueError) as caught:
        RunConfig.make(**settings)
    assert str(caught.value).startswith(message), caught.value
    bounds = RunConfig.make(epochs=1_000_000, batch_size=1_000_000, width=64, latent_dim=4096)
    assert (bounds.epochs, bounds.batch_size, bounds.model.width) == (1_000_000, 1_000_000, 64.0)


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    env = {**os.environ, "ROBUSTVAE_COMPILE": "0", "OMP_NUM_THREADS": "1"}
    flags = [
        "--width",
        "0.2",
        "--epochs",
        "2",
        "--no-progress",
        "--no-tensorboard",
        "--device",
        "cpu",
    ]
    single = tmp_path / "one"
    assert main(["train", "--out", single, *flags]) == 0
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--standalone",
            "-m",
            "robustvae",
            "train",
            "--out",
            str(tmp_path / "two"),
            *flags,
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )

    def curve(run):
        return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]

    one, two = curve(single), curve(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two]
    for a, b in zip(one, two, strict=True):
        # Same global batches; the two runs differ only in float summation order and in the
        # reparameterisation noise each rank draws (a documented tolerance of 2%).
        assert b["test"]["loss"] == pytest.approx(a["test"]["loss"], rel=0.02)


def test_tensorboard_scalars_and_images_are_written(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(RunConfig.make(**{**SMALL, "epochs": 1, "tensorboard": True}), tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert {"train/loss", "test/loss", "test/kl", "lr"} <= set(events.Tags()["scalars"])
    assert "samples" in events.Tags()["images"]


@pytest.mark.slow
def test_one_epoch_of_fashion_mnist_from_the_cli(tmp_path, capsys):
    require_fashion_mnist()
    run = tmp_path / "fashion"
    status = main(
        [
            "train",
            "--out",
            run,
            "--dataset",
            "fashion-mnist",
            "--epochs",
            "1",
            "--loss",
            "logcosh",
            "--loss-param",
            "a=100",
            "--no-progress",
        ]
    )
    assert status == 0
    (row,) = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert row["step"] == 600  # 60,000 images in batches of 100
    assert 0 < row["test"]["sq_l2"] < 60  # per image, summed over 784 pixels in [0, 1]


def test_a_crash_between_metrics_and_checkpoint_leaves_no_duplicate_rows(tmp_path, monkeypatch):
    from robustvae.training import trainer

    config = RunConfig.make(**SMALL)
    real_save = trainer.save_checkpoint

    def crash_at_epoch_2(path, model, optimizers=None, meta=None, averaged=None):
        if meta["epoch"] == 2:
            raise OSError("simulated crash")
        return real_save(path, model, optimizers, meta=meta, averaged=averaged)

    monkeypatch.setattr(trainer, "save_checkpoint", crash_at_epoch_2)
    with pytest.raises(OSError, match="simulated"):
        train(config, tmp_path / "run")
    monkeypatch.undo()
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "torn')  # and a line torn mid-write
    train(config, tmp_path / "run", resume=True)
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]


def test_non_finite_weights_are_never_checkpointed(tmp_path, toys):
    config = RunConfig.make(kind="gan-toy", batch_size=32, nan_weights_at_step=8, **QUIET)
    with pytest.raises(TrainingDiverged, match="end of epoch 1.*not finite: generator.weight"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "latest.safetensors").exists()


def test_cli_resume_reuses_the_saved_settings(tmp_path):
    run = tmp_path / "run"
    flags = ["--no-progress", "--no-tensorboard"]
    assert (
        main(
            [
                "train",
                "--out",
                run,
                "--width",
                "0.2",
                "--epochs",
                "1",
                "--loss",
                "logcosh",
                "--loss-param",
                "a=100",
                *flags,
            ]
        )
        == 0
    )
    assert main(["train", "--out", run, "--resume", "--epochs", "2", *flags]) == 0
    saved = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert (saved.epochs, saved.model.loss, saved.model.width) == (2, "logcosh", 0.2)


def test_wae_never_sees_a_batch_of_one(tmp_path):
    # 4000 training images in batches of 1333 would leave a last batch of one row
    config = RunConfig.make(**{**SMALL, "epochs": 1}, kind="wae", batch_size=1333)
    result = train(config, tmp_path / "run")
    assert result.metrics[0]["step"] == 3


def test_checkpoint_that_does_not_fit_its_config_is_a_clear_error(tmp_path):
    train(RunConfig.make(**{**SMALL, "epochs": 1}), tmp_path / "run")
    path = tmp_path / "run" / "best.safetensors"
    checkpoint = load_checkpoint(path)
    meta = {**checkpoint.meta, "config": {**checkpoint.meta["config"], "width": 0.1}}
    save_checkpoint(path, _StateDict(checkpoint.model), meta=meta)
    with pytest.raises(ValueError, match="weights do not fit"):
        load_run(tmp_path / "run")


class _StateDict(torch.nn.Module):
    def __init__(self, state):
        super().__init__()
        self._state = state

    def state_dict(self, *args, **kwargs):
        return self._state


@pytest.mark.parametrize(
    "loss, param, name",
    [
        ("normal", "scale=1e39", "scale"),
        ("adaptive", "scale_init=1e39", "scale_init"),
        ("logcosh", "a=1" + "0" * 400, "a"),
        ("logcosh", "a=1e-50", "a"),
        ("student_t", "df=nan", "df"),
        ("general", "alpha=true", "alpha"),
    ],
)
def test_invalid_loss_parameter_is_one_line_before_training(tmp_path, capsys, loss, param, name):
    run = tmp_path / "run"
    assert main(["train", "--out", run, "--loss", loss, "--loss-param", param]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must" in err[0] and name in err[0], err
    assert not run.exists() or not any(run.iterdir())


def test_no_progress_still_prints_one_line_per_epoch_with_alpha_and_scale(tmp_path, capsys):
    args = ["train", "--out", tmp_path / "run", "--width", "0.1", "--epochs", "2"]
    assert main([*args, "--no-progress", "--no-tensorboard", "--loss", "adaptive"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert [line.split(" (")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    from robustvae.training import RunDir

    metrics = RunDir(tmp_path / "run").read_metrics()
    for line, row in zip(lines, metrics, strict=True):
        assert f"test sq_l2 {row['test']['sq_l2']:.4g}" in line
        assert f"α {row['statistics']['alpha_median']:.3g} (" in line
        assert f"c {row['statistics']['scale_median']:.3g} (" in line
