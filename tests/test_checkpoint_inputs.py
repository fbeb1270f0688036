"""Broken checkpoints and run directories get one clear line, never a traceback: a generator of
crafted and corrupted checkpoints (from a real one), each fed to ``train --resume`` or
``sample``."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from robustvae.cli import main
from robustvae.training.checkpoint import tensors_digest

SETTINGS = ["--width", "0.1", "--epochs", "1", "--no-progress", "--no-tensorboard"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("ckpt") / "run"
    assert main(["train", "--out", run, *SETTINGS]) == 0
    return run


def _read(path):
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        info = json.loads(f.metadata()["robustvae"])
    return tensors, info


def _write(path, tensors, info, checksum=True):
    if checksum:
        info["sha256"] = tensors_digest(tensors)
    save_file(tensors, str(path), metadata={"robustvae": json.dumps(info)})


def _meta(change):
    def edit(tensors, info):
        change(info["meta"])

    return edit


def _drop_rng(tensors, info):
    del tensors["rng.torch"]


def _short_rng(tensors, info):
    tensors["rng.torch"] = tensors["rng.torch"][:10].clone()


def _no_optimizer(tensors, info):
    info["optimizers"] = {}
    for k in [k for k in tensors if k.startswith("optim.")]:
        del tensors[k]


def _negative_step(tensors, info):
    key = next(k for k in tensors if k.startswith("optim.") and k.endswith(".step"))
    tensors[key] = torch.full_like(tensors[key], -5.0)


def _nan_weight(tensors, info):
    key = next(k for k in tensors if k.startswith("model.") and tensors[k].is_floating_point())
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")


CASES = {
    "missing config": (_meta(lambda m: m.pop("config")), "has no 'config'"),
    "missing step": (_meta(lambda m: m.pop("step")), "has no 'step'"),
    "string epoch": (_meta(lambda m: m.update(epoch="1")), "'epoch' must be an integer"),
    "string best": (_meta(lambda m: m.update(best="low")), "'best' must be a number"),
    "config as a list": (_meta(lambda m: m.update(config=[1, 2])), "'config' must be a table"),
    "epoch 1000": (_meta(lambda m: m.update(epoch=1000)), "has trained 1000 epochs"),
    "no optimizer": (_no_optimizer, "holds optimizers []"),
    "no random state": (_drop_rng, "no valid random state"),
    "short random state": (_short_rng, "no valid random state"),
    "negative Adam step": (_negative_step, "negative step count"),
    "NaN weight": (_nan_weight, "holds NaN or inf"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_checkpoint_is_one_line_on_resume(case, trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    edit, message = CASES[case]
    tensors, info = _read(run / "latest.safetensors")
    edit(tensors, info)
    _write(run / "latest.safetensors", tensors, info)
    capsys.readouterr()
    status = main(["train", "--out", run, "--resume", *SETTINGS])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert message in err and len(err.splitlines()) == 1, err
    assert "latest.safetensors" in err or "run" in err


def test_a_flipped_bit_fails_the_checksum(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    tensors, info = _read(run / "latest.safetensors")
    key = next(k for k in tensors if k.startswith("model."))
    flipped = tensors[key].clone()
    flipped.view(-1).view(torch.int32)[3] ^= 1 << 4
    tensors[key] = flipped
    _write(run / "latest.safetensors", tensors, info, checksum=False)  # the old checksum stays
    capsys.readouterr()
    assert main(["train", "--out", run, "--resume", *SETTINGS]) == 2
    err = capsys.readouterr().err
    assert "do not match the checksum" in err and "latest.safetensors" in err


def test_sample_refuses_a_checkpoint_without_image_shape(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for name in ("best.safetensors", "latest.safetensors"):
        tensors, info = _read(run / name)
        info["meta"].pop("image_shape")
        _write(run / name, tensors, info)
    capsys.readouterr()
    assert main(["sample", run, "--out", tmp_path / "s.png"]) == 2
    assert "has no 'image_shape'" in capsys.readouterr().err
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


def test_older_checkpoints_without_a_checksum_still_load(trained, tmp_path):
    from robustvae.training import load_run

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for name in ("best.safetensors", "latest.safetensors"):
        tensors, info = _read(run / name)
        info.pop("sha256")
        _write(run / name, tensors, info, checksum=False)
    config, task = load_run(run)
    assert config.kind == "vae" and not task.training
