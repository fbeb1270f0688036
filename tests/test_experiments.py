import re
from pathlib import Path

import pytest

from robustvae.experiments import load_experiment, run_experiment
from robustvae.experiments import runner as runner_module

PRESETS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))

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
    assert experiment.cells[1].config.loss_params == {"a": 100.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ('nmae = "x"', "unknown key"),
        ("[base]\nepocs = 3", "unknown run setting"),
        ('baseline = "l3"\n[[losses]]\nloss = "l2"', "baseline"),
        ("[[losses]]\nlabel = 'x'", "needs a 'loss'"),
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

    trained = []
    real = runner_module._run_cell

    def counting(cell, cell_dir, evaluate, threads):
        trained.append(cell.id)
        return real(cell, cell_dir, evaluate, threads)

    monkeypatch.setattr(runner_module, "_run_cell", counting)
    (out / "cells" / "seed=1,loss=logcosh" / "evaluation.json").unlink()  # as if interrupted
    run_experiment(path, out, progress=lambda *_: None)
    assert trained == ["seed=1,loss=logcosh"]


def test_parallel_jobs_give_the_same_results_as_one(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    run_experiment(path, tmp_path / "one", progress=lambda *_: None)
    run_experiment(path, tmp_path / "two", jobs=2, progress=lambda *_: None)
    import csv

    def rows(name):
        with open(tmp_path / name / "results.csv") as f:
            return list(csv.DictReader(f))

    one, two = rows("one"), rows("two")
    assert [r["cell"] for r in one] == [r["cell"] for r in two]
    for a, b in zip(one, two, strict=True):  # threads per process differ: float sums too
        assert float(b["sharpness_generated"]) == pytest.approx(
            float(a["sharpness_generated"]), rel=1e-2
        )
        assert float(b["test_loss"]) == pytest.approx(float(a["test_loss"]), rel=1e-3)
