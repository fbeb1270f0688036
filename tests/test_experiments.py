import csv
import json
import math
import re
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_picture

from robustvae.experiments import load_experiment, run_experiment
from robustvae.experiments import runner as runner_module
from robustvae.training import RunDir

PRESETS_DIR = Path(__file__).resolve().parents[1] / "experiments"
PRESETS = sorted(PRESETS_DIR.glob("*.toml"))

TINY = """
name = "tiny"
baseline = "l2"
[base]
dataset = "mnist-5k"
epochs = 1
width = 0.1
tensorboard = false
[grid]
seed = [0, 1]
[[losses]]
loss = "l2"
[[losses]]
label = "logcosh"
loss = "logcosh"
loss_params = { a = 100.0 }
[evaluate]
images = 100
samples = 100
fid = false
"""


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_preset_parses(preset):
    experiment = load_experiment(preset)
    assert experiment.cells and len({c.id for c in experiment.cells}) == len(experiment.cells)
    header = "\n".join(line for line in preset.read_text().splitlines() if line.startswith("#"))
    stated = re.search(r"(\d+) cells", header)
    assert stated and int(stated.group(1)) == len(experiment.cells)
    assert "run time" in header


def test_grid_expands_every_combination(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    experiment = load_experiment(path)
    assert [c.id for c in experiment.cells] == [
        "seed=0,loss=l2",
        "seed=0,loss=logcosh",
        "seed=1,loss=l2",
        "seed=1,loss=logcosh",
    ]
    assert experiment.cells[1].config.model.loss_spec().kwargs == {"a": 100.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ('nmae = "x"', "unknown key"),
        ("[base]\nepocs = 3", "unknown run setting"),
        ('baseline = "l3"\n[[losses]]\nloss = "l2"', "baseline"),
        ("[[losses]]\nepochs = 2", "needs a 'loss' name or a 'label'"),
        ("[[losses]]\nloss = 'logcosh'\nloss_params = { a = [1.0] }\nrecon_weight = [1.0]", "one"),
        ("[[losses]]\nloss = 'logcosh'\nloss_params = { a = ['big'] }", "need numbers"),
        ("[[losses]]\nloss = 'l2'\nrecon_weight = []", "need numbers"),
        ("[grid]\narch = ['mlp']\n[[overrides]]\nwidth = 1.0", "`when`"),
        ("[grid]\narch = ['mlp']\n[[overrides]]\nwhen = { size = 1 }\nwidth = 1.0", "size"),
        ("[[losses]]\nloss = 'logcosh'\nloss_params = { a = -1.0 }", "cell loss=logcosh: a must"),
        (
            "[[losses]]\nloss = 'logcosh'\nloss_params = { a = 1" + "0" * 400 + " }",
            "cell loss=logcosh: a must lie in .* an integer of 401 digits",
        ),
        ("[[losses]]\nloss = 'general'\nloss_params = { scale = 1e39 }", "scale must lie in"),
        ("[grid]\nloss = ['l2', 'l1']", "not a \\[grid\\] axis"),
        (
            "[[losses]]\nlabel = 'scaled l2'\nloss = 'l2'\n[[losses]]\nlabel = 'scaled-l2'\n"
            "loss = 'l1'",
            "share the id",
        ),
        (
            "[grid]\narch = ['mlp']\n[[overrides]]\nwhen = { arch = 'cnv' }\nwidth = 1.0",
            "matches no cell",
        ),
    ],
)
def test_bad_experiment_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_experiment(path)


