"""The evaluator of the ``restore`` kind: SSIM and PSNR of every whole test image.

Each clean test image is corrupted once at the run's ``noise_test`` level, from a generator
seeded by the evaluation seed and the image's name only, so every run (every loss, every
training seed) restores the very same inputs and their scores pair up image by image
(Fig. 10 of the log-cosh paper). The restored image is scored against the clean one: SSIM and
PSNR (``robustvae.metrics.quality``, data range 1, outputs clipped to [0, 1]); the corrupted
input is scored too, for scale.
"""

from __future__ import annotations

import hashlib
import statistics
from pathlib import Path

import torch

from robustvae.evaluation.evaluator import Evaluator
from robustvae.evaluation.labels import run_label, unique_labels
from robustvae.files import write_csv
from robustvae.metrics import quality
from robustvae.restoration.corruption import check_level, corrupt
from robustvae.restoration.data import NamedImage, load_images
from robustvae.tiling import infer
from robustvae.training import load_run

#: The side of the crops scored one by one.
SCORE_CROP = 128
#: Images up to this many pixels are restored in one pass, larger ones in tiles.


def test_generator(name: str, seed: int) -> torch.Generator:
    """The generator that corrupts test image ``name``: a function of the name and seed."""
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def corrupt_test_images(
    images: list[NamedImage], noise: str, level: float, seed: int = 0
) -> list[torch.Tensor]:
    """Each image corrupted by ``noise`` at ``level`` (see ``test_generator``)."""
    return [
        corrupt(item.image[None], noise, torch.tensor([level]), test_generator(item.name, seed))[0]
        for item in images
    ]


def restore_images(task, inputs: list[torch.Tensor], device) -> list[torch.Tensor]:
    """The task's restorations of ``inputs`` (in one pass, or tiled when large), in [0, 1]."""
    was_training = task.training
    task.eval()
    try:
        out = []
        for image in inputs:
            out.append(infer(task.net, image.to(device)).cpu().clamp(0, 1))
        return out
    finally:
        task.train(was_training)


def scores(outputs: list[torch.Tensor], cleans: list[torch.Tensor]) -> list[dict]:
    """SSIM and PSNR of each output against its clean image."""
    rows = []
    for output, clean in zip(outputs, cleans, strict=True):
        a, b = output[None].clamp(0, 1), clean[None]
        rows.append(
            {
                "ssim": quality.ssim_per_image(a, b).item(),
                "psnr": quality.psnr_per_image(a, b).item(),
            }
        )
    return rows


