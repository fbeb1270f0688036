"""The trainer's seams, through toy kinds (tests/toys.py): several parameter groups with their
own optimizers, paired inputs made per step, named optimizers in checkpoints, bit-for-bit
resume, data parallelism, and evaluation that is deterministic and independent of mode."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from robustvae.kinds import KINDS
from robustvae.task import Updates
from robustvae.training import RunConfig, load_checkpoint, load_run, train
from robustvae.training.terms import step_generator, test_terms

QUIET = dict(progress=False, tensorboard=False, device="cpu")
pytestmark = pytest.mark.usefixtures("toys")
HERE = Path(__file__).parent


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "settings",
    [
        dict(kind="gan-toy", batch_size=32, batchnorm=True),
        dict(kind="paired-toy", batch_size=16),
        # every kind takes a schedule and weight averaging: two groups, batch norm, pairs
        dict(kind="gan-toy", batch_size=32, batchnorm=True, ema=0.9, lr_schedule="cosine"),
        dict(kind="paired-toy", batch_size=16, ema=0.5, lr_schedule="rampdown", warmup_steps=3),
    ],
)
def test_toys_train_checkpoint_and_resume_bit_for_bit(tmp_path, settings):
    config = RunConfig.make(epochs=3, **settings, **QUIET)
    whole = train(config, tmp_path / "whole")

    def interrupt(line):  # killed in epoch 3, before its checkpoint
        if line.startswith("epoch 3/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "split", report=interrupt)
    resumed = train(config, tmp_path / "split", resume=True)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert _strip(whole.metrics) == _strip(resumed.metrics)
    groups = set(resumed.model.parameter_groups())
    assert set(load_checkpoint(tmp_path / "split" / "latest.safetensors").optimizers) == groups
    _, loaded = load_run(tmp_path / "split", "latest")
    saved = load_checkpoint(tmp_path / "split" / "latest.safetensors")
    expected = saved.averaged if "ema" in settings else resumed.model.state_dict()
    assert bool(saved.averaged) == ("ema" in settings)
    for key, value in expected.items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_adversarial_toy_learns_and_best_follows_its_metric(tmp_path):
    result = train(RunConfig.make(kind="gan-toy", epochs=6, batch_size=32, **QUIET), tmp_path / "r")
    errors = [row["test"]["moment_error"] for row in result.metrics]
    assert errors[-1] < 0.5 * errors[0]  # the generator's mean moves towards (2, -1)
    best = load_checkpoint(tmp_path / "r" / "best.safetensors").meta
    assert best["best_metric"] == "moment_error" and best["best"] == min(errors)
    assert best["epoch"] == errors.index(min(errors)) + 1


def test_paired_task_loss_falls_and_uses_a_fresh_corruption_each_step(tmp_path):
    result = train(RunConfig.make(kind="paired-toy", epochs=4, batch_size=16, **QUIET), tmp_path)
    losses = [row["train"]["loss"] for row in result.metrics]
    assert losses[-1] < losses[0]
    # The per-step generator depends on seed, epoch, step and rank only.
    draw = [torch.randn(3, generator=step_generator(0, 1, 2, 0)) for _ in range(2)]
    assert torch.equal(draw[0], draw[1])
    others = [step_generator(1, 1, 2, 0), step_generator(0, 2, 2, 0), step_generator(0, 1, 3, 0)]
    assert all(not torch.equal(torch.randn(3, generator=g), draw[0]) for g in others)
    assert not torch.equal(torch.randn(3, generator=step_generator(0, 1, 2, 1)), draw[0])


def test_each_update_changes_only_its_own_group():
    from toys import GanToy, GanToyConfig, load_gan_data

    torch.manual_seed(0)
    task = GanToy(GanToyConfig())
    groups = task.parameter_groups()
    optimizers = {name: g.build(0.1) for name, g in groups.items()}
    updates = Updates(optimizers, reduce=lambda params: None, check=lambda terms, log: None)
    batch = {k: v[:32] for k, v in load_gan_data(None)[0].tensors.items()}
    terms = task.loss_terms(batch)
    before = _state(task)
    updates.begin()
    updates.backward("discriminator", terms["d_real"] + terms["d_fake"], terms, True)
    d_grads = [p.grad.clone() for p in task.discriminator.parameters()]
    # The generator's loss flows through the discriminator, whose gradients it leaves alone.
    updates.backward("generator", terms["g_loss"])
    for p, grad in zip(task.discriminator.parameters(), d_grads, strict=True):
        assert torch.equal(p.grad, grad)
    assert all(p.grad is not None for p in task.generator.parameters())
    updates.apply("discriminator")
    after_d = _state(task)
    changed = {k for k in before if not torch.equal(before[k], after_d[k])}
    assert changed and all(k.startswith("discriminator.") for k in changed)
    updates.apply("generator")
    after_g = _state(task)
    changed = {k for k in after_d if not torch.equal(after_d[k], after_g[k])}
    assert changed == {"generator.weight", "generator.bias"}
    with pytest.raises(KeyError, match="no parameter group 'critic'"):
        updates.step("critic", terms["g_loss"])
    updates.skip("discriminator")
    assert updates.skipped == {"discriminator": 1, "generator": 0}


def test_checks_run_once_per_step_before_any_update():
    seen = []
    param = torch.nn.Parameter(torch.ones(1))
    updates = Updates(
        {"a": torch.optim.SGD([param], lr=0.1)}, lambda p: None, lambda *args: seen.append(args)
    )
    for _ in range(2):
        updates.begin()
        loss = (param * 2).sum()
        updates.step("a", loss, {"loss": loss}, retain_graph=True)
        updates.step("a", loss)
    assert len(seen) == 2 and list(seen[0][0]) == ["loss"] and seen[0][1] is True
    updates.begin()  # no terms given: the loss is checked, the returned terms will be logged
    updates.step("a", (param * 3).sum())
    assert list(seen[2][0]) == ["a"] and seen[2][1] is False and not updates.logged


def _old_format_checkpoint(path, model, optimizer, meta):
    """A checkpoint as version 1 wrote it: one optimizer, ``optimizer.state.<i>.<key>``."""
    from robustvae.training.checkpoint import rng_state

    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    plain = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.state.{index}.{key}"] = value
            else:
                plain.setdefault(str(index), {})[key] = value
    tensors.update(rng_state())
    info = {
        "format": "robustvae-checkpoint-1",
        "meta": meta,
        "optimizer": {"param_groups": state["param_groups"], "plain_state": plain},
    }
    save_file(tensors, str(path), metadata={"robustvae": json.dumps(info)})


def test_checkpoints_of_the_previous_format_still_resume(tmp_path):
    config = RunConfig.make(dataset="mnist-5k", width=0.2, epochs=2, **QUIET)
    whole = train(config, tmp_path / "whole")
    first = train(config.replace(epochs=1), tmp_path / "old")
    checkpoint = load_checkpoint(tmp_path / "old" / "latest.safetensors")
    optimizer = torch.optim.Adam(first.model.parameters())
    optimizer.load_state_dict(checkpoint.optimizers["model"])
    meta = {k: v for k, v in checkpoint.meta.items() if k != "best_metric"}
    meta["config"] = {k: v for k, v in meta["config"].items() if k != "prior_scale"}  # older
    torch.set_rng_state(checkpoint.rng["rng.torch"])
    _old_format_checkpoint(tmp_path / "old" / "latest.safetensors", first.model, optimizer, meta)
    with pytest.warns(UserWarning, match="without a checksum"):
        resumed = train(config, tmp_path / "old", resume=True)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_evaluation_is_deterministic_and_independent_of_mode(tmp_path, arch):
    from robustvae.evaluation import evaluate_run

    config = RunConfig.make(dataset="mnist-5k", arch=arch, width=0.125, epochs=1, **QUIET)
    train(config, tmp_path)
    first = evaluate_run(tmp_path, images=100, samples=200, fid=False)
    again = evaluate_run(tmp_path, images=100, samples=200, fid=False)
    assert first == again
    from robustvae.evaluation.autoencoder import mmd_to_prior

    _, model = load_run(tmp_path)
    images = next(iter(KINDS["vae"].load_data(config)[1].tensors.values()))[:100]
    values = []
    for mode in (True, False):
        model.train(mode)
        values.append(mmd_to_prior(model, images, torch.Generator().manual_seed(0), "cpu"))
        assert model.training is mode  # the caller's mode is restored
    assert values[0] == values[1]
    test = KINDS["vae"].load_data(config)[1]
    model.train()
    torch.manual_seed(5)
    in_train_mode = test_terms(model, test, torch.device("cpu"))
    assert model.training
    model.eval()
    torch.manual_seed(5)
    assert test_terms(model, test, torch.device("cpu")) == in_train_mode


def _torchrun(out: Path, kind: str, settings: dict) -> None:
    env = {**os.environ, "ROBUSTVAE_COMPILE": "0", "OMP_NUM_THREADS": "1"}
    pairs = [f"{k}={json.dumps(v)}" for k, v in settings.items()]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
    command += ["2", str(HERE / "ddp_toy.py"), str(out), kind, *pairs]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_process_ddp_matches_one_process_for_two_groups(tmp_path):
    # SGD without momentum, noise in the data: the runs differ only in summation order, and a
    # gradient summed over ranks instead of averaged would double every step.
    settings = dict(kind="gan-toy", epochs=3, batch_size=32, **QUIET)
    single = train(RunConfig.make(**settings), tmp_path / "one")
    _torchrun(tmp_path / "two", "gan-toy", {k: v for k, v in settings.items() if k != "kind"})
    ranks = [load_file(str(tmp_path / "two" / f"rank{r}.safetensors")) for r in (0, 1)]
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ranks[0][key], value, rtol=1e-5, atol=1e-6)
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    rows = [
        json.loads(x) for x in (tmp_path / "two" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [r["step"] for r in single.metrics] == [8, 16, 24]


def test_two_process_ddp_keeps_batchnorm_consistent_for_a_paired_task(tmp_path):
    settings = dict(epochs=2, batch_size=16, **QUIET)
    _torchrun(tmp_path, "paired-toy", settings)
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1)]
    assert "net.1.running_mean" in ranks[0]
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    _, saved = load_run(tmp_path / "run", "latest")
    for key, value in saved.state_dict().items():
        assert torch.equal(ranks[0][key], value), key


def test_adaptive_alpha_and_scale_are_logged_every_epoch(tmp_path):
    from robustvae.training import RunConfig, train

    config = RunConfig.make(
        loss="adaptive", epochs=2, width=0.25, progress=False, tensorboard=False
    )
    result = train(config, tmp_path)
    adaptive = result.model.adaptive_loss()
    for row in result.metrics:
        stats = row["statistics"]
        assert 0.001 < stats["alpha_min"] <= stats["alpha_median"] <= stats["alpha_max"] < 1.999
        assert 1e-5 < stats["scale_min"] <= stats["scale_median"] <= stats["scale_max"]
    assert result.metrics[-1]["statistics"]["alpha_median"] == pytest.approx(
        adaptive.alpha().median().item()
    )
    plain = train(config.replace(loss="l2", epochs=1), tmp_path / "l2")
    assert "statistics" not in plain.metrics[-1]


def test_evaluate_without_labels_skips_fid_and_draws_only_the_samples_it_scores(tmp_path):
    from small_data import photo_folder as _folder

    from robustvae.evaluation import evaluate_run
    from robustvae.training import RunConfig, train

    root = _folder(tmp_path, n_train=8)
    config = RunConfig.make(
        dataset="folder",
        data_root=str(root),
        image_size=28,
        epochs=1,
        batch_size=4,
        width=0.25,
        progress=False,
        tensorboard=False,
    )
    train(config, tmp_path / "run")
    results = evaluate_run(tmp_path / "run", images=1000, samples=10000, fid=True)
    assert "fid" not in results and "no labels" in results["fid_skipped"]
    assert results["images_used"] == results["samples_drawn"] <= 2  # the folder's test split


def test_updates_report_each_groups_share_and_mean_gradient_norm():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    optimizers = {"a": torch.optim.SGD([a], lr=0.0), "b": torch.optim.SGD([b], lr=0.0)}
    updates = Updates(optimizers, reduce=lambda params: None, check=lambda terms, log: None)
    scales = [1.0, 2.0, 3.0, 4.0]
    for step, scale in enumerate(scales):
        updates.begin()
        updates.step("a", scale * (3 * a[0] + 4 * a[1]))  # gradient norm 5·scale
        if step % 2 == 0:
            updates.step("b", scale * b.sum())  # gradient norm √3·scale
        else:
            updates.skip("b")
    health = updates.health()
    assert health["update_share"] == {"a": 1.0, "b": 0.5}
    assert health["grad_norm"]["a"] == pytest.approx(5 * sum(scales) / 4)
    assert health["grad_norm"]["b"] == pytest.approx(3**0.5 * (1.0 + 3.0) / 2)
    updates.reset_epoch()
    assert updates.health() == {"update_share": {"a": 0.0, "b": 0.0}, "grad_norm": {}}
    assert updates.skipped == {"a": 0, "b": 0}


def test_a_multi_group_run_logs_its_update_shares_every_epoch(tmp_path):
    result = train(RunConfig.make(kind="gan-toy", epochs=2, batch_size=32, **QUIET), tmp_path)
    from robustvae.training.progress import epoch_line

    assert "updates discriminator 100%, generator 100%" in epoch_line(result.metrics[0], 2)
    for row in result.metrics:
        assert set(row["update_share"]) == set(result.model.parameter_groups())
        assert all(0 < share <= 1 for share in row["update_share"].values())
        assert all(norm > 0 for norm in row["grad_norm"].values())


def test_the_epoch_line_gives_the_whole_runs_time_left():
    from robustvae.training.progress import epoch_line, time_left

    rows = [{"epoch": 1, "step": 5, "seconds": 10.0, "train": {}, "test": {}}]
    rows.append({"epoch": 2, "step": 10, "seconds": 20.0, "train": {}, "test": {}})
    assert time_left(rows, 10) == 15.0 * 8
    line = epoch_line(rows[-1], 10, time_left(rows, 10))
    assert line.startswith("epoch 2/10 (20.0 s, 2m00s left)")
    assert epoch_line(rows[-1], 2, time_left(rows, 2)).startswith("epoch 2/2 (20.0 s)")
    assert time_left([], 5) is None


def test_no_progress_bar_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    from robustvae.training import progress

    batches = [1, 2, 3]
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False)
    assert list(progress.progress_bar(batches, 0, 1, show=True)) == batches
    assert capsys.readouterr().err == ""


def test_missing_tensorboard_is_one_warning_not_silence(tmp_path, monkeypatch):
    from robustvae.training import trainer

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed
    with pytest.warns(UserWarning, match=r"no TensorBoard logs: .*robustvae\[tensorboard\]"):
        assert trainer._tensorboard(tmp_path, enabled=True) is None
    assert trainer._tensorboard(tmp_path, enabled=False) is None


def test_a_weighted_term_averages_over_what_each_batch_knows():
    """A depth error over known pixels, weighed by the known share: a batch with no known
    pixel counts for nothing (not as a 0), and a term no batch defined is left out."""
    import torch

    from robustvae.training.monitor import TermMonitor, weighted_means

    monitor = TermMonitor(0, lambda v: v, lambda: "", weighted={"epe": "known", "x": "zero"})
    for epe, known in ((10.0, 1.0), (0.0, 0.0), (4.0, 0.5)):
        terms = {"epe": torch.tensor(epe), "known": torch.tensor(known), "zero": torch.tensor(0.0)}
        terms["x"] = torch.tensor(3.0)
        monitor.push(terms, 0, 0, rows=4, log=True)
    means = weighted_means(monitor.names, monitor.totals())
    assert means["epe"] == (10 * 1 + 4 * 0.5) / 1.5  # not (10 + 0 + 4) / 3
    assert means["known"] == 0.5 and means["zero"] == 0.0 and "x" not in means