def test_compare_runs_the_grid_writes_tables_and_resumes(tmp_path, monkeypatch):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "out"
    run_experiment(path, out, progress=lambda *_: None)
    csv_rows = (out / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 4
    table = (out / "results.md").read_text()
    assert "| l2 |" in table and "| logcosh |" in table and " ± " in table and "%)" in table
    by_loss = {}
    for row in _rows(out):
        by_loss.setdefault(row["loss"], []).append(float(row["sharpness_generated"]))
    means = {loss: sum(v) / len(v) for loss, v in by_loss.items()}
    change = (means["logcosh"] - means["l2"]) / means["l2"]
    assert f"{means['logcosh']:.4g} ± " in table and f"({change:+.0%})" in table

    trained = []
    real = runner_module.run_cell

    def counting(cell, cell_dir, evaluate, threads=None):
        trained.append(cell.id)
        return real(cell, cell_dir, evaluate, threads)

    monkeypatch.setattr(runner_module, "run_cell", counting)
    (out / "cells" / "seed=1,loss=logcosh" / "evaluation.json").unlink()  # as if interrupted
    run_experiment(path, out, progress=lambda *_: None)
    assert trained == ["seed=1,loss=logcosh"]


def test_parallel_jobs_give_the_same_results_as_one(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    run_experiment(path, tmp_path / "one", progress=lambda *_: None)
    run_experiment(path, tmp_path / "two", jobs=2, progress=lambda *_: None)
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert [r["cell"] for r in one] == [r["cell"] for r in two]
    for a, b in zip(one, two, strict=True):  # threads per process differ: float sums too
        assert float(b["sharpness_generated"]) == pytest.approx(
            float(a["sharpness_generated"]), rel=1e-2
        )
        assert float(b["test_loss"]) == pytest.approx(float(a["test_loss"]), rel=1e-3)


SWEEP = """
name = "sweep"
baseline = "l2"
[base]
dataset = "mnist-5k"
epochs = 1
width = 0.1
[grid]
arch = ["mlp", "conv"]
[[losses]]
loss = "l2"
[[losses]]
label = "logcosh"
loss = "logcosh"
loss_params = { a = [1.0, 10.0] }
[[losses]]
label = "scaled l2"
loss = "l2"
recon_weight = [0.5, 5.0]
[[overrides]]
when = { arch = "mlp" }
width = 1.0
[[overrides]]
when = { arch = "conv", loss = "logcosh" }
epochs = 2
"""


def test_sweeps_expand_into_labelled_cells_and_overrides_apply(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP)
    cells = {c.id: c for c in load_experiment(path).cells}
    assert len(cells) == 2 * 5
    a10 = cells["arch=conv,loss=logcosh-a-10"]
    assert a10.axes["loss"] == "logcosh (a=10)"
    assert a10.config.model.loss_spec().kwargs == {"a": 10.0}
    assert (a10.sweep.label, a10.sweep.setting, a10.sweep.value) == ("logcosh", "a", 10.0)
    assert cells["arch=mlp,loss=scaled-l2-recon-weight-5"].config.model.recon_weight == 5.0
    assert cells["arch=mlp,loss=l2"].sweep is None
    assert {c.config.model.width for i, c in cells.items() if i.startswith("arch=mlp")} == {1.0}
    assert {c.config.model.width for i, c in cells.items() if i.startswith("arch=conv")} == {0.1}
    # `when = { loss = "logcosh" }` matches every swept variant of that entry, nothing else
    epochs = {i: c.config.epochs for i, c in cells.items() if i.startswith("arch=conv")}
    assert epochs == {
        "arch=conv,loss=l2": 1,
        "arch=conv,loss=logcosh-a-1": 2,
        "arch=conv,loss=logcosh-a-10": 2,
        "arch=conv,loss=scaled-l2-recon-weight-0.5": 1,
        "arch=conv,loss=scaled-l2-recon-weight-5": 1,
    }


def test_settings_and_only_select_and_change_cells(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP)
    experiment = load_experiment(path, settings={"epochs": 3, "width": 0.2}, only="arch=mlp,*")
    assert len(experiment.cells) == 5
    assert {(c.config.epochs, c.config.model.width) for c in experiment.cells} == {(3, 0.2)}
    with pytest.raises(ValueError, match="no cell matches"):
        load_experiment(path, only="arch=resnet*")
    with pytest.raises(ValueError, match="unknown run setting"):
        load_experiment(path, settings={"epocs": 1})


def test_curvature_at_zero_is_a_for_logcosh_and_two_lambda_for_l2(tmp_path):
    from robustvae.experiments.analysis import curvature_at_zero

    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP)
    cells = {c.id: c for c in load_experiment(path).cells}
    assert curvature_at_zero(cells["arch=mlp,loss=logcosh-a-10"]) == pytest.approx(10, rel=1e-6)
    assert curvature_at_zero(cells["arch=mlp,loss=scaled-l2-recon-weight-5"]) == pytest.approx(
        10, rel=1e-9
    )
    assert curvature_at_zero(cells["arch=mlp,loss=l2"]) == pytest.approx(2, rel=1e-9)
    l1_path = tmp_path / "l1.toml"
    l1_path.write_text("[[losses]]\nloss = 'l1'\n")
    l1 = load_experiment(l1_path).cells[0]
    assert math.isnan(curvature_at_zero(l1))  # |t| has no curvature at 0


def test_report_shows_every_cell_curves_and_sweeps(tmp_path, monkeypatch):
    from robustvae.experiments import report

    monkeypatch.setattr(report, "PICTURE_COLUMNS", 3)  # 5 losses: a table of 3, then of 2
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP)
    out = tmp_path / "out"
    lines = []
    experiment = run_experiment(
        path,
        out,
        progress=lines.append,
        settings={"epochs": 2, "width": 0.05},
        only="arch=mlp,*",
        evaluate={"images": 50, "samples": 50, "fid": False},
    )
    assert lines[0] == "sweep: 5 cells, 0 already finished"
    assert re.fullmatch(r"\[5/5\] \S+  \(\d+m\d\ds elapsed, ~0m00s left\)", lines[-1])
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for cell in experiment.cells:
        for panel in ("samples", "reconstructions", "interpolations"):
            picture = f"cells/{cell.id}/{panel}.png"
            assert_picture(out / picture)
            assert f"({picture})" in md and f'src="{picture}"' in page
    assert "## Training curves" in md and "## Sweeps" in md
    figures = re.findall(r"!\[[^\]]*\]\((report/[^)]+\.png)\)", md)
    assert {Path(f).name.split("-")[0] for f in figures} == {"curves", "sweep"}
    for figure in figures:
        assert_picture(out / figure)
        assert f'src="{figure}"' in page
    results_table = page.split("<table>")[1].split("</table>")[0]
    assert "logcosh (a=10)" in results_table and "± " not in results_table  # one seed
    assert "one run per row" in md and "mean ± std" not in md
    settings = md.split("## Settings")[1].split("## Pictures")[0]
    assert "Evaluation: images = 50, samples = 50, fid = False" in settings
    assert "| width | 0.05 |" in settings and "| epochs | 2 |" in settings  # --set shows
    assert page.count('<div class="wide"><table>') == page.count("<table>")  # tables scroll
    pictures = md.split("## Pictures")[1].split("## Training curves")[0]
    headers = [line for line in pictures.splitlines() if line.startswith("|  |")]
    assert [line.count("|") - 2 for line in headers] == [3, 2]