def crop_boxes(height: int, width: int, side: int = SCORE_CROP) -> list[tuple[int, int]]:
    """(top, left) of every whole ``side``² crop of a grid centred on an H×W image."""
    top, left = (height % side) // 2, (width % side) // 2
    return [
        (top + r * side, left + c * side)
        for r in range(height // side)
        for c in range(width // side)
    ]


def crop_scores(
    names: list[str], outputs: list[torch.Tensor], cleans: list[torch.Tensor]
) -> list[dict]:
    """SSIM of each ``crop_boxes`` crop of each output against the clean crop, named
    ``NAME@TOP,LEFT``."""
    rows = []
    for name, output, clean in zip(names, outputs, cleans, strict=True):
        boxes = crop_boxes(*clean.shape[-2:])
        if not boxes:
            continue
        crops = [
            torch.stack([image[:, t : t + SCORE_CROP, c : c + SCORE_CROP] for t, c in boxes])
            for image in (output.clamp(0, 1), clean)
        ]
        values = quality.ssim_per_image(*crops).tolist()
        rows += [
            {"name": f"{name}@{t},{c}", "ssim": v} for (t, c), v in zip(boxes, values, strict=True)
        ]
    return rows


def evaluate_images(
    task, config, images: list[NamedImage], device, seed: int
) -> tuple[list[dict], list[dict]]:
    """(per image: name, SSIM and PSNR of the restoration and of the corrupted input;
    per crop: name and SSIM of the restoration and of the input, see ``crop_scores``)."""
    model = config.model
    level = model.levels()[2]
    inputs = corrupt_test_images(images, model.noise, level, seed)
    outputs = restore_images(task, inputs, device)
    cleans = [item.image for item in images]
    restored, given = scores(outputs, cleans), scores(inputs, cleans)
    per_image = [
        {"name": item.name, **r, "input_ssim": g["ssim"], "input_psnr": g["psnr"]}
        for item, r, g in zip(images, restored, given, strict=True)
    ]
    names = [item.name for item in images]
    given_crops = crop_scores(names, inputs, cleans)
    per_crop = [
        {**r, "input_ssim": g["ssim"]}
        for r, g in zip(crop_scores(names, outputs, cleans), given_crops, strict=True)
    ]
    return per_image, per_crop


def summarise(per_image: list[dict]) -> dict:
    """Means (and standard deviations) over images of every score."""
    out: dict = {"images": len(per_image)}
    for key in ("ssim", "psnr", "input_ssim", "input_psnr"):
        values = [row[key] for row in per_image]
        out[key] = statistics.fmean(values)
        if key in ("ssim", "psnr"):
            out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    out["one_minus_ssim"] = 1.0 - out["ssim"]
    return out


def evaluate(run_dir: str | Path, settings: dict, device: str) -> dict:
    """Scores of the run's best checkpoint over (up to ``settings['images']``) test images."""
    config, task = load_run(run_dir, device=device)
    images = load_images(config.dataset, "test", config.data_root, config.test_fraction)
    images = images[: settings["images"]]
    per_image, per_crop = evaluate_images(task, config, images, device, settings["seed"])
    return {**summarise(per_image), "per_image": per_image, "per_crop": per_crop}


def draw(run_dir: str | Path, device: str = "cpu") -> list[Path]:
    """``restorations.png``: corrupted test crops, their restorations and the clean crops."""
    from robustvae.evaluation.restoration_pictures import crops_grid

    config, task = load_run(run_dir, device=device)
    images = load_images(config.dataset, "test", config.data_root, config.test_fraction)[:6]
    inputs = corrupt_test_images(images, config.model.noise, config.model.levels()[2])
    outputs = restore_images(task, inputs, device)
    path = Path(run_dir) / "restorations.png"
    crops_grid(inputs, outputs, [item.image for item in images], path)
    return [path]


def curve_terms(configs: list, histories: dict) -> list[tuple[str, str]]:
    """The test terms the report plots against steps."""
    return [("clean_mse", "test MSE against the clean crops")]


def report_blocks(experiment, rows: list[dict], out_dir: Path) -> list[tuple[str, str]]:
    """The report's restoration figures, (path, caption) pairs: Fig. 10's scatter plots and
    Fig. 11's example grid for each group of restore cells (per-image SSIM averaged over
    seeds)."""
    from robustvae.evaluation.restoration_pictures import (
        example_grid,
        focus_loss,
        scatter_figure,
    )
    from robustvae.training import RunDir

    cells = [c for c in experiment.cells if c.config.kind == "restore"]
    groups: dict[tuple, dict[str, list]] = {}
    for cell in cells:
        key = tuple((a, v) for a, v in cell.axes.items() if a not in ("loss", "seed"))
        groups.setdefault(key, {}).setdefault(cell.axes["loss"], []).append(cell)
    blocks: list = []
    for key, by_loss in groups.items():
        if len(by_loss) < 2:
            continue
        caption = ", ".join(f"{a} = {v}" for a, v in key)
        stem = "-".join(f"{a}-{v}" for a, v in key) or "all"
        per_loss = {}
        for label, members in by_loss.items():
            evaluations = [RunDir(out_dir / "cells" / c.id).read_evaluation() for c in members]
            unit = "crop" if all(e.get("per_crop") for e in evaluations) else "image"
            rows = [e[f"per_{unit}"] for e in evaluations]
            per_loss[label] = {
                r["name"]: statistics.fmean(run[i]["ssim"] for run in rows)
                for i, r in enumerate(rows[0])
            }
        focus = focus_loss(list(per_loss))
        path = out_dir / "report" / f"ssim-scatter-{stem}.png"
        counts = scatter_figure(per_loss, focus, path)
        n = len(per_loss[focus])
        said = "; ".join(f"above {other}'s on {k} of {n}" for other, k in counts.items())
        blocks.append(
            (
                f"report/{path.name}",
                f"Fig. 10: SSIM of each test {unit}, {focus} (y) against the others (x), "
                f"mean over seeds: {focus} is {said}. {caption}",
            )
        )
        first = {label: members[0] for label, members in by_loss.items()}
        config = first[focus].config
        images = load_images(config.dataset, "test", config.data_root, config.test_fraction)[:1]
        seed = RunDir(out_dir / "cells" / first[focus].id).read_evaluation()["settings"]["seed"]
        level = config.model.levels()[2]
        noisy = corrupt_test_images(images, config.model.noise, level, seed)
        restored, scores = {}, {}
        for label, cell in first.items():
            run = out_dir / "cells" / cell.id
            _, task = load_run(run)
            restored[label] = restore_images(task, noisy, "cpu")[0]
            row = RunDir(run).read_evaluation()["per_image"][0]
            scores[label], scores["input"] = 1 - row["ssim"], 1 - row["input_ssim"]
        grid = out_dir / "report" / f"examples-{stem}.png"
        example_grid(images[0].image, noisy[0], restored, scores, grid)
        blocks.append(
            (
                f"report/{grid.name}",
                f"Fig. 11: test image {images[0].name!r} (centre crop), first seed; 1 − SSIM of "
                f"the whole image. {caption}",
            )
        )
    return blocks


# ----------------------------------------------------------------------------- several runs


def compare_runs(
    run_dirs: list[Path],
    images: list[NamedImage],
    out_dir: Path,
    device: str = "cpu",
    seed: int = 0,
    noise: str | None = None,
    level: float | None = None,
) -> tuple[list[dict], list[dict]]:
    """Restore the same corrupted ``images`` with every run; write ``per_image.csv`` (one row
    per image, SSIM and PSNR per run), ``per_crop.csv`` (SSIM per run of each
    ``crop_boxes`` crop, where the images hold any), ``summary.csv`` (mean ± std over whole
    images per run; each run after the first compared with the first crop by crop, or image
    by image when no image holds a crop, see ``_against``), Fig. 10's scatter plots
    (``ssim-scatter.png``, of the same units) and Fig. 11's grid (``examples.png``) into
    ``out_dir``.
    The corruption is the first run's (its noise at its test level) unless given.
    Returns (per-image rows, summary rows)."""
    from robustvae.evaluation.restoration_pictures import (
        example_grid,
        focus_loss,
        scatter_figure,
    )

    if not images:
        raise ValueError("no test images to evaluate")
    loaded = [load_run(run, device=device) for run in run_dirs]
    kinds = {config.kind for config, _ in loaded}
    if kinds != {"restore"}:
        raise ValueError(f"restore evaluate takes restore runs, got kinds {sorted(kinds)}")
    labels = unique_labels([run_label(config) for config, _ in loaded], run_dirs)
    first = loaded[0][0].model
    noise = noise or first.noise
    level = first.levels()[2] if level is None else level
    check_level(noise, level)
    channels = {task.channels for _, task in loaded}
    for item in images:
        if item.image.shape[0] not in channels or len(channels) > 1:
            raise ValueError(
                f"{item.name} has {item.image.shape[0]} channel(s); the runs restore "
                f"{' and '.join(map(str, sorted(channels)))}-channel images"
            )
    inputs = corrupt_test_images(images, noise, level, seed)
    cleans = [item.image for item in images]
    given = scores(inputs, cleans)
    rows = [
        {"image": item.name, "input_ssim": g["ssim"], "input_psnr": g["psnr"]}
        for item, g in zip(images, given, strict=True)
    ]
    names = [item.name for item in images]
    crops = [
        {"crop": r["name"], "input_ssim": r["ssim"]} for r in crop_scores(names, inputs, cleans)
    ]
    outputs = {}
    for label, (_, task) in zip(labels, loaded, strict=True):
        outputs[label] = restore_images(task, inputs, device)
        for row, score in zip(rows, scores(outputs[label], cleans), strict=True):
            row[f"{label} ssim"], row[f"{label} psnr"] = score["ssim"], score["psnr"]
        for row, score in zip(crops, crop_scores(names, outputs[label], cleans), strict=True):
            row[f"{label} ssim"] = score["ssim"]
    summary = [{"run": "input", **_mean_std(rows, "input_ssim", "input_psnr")}]
    summary += [
        {"run": label, **_mean_std(rows, f"{label} ssim", f"{label} psnr")} for label in labels
    ]
    # Image by image on the crops where the images hold any (Fig. 10's count), else whole.
    units, unit = (crops, "crop") if crops else (rows, "image")
    for row in summary[2:]:
        row.update(_against(units, row["run"], labels[0]), compared_on=f"{len(units)} {unit}s")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "per_image.csv", rows)
    if crops:
        write_csv(out_dir / "per_crop.csv", crops)
    write_csv(out_dir / "summary.csv", summary)
    if len(labels) > 1:
        key = "crop" if crops else "image"
        per_loss = {label: {r[key]: r[f"{label} ssim"] for r in units} for label in labels}
        scatter_figure(per_loss, focus_loss(labels), out_dir / "ssim-scatter.png")
    one_minus = {"input": 1 - rows[0]["input_ssim"]}
    one_minus.update({label: 1 - rows[0][f"{label} ssim"] for label in labels})
    restored = {label: outputs[label][0] for label in labels}
    example_grid(cleans[0], inputs[0], restored, one_minus, out_dir / "examples.png")
    return rows, summary


def _against(rows: list[dict], label: str, baseline: str) -> dict:
    """``label``'s SSIM against ``baseline``'s row by row (images or crops): Wilcoxon's
    signed-rank p, and the rows it is better on with the Clopper–Pearson 95% interval of that
    share."""
    from robustvae.significance import better_on, signed_rank

    ours = [r[f"{label} ssim"] for r in rows]
    theirs = [r[f"{baseline} ssim"] for r in rows]
    count = better_on(ours, theirs, higher_is_better=True)
    return {
        "against": baseline,
        "wilcoxon_p": signed_rank(ours, theirs),
        "better_on": count.better,
        "better_low": count.low,
        "better_high": count.high,
    }


def _mean_std(rows: list[dict], ssim: str, psnr: str) -> dict:
    out = {"images": len(rows)}
    for name, key in (("ssim", ssim), ("psnr", psnr)):
        values = [r[key] for r in rows]
        out[name] = statistics.fmean(values)
        out[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def training_loss(model_config) -> tuple:
    """The restorer's loss between its output and the target, weight 1."""
    return model_config.loss_spec(), 1.0


#: The corrupted inputs' scores (``input_ssim``, ``input_psnr``) are the same in every row of a
#: grid: they are in evaluation.json and results.csv, not in the table. SSIM is also scored per
#: crop: Fig. 10's pairs.
EVALUATOR = Evaluator(
    evaluate=evaluate,
    draw=draw,
    columns=(("ssim", "SSIM"), ("one_minus_ssim", "1 − SSIM"), ("psnr", "PSNR (dB)")),
    paired=("ssim",),
    panels=("restorations",),
    pictures_note="Each picture: the corrupted test crops, their restorations, the clean crops.",
    curve_terms=curve_terms,
    report_blocks=report_blocks,
    per_image=(("ssim", True),),
    per_image_unit="crop",
    training_loss=training_loss,
)
