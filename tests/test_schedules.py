"""Learning-rate schedules (robustvae.training.schedule.LRSchedule and the run settings):
their shapes against hand computations, the settings' checks, old runs' ``schedule``, and a
scheduled run that resumes bit for bit."""

import math

import pytest
import torch

from robustvae.training import RunConfig, train
from robustvae.training.schedule import LRSchedule

QUIET = dict(progress=False, tensorboard=False, device="cpu")


def test_constant_and_warmup():
    schedule = LRSchedule("constant", total_steps=100, steps_per_epoch=10, warmup_steps=4)
    assert [schedule.factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert LRSchedule("constant", 100, 10).factor(99) == 1.0


def test_step_with_one_factor_or_one_per_milestone():
    one = LRSchedule("step", 100, 10, milestones=(3, 5), gamma=(0.1,))
    assert [one.factor(s) for s in (0, 29, 30, 49, 50, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )
    celeba = LRSchedule("step", 1000, 10, milestones=(30, 50), gamma=(0.5, 0.2))
    assert [celeba.factor(s) for s in (299, 300, 499, 500)] == pytest.approx([1, 0.5, 0.5, 0.1])


def test_cosine_goes_from_one_to_zero():
    schedule = LRSchedule("cosine", total_steps=101, steps_per_epoch=10)
    assert schedule.factor(0) == 1.0 and schedule.factor(100) == pytest.approx(0.0, abs=1e-12)
    assert schedule.factor(50) == pytest.approx(0.5)
    assert schedule.factor(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_rampdown_is_noise2noise_squared_cosine_over_the_last_share():
    schedule = LRSchedule("rampdown", total_steps=100, steps_per_epoch=10, rampdown_fraction=0.3)
    assert all(schedule.factor(s) == 1.0 for s in range(70))
    # Noise2Noise: ((0.5 + cos(π·t)/2))², t = (i − start)/(0.3·total).
    for step in (70, 80, 85, 99):
        t = (step - 70) / 30
        assert schedule.factor(step) == pytest.approx((0.5 + math.cos(math.pi * t) / 2) ** 2)
    assert schedule.factor(85) == pytest.approx(0.25)


def test_settings_are_checked_and_take_lists_from_the_command_line():
    config = RunConfig.make(lr_schedule="step", lr_milestones="3, 5", lr_gamma="0.5,0.2")
    assert config.lr_milestones == (3, 5) and config.lr_gamma == (0.5, 0.2)
    assert config.to_dict()["lr_milestones"] == [3, 5]
    assert RunConfig.make(lr_gamma=0.5).lr_gamma == (0.5,)
    for bad, message in [
        (dict(lr_schedule="linear"), "lr_schedule must be one of"),
        (dict(warmup_steps=-1), "warmup_steps"),
        (dict(lr_milestones=[5, 3]), "increasing"),
        (dict(lr_milestones=[1.5]), "whole epochs"),
        (dict(lr_milestones=[3, 5], lr_gamma=[0.5, 0.2, 0.1]), "3 factors for 2"),
        (dict(lr_gamma=[0.0]), "lr_gamma"),
        (dict(lr_milestones="3,x"), "separated by commas"),
        (dict(rampdown_fraction=1.5), "rampdown_fraction"),
    ]:
        with pytest.raises(ValueError, match=message):
            RunConfig.make(**bad)


def test_runs_saved_with_the_old_schedule_setting_read_as_the_new_ones():
    celeba = RunConfig.from_dict({"schedule": "celeba", "epochs": 60})
    assert (celeba.lr_schedule, celeba.lr_milestones, celeba.lr_gamma) == (
        "step",
        (30, 50),
        (0.5, 0.2),
    )
    assert RunConfig.from_dict({"schedule": "none"}) == RunConfig()
    with pytest.raises(ValueError, match="schedule must be one of"):
        RunConfig.from_dict({"schedule": "weekly"})


def test_a_run_saved_before_a_setting_existed_reads_it_as_it_trained(tmp_path):
    """A depth run saved before ``ema`` and ``lr_schedule`` kept no average and a constant
    rate: its kind's new-run defaults (cosine, EMA 0.99) do not apply to it."""
    import json

    from robustvae.training import RunDir

    settings = RunConfig.make(kind="depth").to_dict()
    assert (settings["lr_schedule"], settings["ema"]) == ("cosine", 0.99)  # a new run's
    for name in ("ema", "lr_schedule", "lr_milestones", "lr_gamma", "rampdown_fraction"):
        del settings[name]
    (tmp_path / "config.json").write_text(json.dumps(settings))
    old = RunConfig.from_dict(RunDir(tmp_path).saved_settings())
    assert (old.lr_schedule, old.ema) == ("constant", 0.0)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "vae", "schedule": "celeba"}))
    assert RunConfig.from_dict(RunDir(tmp_path).saved_settings()).lr_schedule == "step"


