"""Paired statistics: the intervals against scipy, the resolved mark, and the tables."""

import json
from pathlib import Path

import pytest
from scipy import stats

from robustvae.experiments import load_experiment
from robustvae.experiments.results import markdown_table, summary_table, table_caption
from robustvae.significance import (
    better_on,
    paired_difference,
    paired_text,
    per_image_text,
    signed_rank,
)

PRESETS_DIR = Path(__file__).resolve().parents[1] / "experiments"

ROW = [0.61, 0.55, 0.72, 0.58, 0.66]
BASE = [0.52, 0.50, 0.60, 0.57, 0.49]


def test_the_interval_is_scipys_paired_t_interval():
    paired = paired_difference(ROW, BASE)
    expected = stats.ttest_rel(ROW, BASE).confidence_interval(0.95)
    assert paired.mean == pytest.approx(sum(ROW) / 5 - sum(BASE) / 5, rel=1e-12)
    assert (paired.low, paired.high) == pytest.approx((expected.low, expected.high), rel=1e-12)
    assert paired.pairs == 5 and paired.resolved  # every seed above its baseline


def test_seeds_that_straddle_the_baseline_are_not_resolved():
    paired = paired_difference([0.6, 0.4, 0.55], [0.5, 0.5, 0.5])
    assert paired.low < 0 < paired.high and not paired.resolved
    assert "resolved" not in paired_text(paired)


def test_one_seed_has_no_interval_and_is_never_resolved():
    paired = paired_difference([3.0], [1.0])
    assert paired.low is None and not paired.resolved
    assert paired_text(paired) == "+2 (1 seed: no interval)"


def test_a_consistent_but_small_shift_is_resolved():
    paired = paired_difference([1.01, 2.01, 3.02, 4.01], [1.0, 2.0, 3.0, 4.0])
    assert paired.resolved and paired_text(paired).endswith(" resolved")


def test_mismatched_pairs_are_an_error():
    with pytest.raises(ValueError, match="need pairs"):
        paired_difference([1.0, 2.0], [1.0])


def test_signed_rank_is_wilcoxons_exact_p():
    # Ten images all better: the exact two-sided p is 2 / 2**10.
    assert signed_rank([1.0 + i for i in range(10)], [0.5 + i for i in range(10)]) == (
        pytest.approx(2 / 1024)
    )
    assert signed_rank([1.0, 2.0], [1.0, 2.0]) is None  # every pair ties


def test_better_on_counts_one_side_of_the_diagonal_with_clopper_pearson():
    count = better_on([0.6] * 9 + [0.4], [0.5] * 10, higher_is_better=True)
    assert (count.better, count.images) == (9, 10)
    # Clopper–Pearson for 9 of 10 (Clopper & Pearson 1934; any binomial table).
    assert (count.low, count.high) == pytest.approx((0.5550, 0.9975), abs=1e-4)
    lower = better_on([0.6] * 9 + [0.4], [0.5] * 10, higher_is_better=False)
    assert lower.better == 1
    assert per_image_text(0.002, count) == "p = 0.002; better on 9/10 [0.55, 1.00]"
    tied = better_on([0.6] * 3 + [0.5] * 7, [0.5] * 10, higher_is_better=True)
    assert (tied.better, tied.ties) == (3, 7)
    assert per_image_text(0.25, tied).startswith("p = 0.25; better on 3/10, 7 tied [")
    assert per_image_text(None, better_on([0.6], [0.5], True)) == "1 image: no test"


def _depth_rows(l1, other):
    return [
        {"input": "cost", "seed": seed, "loss": loss, "avg": value}
        for loss, values in (("l1", l1), ("alpha=0", other))
        for seed, value in enumerate(values)
    ]


def test_the_table_marks_a_resolved_row_and_not_a_straddling_one():
    experiment = load_experiment(PRESETS_DIR / "stereo-depth.toml")
    resolved = markdown_table(summary_table(experiment, _depth_rows([1, 2, 3], [1.1, 2.1, 3.12])))
    header, _, base, row = resolved.splitlines()[:4]
    assert header.endswith("| Δ Avg [95% interval] |")
    assert base.endswith("| baseline |") and row.endswith(" resolved |")
    straddling = summary_table(experiment, _depth_rows([1, 2, 3], [1.2, 1.9, 3.0]))
    assert not straddling.body[1][-1].endswith("resolved")
    assert "Student-t 95% interval" in table_caption(experiment, _depth_rows([1], [2]))


