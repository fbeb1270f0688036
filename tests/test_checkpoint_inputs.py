"""Broken checkpoints and run directories get one clear line, never a traceback: the crafted
and corrupted checkpoints of ``broken_inputs`` (edits of a real run of each kind), each fed
to ``train --resume`` or ``sample``."""

from __future__ import annotations

import shutil

import pytest
import torch
from broken_inputs import (
    CHECKPOINT_CASES,
    METRICS_LINES,
    read_checkpoint,
    tiny_run,
    write_checkpoint,
)

from robustvae.cli import main

SETTINGS = ["--width", "0.1", "--epochs", "1", "--no-progress", "--no-tensorboard"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_run("vae", tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module", params=["vae", "restore", "depth"])
def run_of_each_kind(request, tmp_path_factory):
    return tiny_run(request.param, tmp_path_factory.mktemp(request.param))


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_a_broken_checkpoint_is_one_line_on_resume(case, run_of_each_kind, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_of_each_kind, run)
    edit, message = CHECKPOINT_CASES[case]
    tensors, info = read_checkpoint(run / "latest.safetensors")
    edit(tensors, info)
    write_checkpoint(run / "latest.safetensors", tensors, info)
    capsys.readouterr()
    status = main(["train", "--out", run, "--resume"])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert message in err and len(err.splitlines()) == 1, err
    assert "latest.safetensors" in err or "run" in err


def _resume_with_old_checksum(trained, tmp_path, capsys, edit) -> tuple[int, str]:
    """(exit status, standard error) of resuming a copy of ``trained`` whose latest
    checkpoint ``edit(tensors, info)`` changed while its old checksum stays."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    tensors, info = read_checkpoint(run / "latest.safetensors")
    edit(tensors, info)
    write_checkpoint(run / "latest.safetensors", tensors, info, checksum=False)
    capsys.readouterr()
    status = main(["train", "--out", run, "--resume", *SETTINGS])
    return status, capsys.readouterr().err


def test_a_flipped_bit_fails_the_checksum(trained, tmp_path, capsys):
    def flip(tensors, info):
        key = next(k for k in tensors if k.startswith("model."))
        flipped = tensors[key].clone()
        flipped.view(-1).view(torch.int32)[3] ^= 1 << 4
        tensors[key] = flipped

    status, err = _resume_with_old_checksum(trained, tmp_path, capsys, flip)
    assert status == 2
    assert "do not match the checksum" in err and "latest.safetensors" in err


@pytest.mark.parametrize(
    "shape,message",
    [
        (None, "has no 'image_shape'"),
        ([1, 100000, 100000], "each at most 65536"),  # a 40 GB allocation, refused
        ([3, 30000, 30000], "268,435,456 values in all"),
    ],
)
def test_sample_refuses_a_checkpoint_without_a_sane_image_shape(
    shape, message, trained, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for name in ("best.safetensors", "latest.safetensors"):
        tensors, info = read_checkpoint(run / name)
        if shape is None:
            info["meta"].pop("image_shape")
        else:
            info["meta"]["image_shape"] = shape
        write_checkpoint(run / name, tensors, info)
    capsys.readouterr()
    assert main(["sample", run, "--out", tmp_path / "s.png"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s.png").exists()


def test_resume_removes_interrupted_writes_and_explains_an_empty_run(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    leftovers = [run / ".latest.safetensors.abc123.tmp", run / ".best.safetensors.x.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a checkpoint")
    assert main(["train", "--out", run, "--resume", *SETTINGS[:2], "--epochs", "2",
                 *SETTINGS[4:]]) == 0  # fmt: skip
    assert not any(p.exists() for p in leftovers)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((run / "config.json").read_text())
    capsys.readouterr()
    assert main(["train", "--out", empty, "--resume", *SETTINGS]) == 2
    err = capsys.readouterr().err
    assert "stopped before its first epoch ended" in err and "without --resume" in err


@pytest.mark.parametrize(
    "edit",
    [
        lambda info: info["meta"].update(step=info["meta"]["step"] + 100),
        lambda info: info["optimizers"]["model"]["param_groups"][0].update(betas=[0.1, 0.999]),
        lambda info: info["meta"]["config"].update(lr=0.5),
    ],
    ids=["step", "beta1", "lr"],
)
def test_edited_metadata_fails_the_checksum(edit, trained, tmp_path, capsys):
    status, err = _resume_with_old_checksum(
        trained, tmp_path, capsys, lambda tensors, info: edit(info)
    )
    assert status == 2
    assert "tensors or metadata do not match the checksum" in err, err


def test_a_current_checkpoint_without_its_checksum_is_refused(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    tensors, info = read_checkpoint(run / "latest.safetensors")
    info.pop("sha256")
    write_checkpoint(run / "latest.safetensors", tensors, info, checksum=False)
    capsys.readouterr()
    assert main(["train", "--out", run, "--resume", *SETTINGS]) == 2
    assert "format-3 checkpoint without its checksum" in capsys.readouterr().err


def test_a_checkpoint_relabelled_as_format_1_is_refused(trained, tmp_path, capsys):
    from robustvae.training.checkpoint import load_checkpoint

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    tensors, info = read_checkpoint(run / "best.safetensors")
    info.pop("sha256")
    info["format"] = "robustvae-checkpoint-1"
    write_checkpoint(run / "best.safetensors", tensors, info, checksum=False)
    with pytest.raises(ValueError, match="labelled format 1 but holds 'optimizers'"):
        load_checkpoint(run / "best.safetensors")


def test_older_checkpoints_without_a_checksum_load_with_a_warning(trained, tmp_path):
    from robustvae.training import load_run

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for name in ("best.safetensors", "latest.safetensors"):
        tensors, info = read_checkpoint(run / name)
        info.pop("sha256")
        info["format"] = "robustvae-checkpoint-2"  # written before checksums
        write_checkpoint(run / name, tensors, info, checksum=False)
    with pytest.warns(UserWarning, match="without a checksum: its integrity cannot be checked"):
        config, task = load_run(run)
    assert config.kind == "vae" and not task.training


def test_format_2_checkpoints_keep_their_tensor_checksum(trained, tmp_path):
    from robustvae.training.checkpoint import load_checkpoint, tensors_digest

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    tensors, info = read_checkpoint(run / "best.safetensors")
    info["format"] = "robustvae-checkpoint-2"
    info["sha256"] = tensors_digest(tensors)
    write_checkpoint(run / "best.safetensors", tensors, info, checksum=False)
    assert load_checkpoint(run / "best.safetensors").meta == info["meta"]
    key = next(k for k in tensors if k.startswith("model."))
    tensors[key] = tensors[key] + 1
    write_checkpoint(run / "best.safetensors", tensors, info, checksum=False)
    with pytest.raises(ValueError, match="tensors do not match the checksum"):
        load_checkpoint(run / "best.safetensors")


@pytest.mark.parametrize("line", METRICS_LINES)
def test_a_malformed_metrics_line_is_one_line_on_resume(line, trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(line + "\n")
    capsys.readouterr()
    assert main(["train", "--out", run, "--resume", *SETTINGS[:2], "--epochs", "2",
                 *SETTINGS[4:]]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "metrics.jsonl, line 2: not an epoch's metrics" in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_repeated_epoch_in_the_metrics_is_one_line(trained, tmp_path):
    from robustvae.training import RunDir

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    first = (run / "metrics.jsonl").read_text().splitlines()[0]
    with open(run / "metrics.jsonl", "a") as f:
        f.write(first + "\n")
    with pytest.raises(ValueError, match="line 2: epoch 1 after epoch 1"):
        RunDir(run).read_metrics()


def test_a_torn_last_metrics_line_is_skipped(trained, tmp_path):
    from robustvae.training import RunDir

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "st')
    assert [r["epoch"] for r in RunDir(run).read_metrics()] == [1]


def test_a_fresh_start_removes_the_writes_a_killed_first_epoch_left(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    orphans = [run / f".{name}.k1ll3d.tmp" for name in ("latest.safetensors", "metrics.jsonl")]
    for orphan in orphans:
        orphan.write_bytes(b"half a file")
    assert main(["train", "--out", run, *SETTINGS]) == 0
    assert not any(o.exists() for o in orphans) and (run / "latest.safetensors").exists()


def test_weights_that_overflow_write_no_picture(run_of_each_kind, tmp_path, capsys):
    """Finite weights ×1e30 (under a valid checksum) pass the load's checks but overflow: the
    kind's output command says so in one line and writes nothing, never a black image."""
    import json

    import numpy as np
    from PIL import Image

    run = tmp_path / "run"
    shutil.copytree(run_of_each_kind, run)
    for name in ("best", "latest"):
        tensors, info = read_checkpoint(run / f"{name}.safetensors")
        for key, value in tensors.items():
            if key.startswith(("model.", "ema.")) and key.endswith("weight"):
                tensors[key] = value * 1e30
        write_checkpoint(run / f"{name}.safetensors", tensors, info)
    kind = json.loads((run / "config.json").read_text())["kind"]
    out = tmp_path / "out.png"
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)).save(image)
    command = {
        "vae": ["sample", run, "--out", out],
        "restore": ["restore", "apply", run, image, out],
        "depth": ["depth", "predict", run, image, image, out],
    }[kind]
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert "not finite" in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_a_run_of_another_kind_is_refused_by_name(trained, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    for command, what in (
        (["restore", "apply", trained, image, tmp_path / "o.png"], "not a restorer"),
        (["depth", "predict", trained, image, image, tmp_path / "d.png"], "not a depth net"),
    ):
        capsys.readouterr()
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert f"holds a 'vae' model, {what}" in err and len(err.splitlines()) == 1, err