def test_a_scheduled_run_sets_each_steps_rate_and_resumes_bit_for_bit(tmp_path):
    settings = dict(kind="vae", epochs=3, batch_size=500, lr_schedule="cosine", warmup_steps=3)
    config = RunConfig.make(**settings, **QUIET)
    whole = train(config, tmp_path / "whole")
    steps = whole.metrics[0]["step"]  # 4,000 training images: 8 steps an epoch
    schedule = config.lr_schedule_of(steps)
    for row in whole.metrics:  # each epoch's logged rate is its last step's
        assert row["lr"] == pytest.approx(1e-3 * schedule.factor(row["step"] - 1))
    assert whole.metrics[-1]["lr"] < 0.01 * 1e-3

    # Interrupted in its second epoch (before that epoch's checkpoint), then resumed: the
    # cosine follows the same 3 epochs throughout.
    def interrupt(line):
        if line.startswith("epoch 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "split", report=interrupt)
    with pytest.raises(ValueError, match="different lr_schedule"):
        train(config.replace(lr_schedule="rampdown"), tmp_path / "split", resume=True)
    resumed = train(config, tmp_path / "split", resume=True)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_weight_average_matches_a_hand_computation_and_copies_buffers():
    from robustvae.training.averaging import WeightAverage

    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    average = WeightAverage(model, decay=0.9)
    start = model[0].weight.detach().clone()
    history = [start]
    for step in range(3):
        with torch.no_grad():
            model[0].weight.add_(1.0 + step)
            model[1].running_mean.fill_(10.0 + step)
        history.append(model[0].weight.detach().clone())
        average.update()
    expected = start
    for weight in history[1:]:
        expected = 0.9 * expected + 0.1 * weight
    assert torch.allclose(average.state["0.weight"], expected, atol=1e-6)
    assert average.state["1.running_mean"].item() == 12.0  # buffers are copied, not averaged
    own = model[0].weight.detach().clone()
    with average.swapped_in():
        assert torch.equal(model[0].weight, average.state["0.weight"])
    assert torch.equal(model[0].weight, own)


def test_an_averaged_run_resumes_bit_for_bit_and_is_scored_with_its_averages(tmp_path):
    from robustvae.evaluation import evaluate_run
    from robustvae.training import load_checkpoint, load_run

    config = RunConfig.make(kind="vae", epochs=2, batch_size=500, ema=0.9, **QUIET)
    whole = train(config, tmp_path / "whole")

    def interrupt(line):
        if line.startswith("epoch 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "split", report=interrupt)
    resumed = train(config, tmp_path / "split", resume=True)
    saved = load_checkpoint(tmp_path / "split" / "latest.safetensors")
    reference = load_checkpoint(tmp_path / "whole" / "latest.safetensors")
    assert set(saved.averaged) == set(saved.model)
    for key, value in reference.averaged.items():
        assert torch.equal(saved.averaged[key], value), key
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    _, loaded = load_run(tmp_path / "whole", "latest")
    for key, value in reference.averaged.items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert not torch.equal(
        reference.averaged["encoder.net.1.weight"], reference.model["encoder.net.1.weight"]
    )
    results = evaluate_run(tmp_path / "whole", images=100, samples=100, fid=False)
    assert results["weights"] == "averaged (ema 0.9)"
    with pytest.raises(ValueError, match="ema must be"):
        RunConfig.make(ema=1.0)