def test_a_cell_run_with_other_settings_is_never_reused(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "out"
    fast = {"images": 20, "samples": 20}
    run_experiment(path, out, progress=lambda *_: None, only="seed=0,loss=l2", evaluate=fast)
    before = (out / "cells" / "seed=0,loss=l2" / "evaluation.json").read_bytes()
    with pytest.raises(ValueError, match=r"other settings \(lr: 0.001 → 0.002\)"):
        run_experiment(path, out, progress=lambda *_: None, settings={"lr": 0.002}, evaluate=fast)
    assert (out / "cells" / "seed=0,loss=l2" / "evaluation.json").read_bytes() == before


def test_more_epochs_extend_a_finished_cell_and_evaluate_it_again(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out, quiet = tmp_path / "out", (lambda *_: None)
    fast, only = {"images": 20, "samples": 20}, "seed=0,loss=l2"
    run_experiment(path, out, progress=quiet, only=only, evaluate=fast)
    cell = RunDir(out / "cells" / only)
    before = cell.read_evaluation()
    run_experiment(path, out, progress=quiet, only=only, evaluate=fast, settings={"epochs": 2})
    assert [row["epoch"] for row in cell.read_metrics()] == [1, 2]
    assert cell.read_evaluation()["test"] != before["test"]
    with pytest.raises(ValueError, match=r"other settings \(epochs: 2 → 1\)"):  # never fewer
        run_experiment(path, out, progress=quiet, only=only, evaluate=fast)


@pytest.mark.slow
def test_ray_runs_the_grid_like_one_process(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional dependency (pip install ray)")
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    run_experiment(path, tmp_path / "one", progress=lambda *_: None)
    run_experiment(path, tmp_path / "ray", progress=lambda *_: None, ray_address="local")
    one, on_ray = _rows(tmp_path / "one"), _rows(tmp_path / "ray")
    assert [r["cell"] for r in one] == [r["cell"] for r in on_ray]
    for a, b in zip(one, on_ray, strict=True):
        assert float(b["test_loss"]) == pytest.approx(float(a["test_loss"]), rel=1e-3)


def test_compare_from_the_cli_with_set_and_only(tmp_path, capsys):
    from robustvae.cli import main

    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "out"
    fast = ["--images", "20", "--samples", "20", "--no-fid"]
    args = ["compare", path, "--out", out, "--set", "width=0.05", "--only", "seed=1,*", *fast]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| logcosh |" in printed and f"report: {out / 'report.html'}" in printed
    assert sorted(p.name for p in (out / "cells").iterdir()) == [
        "seed=1,loss=l2",
        "seed=1,loss=logcosh",
    ]
    saved = json.loads((out / "cells" / "seed=1,loss=l2" / "config.json").read_text())
    assert saved["width"] == 0.05
    (out / "report.md").unlink()
    assert main(["report", path, "--out", out, "--set", "width=0.05"]) == 0  # trains nothing
    assert "2 of 4 cells finished" in capsys.readouterr().out
    assert "seed=1,loss=logcosh" in (out / "report.md").read_text()
    report = (out / "report.md").read_text()
    assert "seed=0,loss=l2: 0/1 epochs" in report  # not in the tables: named as not run
    assert "seed=0,loss=l2)" not in report  # no picture or row of it
    assert sorted(p.name for p in (out / "cells").iterdir())[0] == "seed=1,loss=l2"
    assert main(["compare", path, "--out", out, "--set", "epochs"]) == 2  # KEY=VALUE needed
    assert "--set needs KEY=VALUE" in capsys.readouterr().err
    assert main(["compare", path, "--out", out, "--set", "width=0.05", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[:4] == [
        "seed=0,loss=l2  (0/1 epochs)",
        "seed=0,loss=logcosh  (0/1 epochs)",
        "seed=1,loss=l2  (1/1 epochs)",
        "seed=1,loss=logcosh  (1/1 epochs)",
    ]
    assert re.fullmatch(
        rf"4 cells in {re.escape(str(out))}; about \dm\d\ds of training .*", listed[4]
    )
    assert sorted(p.name for p in (out / "cells").iterdir())[0] == "seed=1,loss=l2"  # none ran


def test_a_huge_grid_is_refused_before_any_cell_is_built(tmp_path, capsys):
    from robustvae.cli import main

    path = tmp_path / "huge.toml"
    axes = "\n".join(
        f"lr = [{', '.join(str(i * 1e-4 + k) for i in range(10))}]".replace("lr", ax)
        for k, ax in enumerate(["seed", "latent", "batch_size", "epochs", "lr", "width"])
    )
    path.write_text(TINY.replace("[grid]\nseed = [0, 1]", "[grid]\n" + axes))
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"expands to 2000000 cells .* limit of 1000.*--max-cells"):
        load_experiment(path)
    assert time.perf_counter() - started < 5  # parsed, not built: 10^6 cells took 99 s
    assert main(["compare", path, "--list"]) == 2
    assert "--max-cells 2000000" in capsys.readouterr().err
    small = tmp_path / "small.toml"
    small.write_text(TINY)
    with pytest.raises(ValueError, match="expands to 4 cells"):
        load_experiment(small, max_cells=3)
    assert len(load_experiment(small, max_cells=4).cells) == 4


def test_ray_missing_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    with pytest.raises(ValueError, match=r"pip install 'robustvae\[ray\]'"):
        run_experiment(path, tmp_path / "out", progress=lambda *_: None, ray_address="local")


def test_set_refuses_settings_that_vary_across_the_grid(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP)
    for key in ("arch", "loss", "recon_weight", "loss_params"):
        with pytest.raises(ValueError, match="would make them identical"):
            load_experiment(path, settings={key: "x"})


BROKEN = TINY.replace(
    '[[losses]]\nloss = "l2"',
    '[[losses]]\nloss = "l2"\n[[losses]]\nlabel = "broken"\nloss = "l1"\n'
    '[[overrides]]\nwhen = { loss = "broken" }\ndataset = "fashion-mnist"\n'
    'data_root = "/nonexistent/robustvae-test"',
)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_cell_does_not_stop_the_grid(tmp_path, jobs):
    from robustvae.experiments.runner import CellsFailed

    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    out, lines = tmp_path / "out", []
    fast = {"images": 20, "samples": 20}
    with pytest.raises(CellsFailed, match=r"2 of 6 cells failed(.|\n)*seed=1,loss=broken"):
        run_experiment(path, out, jobs=jobs, progress=lines.append, evaluate=fast)
    assert sum("FAILED" in line for line in lines) == 2
    finished = [row["cell"] for row in _rows(out)]
    assert sorted(finished) == sorted(
        f"seed={s},loss={loss}" for s in (0, 1) for loss in ("l2", "logcosh")
    )
    report = (out / "report.md").read_text()
    assert "| broken |" not in report  # no row in the tables; named as failed instead
    assert "Not in this report: 2 cell(s) of the grid — seed=0,loss=broken: failed (" in report


def test_changed_evaluation_settings_re_evaluate_without_retraining(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "out"
    run = out / "cells" / "seed=0,loss=l2"
    run_experiment(path, out, progress=lambda *_: None, only="seed=0,loss=l2")
    history = (run / "metrics.jsonl").read_bytes()
    weights = {p.name: p.stat().st_mtime_ns for p in run.glob("*.safetensors")}
    lines = []
    run_experiment(
        path, out, progress=lines.append, only="seed=0,loss=l2", evaluate={"samples": 30}
    )
    assert lines[0].endswith("1 cells, 0 already finished")
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["settings"]["samples"] == 30
    assert (run / "metrics.jsonl").read_bytes() == history
    assert {p.name: p.stat().st_mtime_ns for p in run.glob("*.safetensors")} == weights


def test_presets_overrides_reach_their_cells():
    def cells(name):
        return {c.id: c.config for c in load_experiment(PRESETS_DIR / f"{name}.toml").cells}

    celeba = cells("paper-celeba")
    assert celeba["kind=wae,arch=conv,seed=0,loss=logcosh"].model.loss_spec().kwargs == {"a": 2.5}
    assert celeba["kind=vae,arch=conv,seed=0,loss=logcosh"].model.loss_spec().kwargs == {"a": 100.0}
    assert {c.epochs for i, c in celeba.items() if "kind=vae," in i} == {68}
    assert {c.epochs for i, c in celeba.items() if "kind=wae" in i} == {55}
    barron = cells("barron-vae")
    assert {c.model.color for i, c in barron.items() if "pixels" in i} == {"rgb"}
    assert {c.model.color for i, c in barron.items() if "pixels" not in i} == {"yuv"}
    dct_adaptive = barron["representation=dct,seed=0,loss=adaptive"].model.loss_spec()
    assert dct_adaptive.kwargs["alpha_hi"] == 3.0
    assert celeba["kind=vaegan,arch=conv,seed=0,loss=vaegan"].epochs == 38
    assert celeba["kind=vaegan,arch=conv,seed=0,loss=vaegan"].model.latent_dim == 128
    for name in ("quick-mnist5k", "fashion-mnist"):
        configs = cells(name)
        widths = {(c.model.arch, c.model.width) for c in configs.values() if c.kind != "vaegan"}
        assert widths == {("mlp", 1.0), ("conv", 0.125)}, name
        # The VAE-GAN row: the conv override reaches it (its arch axis only labels it).
        (gan,) = [(i, c) for i, c in configs.items() if c.kind == "vaegan"][:1]
        assert "arch=conv" in gan[0] and gan[1].model.width == 0.125, name


def test_tables_after_only_cover_every_finished_cell_of_the_grid(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    out = tmp_path / "out"
    fast = {"images": 20, "samples": 20}
    for only in ("seed=1,loss=l2", "seed=0,loss=l2"):
        run_experiment(path, out, progress=lambda *_: None, only=only, evaluate=fast)
    assert [row["cell"] for row in _rows(out)] == ["seed=0,loss=l2", "seed=1,loss=l2"]
    assert "l2 | " in (out / "results.md").read_text()
    # The report names the cells it lacks, the training they need, and the device used.
    report = (out / "report.md").read_text()
    missing = [c.id for c in load_experiment(path).cells if "loss=l2" not in c.id]
    assert f"Not in this report: {len(missing)} cell(s) of the grid" in report
    assert all(f"{cell_id}: 0/" in report for cell_id in missing)
    assert re.search(r"training left: \d+m\d\ds\.", report)  # at the finished cells' pace
    assert "Trained on: cpu (2 cells)." in report


def test_an_entry_that_sets_a_grid_axis_pins_it(tmp_path):
    path = tmp_path / "pinned.toml"
    path.write_text(
        "[base]\ndataset = 'mnist-5k'\n[grid]\nkind = ['vae', 'wae']\narch = ['mlp', 'conv']\n"
        "seed = [0, 1]\n[[losses]]\nloss = 'l2'\n[[losses]]\nlabel = 'gan'\nkind = 'vaegan'\n"
        "arch = 'conv'\n[[overrides]]\nwhen = { arch = 'conv' }\nwidth = 0.125\n"
    )
    cells = {c.id: c for c in load_experiment(path).cells}
    assert len(cells) == 8 + 2  # the grid's l2 cells, and one VAE-GAN cell per seed
    gan = [c for c in cells.values() if c.axes["loss"] == "gan"]
    assert [c.id for c in gan] == [
        "kind=vaegan,arch=conv,seed=0,loss=gan",
        "kind=vaegan,arch=conv,seed=1,loss=gan",
    ]
    # arch labels the VAE-GAN's cells (it has its own nets); the conv override reaches them.
    assert all(c.config.kind == "vaegan" and c.config.model.width == 0.125 for c in gan)
    assert "arch" not in gan[0].config.to_dict()


def test_only_matches_key_value_parts_in_any_order():
    from robustvae.experiments.grid import matches_only

    cell = "kind=vae,arch=mlp,seed=0,loss=logcosh"
    assert matches_only(cell, "arch=mlp*")  # the README's example, on a grid with kind first
    assert matches_only(cell, "seed=0,kind=vae")
    assert matches_only(cell, "kind=vae,arch=mlp,*")  # a whole-id glob still works
    assert matches_only(cell, "loss=l[2o]*")
    assert not matches_only(cell, "arch=conv*")
    assert not matches_only(cell, "seed=0,kind=wae")


@pytest.mark.parametrize(
    "text,message",
    [
        ("base = 5", "'base' must be a table"),
        ("grid = [1, 2]", "'grid' must be a table"),
        ("evaluate = 5", "'evaluate' must be a table"),
        ("overrides = 5", "'overrides' must be an array of tables"),
        ("name = 5", "'name' must be a string"),
        ("losses = [1, 2]", "every entry of 'losses' must be a table"),
        ('[[losses]]\nloss = "logcosh"\nloss_params = 5', "loss_params"),
        ("[grid]\nseed = []", "axis seed has no values"),
        ('[evaluate]\nimages = "many"', "[evaluate]: evaluation images must be a positive integer"),
        ("[grid]\nseed = [1180591620717411303424]", "seed must be an integer in [0, 2**63)"),
        ("[base]\nepochs = 1" + "0" * 400, "epochs must be an int in [1, 1000000], got an int"),
        ("[grid]\nwidth = [1" + "0" * 400 + "]", "width must be a number in (0, 64], got an int"),
        ("[grid]\nwidht = [0.5, 1]", "[grid] axis 'widht' is not a run setting nor a setting of"),
        ('[grid]\nkind = ["vae", "restore"]\nnoise = ["text"]\nwidht = [1]', "axis 'widht'"),
        ('[evaluate]\nfid = "false"', "[evaluate]: evaluation fid must be true or false, got 'f"),
        ("[evaluate]\ninception = 5", "[evaluate]: evaluation inception must be a file name, got"),
        ("paired = 5", "'paired' must be a list of column names"),
        ('paired = ["fid", "nope"]', "paired column(s) ['nope'] are not in"),
    ],
)
def test_a_malformed_experiment_file_is_one_line_at_parse_time(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError) as caught:
        load_experiment(path)
    assert message in str(caught.value) and "bad.toml" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_rows_over_different_numbers_of_seeds_get_a_seeds_column():
    from robustvae.experiments.results import markdown_table, summary_table, table_caption

    experiment = load_experiment(PRESETS_DIR / "fashion-mnist.toml")
    rows = [
        {"arch": arch, "seed": seed, "loss": loss, "fid": fid + seed}
        for arch, seeds in (("mlp", (0, 1, 2)), ("conv", (0,)))
        for loss, fid in (("l2", 100.0), ("l1", 50.0))
        for seed in seeds
    ]
    table = markdown_table(summary_table(experiment, rows)).splitlines()
    assert table[0] == "| arch | loss | seeds | FID | Δ FID [95% interval] |"
    assert table[2] == "| mlp | l2 | 3 | 101 ± 1 | baseline |"
    assert table[3] == "| mlp | l1 | 3 | 51 ± 1 (-50%) | -50 [-50, -50] resolved |"
    assert table[5] == "| conv | l1 | 1 | 50 (-50%) | -50 (1 seed: no interval) |"
    assert table_caption(experiment, rows).startswith("mean ± std over each row's seeds")
    even = [r for r in rows if r["arch"] == "mlp"]
    assert "seeds" not in markdown_table(summary_table(experiment, even)).splitlines()[0]
    assert table_caption(experiment, even).startswith("mean ± std over 3 seeds")
    assert table_caption(experiment, even[:1]).startswith("one run per row")


def test_results_of_a_grid_run_in_parts_merge_in_grid_order(tmp_path, capsys):
    from robustvae.cli import main

    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    header = "cell,seed,loss,ssim,extra\n"
    (tmp_path / "a.csv").write_text(
        header + '"seed=1,loss=l2",1,l2,0.5,\n"seed=0,loss=l2",0,l2,0.7,\n'
    )
    (tmp_path / "b.csv").write_text('cell,seed,loss,ssim\n"seed=0,loss=logcosh",0,logcosh,0.9\n')
    merged = tmp_path / "merged.csv"
    args = ["report", str(path), "--results", str(tmp_path / "b.csv"), str(tmp_path / "a.csv")]
    assert main([*args, "--merge-into", str(merged)]) == 0
    table = capsys.readouterr().out
    with open(merged) as f:
        rows = list(csv.DictReader(f))
    assert [r["cell"] for r in rows] == ["seed=0,loss=l2", "seed=0,loss=logcosh", "seed=1,loss=l2"]
    assert rows[1]["extra"] == "" and rows[0]["ssim"] == "0.7"
    assert (
        "| l2 | 2 | 0.6 ± 0.14 |" in table and "| logcosh | 1 | 0.9 (+29%) |" in table
    )  # against l2's seed 0
    assert main(["report", str(path), "--results", str(merged)]) == 0
    assert capsys.readouterr().out == table

    (tmp_path / "c.csv").write_text('cell,ssim\n"seed=0,loss=l2",0.1\n')
    assert main(["report", str(path), "--results", str(merged), str(tmp_path / "c.csv")]) == 2
    assert "cell 'seed=0,loss=l2' is in both" in capsys.readouterr().err
    (tmp_path / "d.csv").write_text('cell,ssim\n"seed=7,loss=l2",0.1\n')
    assert main(["report", str(path), "--results", str(tmp_path / "d.csv")]) == 2
    assert "d.csv: cell 'seed=7,loss=l2' is not a cell of tiny" in capsys.readouterr().err
    assert main(["report", str(path), "--merge-into", str(merged)]) == 2
    assert "--merge-into takes the rows of --results" in capsys.readouterr().err
    (tmp_path / "e.csv").write_text('cell,ssim\n"seed=0,loss=l2",0.1\n"seed=0,loss=l2",0.2\n')
    assert main(["report", str(path), "--results", str(tmp_path / "e.csv")]) == 2
    assert "cell 'seed=0,loss=l2' is twice in " in capsys.readouterr().err
    for text, problem in [
        (
            'cell,ssim\n"seed=0,loss=l2",0.1\n"seed=1,loss=l2"\n',
            "line 3: 1 fields under a header of 2",
        ),
        ('cell,ssim\n"seed=0,loss=l2",0.1,9,9\n', "line 2: 4 fields under a header of 2"),
        ("ssim,psnr\n0.1,20\n", "no 'cell' column (not a results.csv)"),
    ]:
        (tmp_path / "f.csv").write_text(text)
        assert main(["report", str(path), "--results", str(tmp_path / "f.csv")]) == 2
        assert (
            capsys.readouterr()
            .err.strip()
            .endswith(f"f.csv{':' if 'cell' in problem else ''} {problem}")
        )
    (tmp_path / "bom.csv").write_text('\ufeffcell,ssim\n"seed=0,loss=l2",0.1\n', encoding="utf-8")
    assert main(["report", str(path), "--results", str(tmp_path / "bom.csv")]) == 0

    part = tmp_path / "part.csv"  # merging into one of the inputs, then again into itself
    part.write_text((tmp_path / "a.csv").read_text())
    capsys.readouterr()
    args = ["report", str(path), "--results", str(part), str(tmp_path / "b.csv")]
    assert main([*args, "--merge-into", str(part)]) == 0
    assert capsys.readouterr().out == table and part.read_text() == merged.read_text()
    assert main(["report", str(path), "--results", str(part), "--merge-into", str(part)]) == 0
    assert capsys.readouterr().out == table and part.read_text() == merged.read_text()


def test_the_time_left_is_the_training_left_shared_among_the_jobs():
    from robustvae.experiments.runner import GridProgress

    lines = []
    asked = []

    def training_left(finished):
        asked.append(set(finished))
        return 3600.0 if len(finished) == 1 else None

    tracker = GridProgress(4, 0, lines.append, training_left, slots=2)
    tracker.finished("a")  # an hour of epochs left in 3 cells, two at a time: half an hour
    assert lines[-1].startswith("[1/4] a  (0m00s elapsed, ~30m00s left")
    tracker.finished("b", "ValueError: x")  # no pace measured: the mean time per cell so far
    assert asked == [{"a"}, {"a", "b"}]
    assert re.fullmatch(
        r"\[2/4\] FAILED b: ValueError: x  \(0m00s elapsed, ~0m00s left\)", lines[-1]
    )
    tracker.finished("c")
    tracker.finished("d")
    assert lines[-1].endswith("~0m00s left)") and len(asked) == 3  # nothing asked at the end


def test_mean_band_aligns_runs_by_step_and_reads_sections():
    from robustvae.experiments.analysis import mean_band

    def row(step, share=None, acc=0.5):
        r = {"step": step, "test": {"acc_sampled": acc}}
        if share is not None:
            r["update_share"] = {"discriminator": share}
        return r

    # Epochs in which the discriminator never updated log no gradient norm; a frozen run
    # logs shares at every epoch. Seeds are compared at the same steps only.
    first = [row(40, 0.0, 1.0), row(80, 0.1, 0.8), row(120, 0.2, 0.6)]
    second = [row(40, 0.2, 0.8), row(80, None, 0.6)]
    steps, mean, std = mean_band([first, second], "update_share/discriminator")
    assert steps == [40] and mean == pytest.approx([0.1])
    steps, mean, std = mean_band([first, second], "acc_sampled")
    assert steps == [40, 80] and mean == pytest.approx([0.9, 0.7]) and std is not None
    assert mean_band([first], "grad_norm/discriminator") is None


@pytest.mark.parametrize(
    "base,message",
    [
        ('kind = "depth"\ndataset = "kitti-nope"', "the depth kind trains on: motorcycle, aloe"),
        ('kind = "restore"\ndataset = "folder"', "dataset 'folder' needs data_root"),
        ('kind = "vae"\ndataset = "photos"', "the vae kind trains on: mnist-5k"),
    ],
)
def test_a_dataset_the_kind_cannot_train_on_is_refused_when_the_file_is_read(
    base, message, tmp_path
):
    path = tmp_path / "bad.toml"
    path.write_text(f'name = "bad"\n[base]\n{base}\nepochs = 1\n[[losses]]\nloss = "l1"\n')
    with pytest.raises(ValueError, match=message):
        load_experiment(path)


def test_a_cell_id_too_long_for_a_directory_name_is_refused(tmp_path):
    path = tmp_path / "long.toml"
    path.write_text(f'name = "long"\n[[losses]]\nloss = "l1"\nlabel = "{"x" * 5000}"\n')
    with pytest.raises(ValueError, match="has an id of 5,005 bytes, longer than a directory name"):
        load_experiment(path)
