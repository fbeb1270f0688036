"""Broken inputs every kind's tests draw from, so that the next kind is probed by the same
cases: crafted and corrupted checkpoints (edits of a real one, each with the message its load
must give), malformed ``metrics.jsonl`` lines, and tiny real runs of each kind to edit.

A checkpoint case is ``name → (edit(tensors, info), message)``: ``edit`` changes a real
checkpoint's tensors or metadata in place; the file is then written with a checksum that
matches the edit (``write_checkpoint``), so the load reaches the check the case is about.
"""

from __future__ import annotations

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from robustvae.cli import main
from robustvae.training.checkpoint import checkpoint_digest

QUIET = ["--no-progress", "--no-tensorboard"]


def read_checkpoint(path):
    """(tensors, the robustvae metadata) of a checkpoint file."""
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        info = json.loads(f.metadata()["robustvae"])
    return tensors, info


def write_checkpoint(path, tensors, info, checksum=True):
    """Write a checkpoint file; ``checksum``: a new one matching the (edited) contents,
    else whatever ``info`` holds."""
    if checksum:
        info["sha256"] = checkpoint_digest(tensors, info)
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


def _optimizers(value):
    def edit(tensors, info):
        info["optimizers"] = value

    return edit


def _optimizer_part(key, value):
    def edit(tensors, info):
        info["optimizers"]["model"][key] = value

    return edit


def _hyperparameter(key, value):
    def edit(tensors, info):
        info["optimizers"]["model"]["param_groups"][0][key] = value

    return edit


def _odd_tensor_name(tensors, info):
    key = next(k for k in tensors if k.startswith("optim.model."))
    tensors["optim.model.x.exp_avg"] = tensors.pop(key)


CHECKPOINT_CASES = {
    "missing config": (_meta(lambda m: m.pop("config")), "has no 'config'"),
    "missing step": (_meta(lambda m: m.pop("step")), "has no 'step'"),
    "string epoch": (_meta(lambda m: m.update(epoch="1")), "'epoch' must be an integer"),
    "string best": (_meta(lambda m: m.update(best="low")), "'best' must be a finite number"),
    "config as a list": (_meta(lambda m: m.update(config=[1, 2])), "'config' must be a table"),
    "epoch 1000": (_meta(lambda m: m.update(epoch=1000)), "has trained 1000 epochs"),
    "no optimizer": (_no_optimizer, "holds optimizers []"),
    "no random state": (_drop_rng, "no valid random state"),
    "short random state": (_short_rng, "no valid random state"),
    "negative Adam step": (_negative_step, "negative step count"),
    "NaN weight": (_nan_weight, "holds NaN or inf"),
    "NaN best": (_meta(lambda m: m.update(best=float("nan"))), "'best' must be a finite number"),
    "optimizers a list": (_optimizers([1]), "optimizers must be a table"),
    "an optimizer a number": (_optimizers({"model": 5}), "optimizer 'model': its metadata is int"),
    "param_groups a number": (_optimizer_part("param_groups", 5), "param_groups must be a list"),
    "lr a string": (_hyperparameter("lr", "x"), "optimizer 'model' holds lr = 'x'"),
    "betas a string": (_hyperparameter("betas", "x"), "optimizer 'model' holds betas = 'x'"),
    "plain_state a list": (_optimizer_part("plain_state", [1]), "plain_state must be a table"),
    "odd optimizer tensor": (_odd_tensor_name, "tensor name 'x.exp_avg' is not <index>.<key>"),
}


#: Lines that are valid JSON but no epoch's row of metrics.jsonl.
METRICS_LINES = [
    '{"x": 1}',
    "[1, 2]",
    '{"epoch": "1"}',
    '{"epoch": 0}',
    '{"epoch": 1, "seconds": "fast"}',
    '{"epoch": 2}',
    '{"epoch": 2, "step": 16, "train": [1]}',
]


def tiny_run(kind: str, tmp):
    """A real run of ``kind`` (one epoch of a narrow net on small real data) under ``tmp``."""
    run = tmp / "run"
    if kind == "vae":
        status = main(["train", "--out", run, "--width", "0.1", "--epochs", "1", *QUIET])
    elif kind == "restore":
        from small_data import photo_folder as _folder

        root = _folder(tmp)
        status = main(
            ["restore", "train", "--out", run, "--dataset", "folder", "--data-root", root,
             "--width", "0.125", "--crop", "32", "--batch-size", "4", "--epochs", "1", *QUIET]
        )  # fmt: skip
    elif kind == "depth":
        from PIL import Image
        from small_data import stereo_window as _pair_files
        from small_data import write_pfm as _write_pfm

        scene = tmp / "pairs" / "bike"
        scene.mkdir(parents=True)
        left, right, truth = _pair_files((64, 128))
        Image.fromarray(left).save(scene / "im0.png")
        Image.fromarray(right).save(scene / "im1.png")
        _write_pfm(scene / "disp0.pfm", truth)
        status = main(
            ["depth", "train", "--out", run, "--dataset", "stereo-folder", "--data-root",
             tmp / "pairs", "--width", "0.125", "--crop", "32", "--max-disparity", "64",
             "--batch-size", "8", "--epochs", "1", *QUIET]
        )  # fmt: skip
    else:
        raise ValueError(kind)
    assert status == 0
    return run
