"""The README's results tables are generated: each one is the rendering of a committed results
file (docs/results/<preset>.csv) by ``robustvae report PRESET --results CSV``, and every
Markdown table in the README and the docs has the same number of cells in every row."""

import re
from pathlib import Path

import pytest

from robustvae.cli import main
from robustvae.experiments import load_experiment
from robustvae.experiments.results import MARKER, results_table, with_tables_rendered

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted((ROOT / "docs" / "results").glob("*.csv"))


def test_there_are_committed_results():
    assert {p.stem for p in RESULTS} >= {"quick-mnist5k", "vaegan-similarity"}


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.stem)
def test_each_results_table_in_the_readme_is_rendered_from_its_file(path, capsys):
    preset = ROOT / "experiments" / f"{path.stem}.toml"
    table = results_table(load_experiment(preset), path)
    assert table in (ROOT / "README.md").read_text(), f"README's {path.stem} table is stale"
    assert main(["report", preset, "--results", path]) == 0
    assert capsys.readouterr().out == table


def test_each_results_file_has_its_marked_table_and_none_is_stale():
    text = (ROOT / "README.md").read_text()
    marked = [m.group(1) for line in text.splitlines() if (m := MARKER.match(line))]
    assert sorted(marked) == sorted(p.stem for p in RESULTS)
    rendered = with_tables_rendered(text, ROOT / "docs" / "results", ROOT / "experiments")
    assert rendered == text, "run scripts/render_readme_tables.py"


def test_rendering_replaces_the_marked_table_only(tmp_path):
    stale = "intro\r\n<!-- results: sweep-a-lambda -->\r\n| old | table |\n| --- | --- |\nafter\n"
    new = with_tables_rendered(stale, ROOT / "docs" / "results", ROOT / "experiments")
    table = results_table(
        load_experiment(ROOT / "experiments" / "sweep-a-lambda.toml"),
        ROOT / "docs" / "results" / "sweep-a-lambda.csv",
    )
    assert new == "intro\r\n<!-- results: sweep-a-lambda -->\r\n" + table + "after\n"


def _tables(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.lstrip().startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


@pytest.mark.parametrize("path", ["README.md", "BENCHMARKS.md", *(
    str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md"))
)])  # fmt: skip
def test_every_markdown_table_has_as_many_cells_in_every_row(path):
    for table in _tables((ROOT / path).read_text()):
        counts = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(counts) == 1, f"{path}: a table's rows have {sorted(counts)} bars:\n{table[0]}"


def test_the_check_catches_a_ragged_table():
    ragged = "| a | b |\n| --- | --- |\n| 1 | 2 | 3 |\n"
    (table,) = _tables(ragged)
    assert len({len(re.findall(r"(?<!\\)\|", row)) for row in table}) == 2


def test_the_shipped_classifiers_table_is_rendered_from_their_manifest():
    from robustvae.evaluation.fid_classifiers import shipped_table

    assert shipped_table() in (ROOT / "README.md").read_text()


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_every_python_example_in_the_readme_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)  # examples write under runs/
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
    assert "logcosh (16, 1, 28, 28)" in capsys.readouterr().out


def test_the_shipped_restorers_table_is_rendered_from_their_manifest():
    from robustvae.restoration.shipped import shipped_table

    assert shipped_table() in (ROOT / "README.md").read_text()


def _readme_command(start: str) -> list[str]:
    """The README's shell command that begins with ``start``, continuation lines joined and
    comments dropped, as argv after ``robustvae``."""
    import shlex

    lines = (ROOT / "README.md").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    words, i = [], first
    while True:
        line = lines[i].split(" #")[0].rstrip()
        words += shlex.split(line.rstrip("\\"))
        if not line.endswith("\\"):
            break
        i += 1
    assert words[0] == "robustvae"
    return words[1:]


# The README's first training example of a kind → (its preset, the cell it should train as)
README_EXAMPLES = {
    "robustvae restore train --out runs/text-logcosh": ("text-removal", "seed=0,loss=logcosh"),
    "robustvae depth train --out runs/d-a0": ("stereo-depth", "input=cost,seed=0,loss=alpha-0"),
    "robustvae depth train --out runs/d-ann": (
        "stereo-depth",
        "input=cost,seed=0,loss=annealed-2-0",
    ),
    "robustvae depth train --out runs/d-ad": ("stereo-depth", "input=cost,seed=0,loss=adaptive"),
}


@pytest.mark.parametrize("start", README_EXAMPLES, ids=lambda s: s.split()[-1])
def test_the_readme_training_example_trains_as_its_preset_cell(start, monkeypatch, tmp_path):
    """A new user who copies the README's example gets the preset's run, setting for setting
    (the output place and TensorBoard aside)."""
    import robustvae.training

    preset, cell_id = README_EXAMPLES[start]
    trained = []

    def record(config, run_dir, resume=False, report=None):
        trained.append(config)
        raise KeyboardInterrupt  # stop before any training

    monkeypatch.setattr(robustvae.training, "train", record)
    monkeypatch.chdir(tmp_path)
    main(_readme_command(start))
    cell = next(
        c for c in load_experiment(ROOT / "experiments" / f"{preset}.toml").cells if c.id == cell_id
    )
    ignored = {"tensorboard", "progress"}
    example = {k: v for k, v in trained[0].to_dict().items() if k not in ignored}
    expected = {k: v for k, v in cell.config.to_dict().items() if k not in ignored}
    differ = {k: (example[k], expected[k]) for k in example if example[k] != expected[k]}
    assert not differ, f"the README's example differs from {preset}'s {cell_id}: {differ}"