def test_the_table_pairs_by_seed_not_by_order():
    experiment = load_experiment(PRESETS_DIR / "stereo-depth.toml")
    rows = _depth_rows([1, 2, 3], [1.1, 2.1, 3.1])
    rows[3:] = rows[3:][::-1]  # the other loss's seeds listed in another order
    assert summary_table(experiment, rows).body[1][-1].endswith(" resolved")


def test_restoration_rows_are_compared_image_by_image():
    experiment = load_experiment(PRESETS_DIR / "text-removal.toml")
    base = {f"image{i}": 0.5 + 0.01 * i for i in range(10)}
    rows = []
    for seed in (0, 1):
        for loss, shift in (("l2", 0.0), ("l1", 0.02), ("logcosh", -0.01)):
            scores = {name: value + shift + 0.001 * seed for name, value in base.items()}
            mean = sum(scores.values()) / len(scores)
            rows.append(
                {"seed": seed, "loss": loss, "ssim": mean, "per_image_ssim": json.dumps(scores)}
            )
    table = summary_table(experiment, rows)
    assert table.header[-1] == "per crop: SSIM against l2"
    assert table.body[0][-1] == "baseline"
    assert table.body[1][-1] == "p = 0.002; better on 10/10 [0.69, 1.00]"
    assert table.body[2][-1] == "p = 0.002; better on 0/10 [0.00, 0.31]"
    assert "Wilcoxon" in table_caption(experiment, rows)
    # A seed scored on fewer images: the images every run scored are compared.
    fewer = json.loads(rows[3]["per_image_ssim"])
    del fewer["image0"]
    rows[3]["per_image_ssim"] = json.dumps(fewer)
    assert summary_table(experiment, rows).body[0][-1] == "baseline"
    assert "better on 9/9" in summary_table(experiment, rows).body[1][-1]
    # Without per-image scores the caption does not describe a column the table lacks.
    bare = [{k: v for k, v in r.items() if k != "per_image_ssim"} for r in rows]
    assert "Wilcoxon" not in table_caption(experiment, bare)


def _cell(table, row: int, title: str) -> str:
    return table.body[row][table.header.index(title)]


def test_fewer_shared_seeds_than_the_row_has_are_named():
    experiment = load_experiment(PRESETS_DIR / "stereo-depth.toml")
    rows = _depth_rows([1, 2], [1.1, 2.1, 3.1])
    delta = "Δ Avg [95% interval]"
    assert _cell(summary_table(experiment, rows), 1, delta).endswith(" (2 of 3 seeds)")
    lonely = [r for r in rows if not (r["loss"] == "alpha=0" and r["seed"] in (0, 1))]
    assert _cell(summary_table(experiment, lonely), 1, delta) == "no shared seed"
    third = _depth_rows([1, 2, 3], [3.1])
    third = [dict(r, seed=2) if r["loss"] == "alpha=0" else r for r in third]
    assert _cell(summary_table(experiment, third), 1, delta) == "+0.1 (1 seed: no interval)"


def test_two_seeds_give_the_t_interval_with_one_degree_of_freedom():
    import statistics

    paired = paired_difference([1.0, 2.0], [0.5, 1.0])  # differences 0.5 and 1.0
    half = stats.t.ppf(0.975, 1) * statistics.stdev([0.5, 1.0]) / 2**0.5
    assert stats.t.ppf(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert (paired.low, paired.high) == pytest.approx((0.75 - half, 0.75 + half), rel=1e-12)


def test_non_finite_values_are_left_out_not_raised():
    experiment = load_experiment(PRESETS_DIR / "stereo-depth.toml")
    rows = _depth_rows([1, 2, 3], [1.1, float("nan"), 3.1])
    table = summary_table(experiment, rows)
    assert _cell(table, 1, "Avg") == "2.1 ± 1.4 (n=2) (+5%)"  # the NaN seed is left out
    assert _cell(table, 1, "Δ Avg [95% interval]") == "+0.1 [+0.1, +0.1] resolved"


def test_a_row_of_another_kind_has_no_baseline_row():
    experiment = load_experiment(PRESETS_DIR / "fashion-mnist.toml")
    cells = {c.axes["loss"]: c.id for c in experiment.cells if c.axes["arch"] == "conv"}
    rows = [
        {"cell": cells[loss], "arch": "conv", "seed": 0, "loss": loss, "fid": fid}
        for loss, fid in (("l2", 100.0), ("vaegan", 90.0))
    ]
    table = summary_table(experiment, rows)
    assert table.body[1][-1] == "no baseline row of its kind"
