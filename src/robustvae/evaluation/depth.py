"""The evaluator of the ``depth`` kind: the depth-estimation errors of the predicted disparity
of whole scenes against their ground truth (``robustvae.depth.depth_metrics``).

A run trained on a bundled scene is scored on both: the other scene is the table's (how well
it generalises), the training scene's Avg a column of its own (how well it fits). A run trained
on a folder of pairs is scored on those pairs that have ground truth. Pixels are scored where
the ground truth is known and within (0, ``max_disparity``]; whole scenes are predicted in one
pass, or in exact tiles when large (``robustvae.tiling``).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from robustvae.depth.data import SCENES, StereoScene, load_folder, load_scene
from robustvae.depth.metrics import METRICS, depth_metrics, valid_mask
from robustvae.evaluation.evaluator import Evaluator
from robustvae.tiling import infer
from robustvae.training import load_run
from robustvae.unet import MULTIPLE

#: (key, title) of the results-table columns, in order (the seed table's, then the fit).
_COLUMNS = (
    ("avg", "Avg"),
    ("abs_rel", "AbsRel"),
    ("sq_rel", "SqRel"),
    ("rms", "RMS"),
    ("log_rms", "logRMS"),
    ("a1", "δ<1.25"),
    ("a2", "δ<1.25²"),
    ("a3", "δ<1.25³"),
    ("fit_avg", "Avg (training scene)"),
)


def scenes_of(config) -> tuple[list[StereoScene], list[StereoScene]]:
    """(scenes scored in the table, the training scenes scored for fit) of a run."""
    if config.dataset in SCENES:
        other = [load_scene(n) for n in SCENES if n != config.dataset]
        return other, [load_scene(config.dataset)]
    top = config.model.max_disparity
    scored = [s for s in load_folder(config.data_root) if s.scorable(top)]
    if not scored:
        raise ValueError(
            f"{config.data_root}: no pair has ground-truth disparity known in (0, {top}] to score"
        )
    return scored, []


@torch.no_grad()
def predict(task, scene: StereoScene, device) -> torch.Tensor:
    """The task's disparity (H×W) of a whole scene."""
    was_training = task.training
    task.eval()
    try:
        pair = torch.cat([scene.left, scene.right]).to(device)
        return infer(task, pair, margin=margin(task))[0].cpu()
    finally:
        task.train(was_training)


def margin(task) -> int:
    """The tiles' exact margin: the task's reach, rounded up to a multiple of 32."""
    return -(-task.reach() // MULTIPLE) * MULTIPLE


def score(task, scene: StereoScene, device, median_scaling: bool = False) -> dict:
    """``depth_metrics`` of the task's disparity of ``scene`` (known pixels up to the net's
    ``max_disparity``)."""
    mask = valid_mask(scene.disparity, 0.0, float(task.config.max_disparity))
    return depth_metrics(predict(task, scene, device), scene.disparity, mask, median_scaling)


def _mean(rows: list[dict]) -> dict:
    return {k: statistics.fmean(r[k] for r in rows) for k in METRICS}


def evaluate(run_dir: str | Path, settings: dict, device: str) -> dict:
    config, task = load_run(run_dir, device=device)
    scored, fitted = scenes_of(config)
    scenes = {s.name: score(task, s, device) for s in scored}
    out = {**_mean(list(scenes.values())), "scenes": scenes}
    if fitted:
        fit = {s.name: score(task, s, device) for s in fitted}
        out["fit_avg"] = statistics.fmean(r["avg"] for r in fit.values())
        out["fit"] = fit
    return out


def draw(run_dir: str | Path, device: str = "cpu") -> list[Path]:
    """``disparity.png``: each scene's left view, predicted and true disparity, and error."""
    from robustvae.evaluation.depth_pictures import disparity_figure

    config, task = load_run(run_dir, device=device)
    scored, fitted = scenes_of(config)
    rows = [(s, predict(task, s, device)) for s in fitted + scored]
    path = Path(run_dir) / "disparity.png"
    disparity_figure(rows, float(config.model.max_disparity), path)
    return [path]


def curve_terms(configs: list, histories: dict) -> list[tuple[str, str]]:
    return [
        ("gt_epe", "test disparity error (px; ground truth never trained on)"),
        ("smoothness", "test smoothness term"),
    ]


def training_loss(model_config) -> tuple:
    """The photometric loss between the right view warped and the left, weight 1."""
    return model_config.loss_spec(), 1.0


#: One test scene: nothing is paired image by image.
EVALUATOR = Evaluator(
    evaluate=evaluate,
    draw=draw,
    columns=_COLUMNS,
    paired=("avg",),
    panels=("disparity",),
    pictures_note=(
        "Disparity pictures: per scene, the left view, the predicted disparity, the ground "
        "truth (one colour scale) and the absolute error."
    ),
    curve_terms=curve_terms,
    training_loss=training_loss,
)
