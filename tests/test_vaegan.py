"""VAE-GAN (robustvae.models.vaegan): its terms, Larsen's update rules, balancing, and a run
through the trainer, the CLI and two-process DDP."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import assert_picture

from robustvae.cli import main
from robustvae.models.adversarial import (
    Balancer,
    fake_cost,
    generator_cost,
    mean_balancing,
    real_cost,
)
from robustvae.models.vaegan import VAEGAN, VAEGANConfig, balancing
from robustvae.models.vaegan_nets import build_vaegan_nets
from robustvae.task import TrainingStopped, Updates
from robustvae.training import RunConfig, TrainingDiverged, load_checkpoint, train

SMALL = dict(kind="vaegan", width=0.125, progress=False, tensorboard=False, device="cpu")


def _images(n=16, shape=(1, 28, 28), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g)


def _task(**settings):
    torch.manual_seed(0)
    return VAEGAN(VAEGANConfig(width=0.125, **settings), (1, 28, 28))


@pytest.mark.parametrize(
    "shape, features", [((1, 28, 28), (256, 7, 7)), ((3, 64, 64), (256, 8, 8))]
)
def test_nets_follow_larsen(shape, features):
    nets = build_vaegan_nets(shape, 8, 1.0)
    x = torch.rand(4, *shape)
    mean, log_var = nets.encoder(x)
    assert mean.shape == log_var.shape == (4, 8)
    out = nets.decoder(mean)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    f, logits = nets.discriminator(x)
    assert nets.discriminator.feature_shape == features and f.shape == (4, 256 * features[1] ** 2)
    assert logits.shape == (4,)
    # Layer l is read before its batch norm: the features are the last strided conv's output.
    assert isinstance(nets.discriminator.to_features[-1], torch.nn.Conv2d)
    convs = [
        m for m in nets.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    ]
    assert {m.kernel_size for m in convs} == {(5, 5)}
    with pytest.raises(ValueError, match="28×28, 64×64"):
        build_vaegan_nets((1, 32, 32), 8, 1.0)


def test_groups_are_disjoint_and_cover_every_parameter():
    task = _task(feature_loss="adaptive")
    groups = task.parameter_groups()
    assert list(groups) == ["encoder", "decoder", "discriminator"]
    ids = [id(p) for g in groups.values() for p in g.params]
    assert len(ids) == len(set(ids)) == len(list(task.parameters()))
    encoder = {id(p) for p in groups["encoder"].params}
    assert {id(p) for p in task.feature_loss.parameters()} <= encoder  # α, c learn with it
    assert all(g.optimizer == "rmsprop" for g in groups.values())
    assert [g.lr for g in groups.values()] == [3e-4, 3e-4, 1e-5]  # a slower discriminator
    larsen = _task(discriminator_lr=3e-4).parameter_groups()
    assert [g.lr for g in larsen.values()] == [3e-4, 3e-4, 3e-4]


class _Recorder(Updates):
    """Updates that keep each group's gradient and change no weight."""

    def __init__(self, task):
        optimizers = {n: g.build(1.0) for n, g in task.parameter_groups().items()}
        super().__init__(optimizers, lambda params: None, lambda terms, log: None)
        self.grads = {}

    def apply(self, group):
        params = [p for g in self.optimizers[group].param_groups for p in g["params"]]
        self.grads[group] = [p.grad.clone() for p in params]


def test_each_group_descends_its_own_loss_only():
    task = _task(balance=False)
    x = _images()
    recorder = _Recorder(task)
    torch.manual_seed(1)
    task.training_step({"image": x}, recorder)
    torch.manual_seed(1)  # the same noise: the same forward pass
    terms = task._terms(x)
    groups = task.parameter_groups()

    def grads(loss, group):
        return torch.autograd.grad(loss, groups[group].params, retain_graph=True, allow_unused=True)

    expected = {
        "encoder": grads(terms["kl"] + terms["llike"], "encoder"),
        "decoder": grads(task.config.gamma * terms["llike"] + terms["dec_gan"], "decoder"),
        "discriminator": grads(terms["gan"], "discriminator"),
    }
    for group, want in expected.items():
        for got, w in zip(recorder.grads[group], want, strict=True):
            torch.testing.assert_close(got, torch.zeros_like(got) if w is None else w)
    # The rules matter: L_llike does reach the discriminator's parameters and L_GAN the
    # encoder's, so a group that took them would get other gradients.
    llike_on_dis = grads(terms["llike"], "discriminator")
    gan_on_encoder = grads(terms["dec_gan"], "encoder")
    assert any(g is not None and g.abs().sum() > 0 for g in llike_on_dis)
    assert any(g is not None and g.abs().sum() > 0 for g in gan_on_encoder)


@pytest.mark.parametrize("weight", [1.0, 2.0, 0.5])
def test_the_discriminator_weighs_its_reals_by_real_weight(weight):
    # The discriminator's cost is r·(cost on reals) + (cost on samples) + (cost on
    # reconstructions): at r = 2 (Larsen's code) the reals weigh as much as both fakes.
    task = _task(real_weight=weight)
    x = _images()
    torch.manual_seed(1)
    terms = task._terms(x)
    n = x.shape[0]
    torch.manual_seed(1)
    mean, log_var = task.posterior(x)
    z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
    fakes = [task.decoder(z), task.decoder(torch.randn_like(mean))]
    _, logits = task.discriminator(torch.cat([x, *fakes]))
    real, recon, sampled = logits[:n], logits[n : 2 * n], logits[2 * n :]
    want = weight * real_cost(real) + fake_cost(sampled) + fake_cost(recon)
    torch.testing.assert_close(terms["gan"], want)
    params = list(task.discriminator.parameters())
    got_grads = torch.autograd.grad(terms["gan"], params, retain_graph=True)
    want_grads = torch.autograd.grad(want, params)
    for got, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(got, w)
    # The decoder's costs do not depend on it.
    base = _task()
    torch.manual_seed(1)
    base_terms = base._terms(x)
    torch.testing.assert_close(terms["dec_gan"], base_terms["dec_gan"])


def test_every_cost_of_the_game_carries_its_gradient():
    # d/dl of the batch mean of −log σ(l) is (σ(l) − 1)/n, of −log(1 − σ(l)) it is σ(l)/n. A
    # cost computed without its graph (a stray no_grad) would starve the discriminator of its
    # fakes and the saturating generator of any signal.
    logits = torch.linspace(-3, 3, 8, dtype=torch.float64, requires_grad=True)
    p, n = torch.sigmoid(logits.detach()), logits.numel()
    expected = {
        "real": (real_cost(logits), (p - 1) / n),
        "fake": (fake_cost(logits), p / n),
        "saturating": (generator_cost(logits, "saturating"), -p / n),
        "non_saturating": (generator_cost(logits, "non_saturating"), (p - 1) / n),
    }
    for name, (cost, want) in expected.items():
        (got,) = torch.autograd.grad(cost, logits)
        torch.testing.assert_close(got, want, msg=name)


@pytest.mark.parametrize(
    "real, fake, expected",
    [
        (0.69, 0.69, (True, True)),  # near equilibrium: both learn
        (0.2, 0.69, (False, True)),  # the discriminator wins on reals: it waits
        (0.69, 0.1, (False, True)),  # ... or on fakes
        (1.2, 0.69, (True, False)),  # it loses on reals: the decoder waits
        (0.69, 1.5, (True, False)),
        (0.1, 2.0, (True, True)),  # both rules fire: both learn
    ],
)
def test_balancing_rule_of_larsens_code(real, fake, expected):
    assert balancing(real, fake, 0.68, 0.35) == expected


def test_by_default_the_discriminator_learns_on_every_step_where_larsens_rule_froze_it(
    tmp_path,
):
    # Two epochs of mnist-5k at width 1/8 (20 steps each). With Larsen's rule the
    # discriminator's first steps win and it waits from then on (0–3% of the steps, and a
    # warning); by default it updates on every step, slowly, and its gradient never vanishes.
    settings = dict(**SMALL, dataset="mnist-5k", epochs=2, batch_size=200)
    default = train(RunConfig.make(**settings), tmp_path / "default")
    for row in default.metrics:
        assert row["update_share"] == {"encoder": 1.0, "decoder": 1.0, "discriminator": 1.0}
        assert row["grad_norm"]["discriminator"] > 0
        assert 0 < row["train"]["cost_real"] and 0 < row["train"]["cost_fake"]
    groups = default.model.parameter_groups()
    assert groups["discriminator"].lr == 1e-5 and groups["decoder"].lr == 3e-4
    larsen = dict(settings, balance="larsen", generator_loss="saturating", discriminator_lr=3e-4)
    larsen["epochs"] = 1
    with pytest.warns(RuntimeWarning, match="the discriminator updated on [0-9]% of the steps"):
        frozen = train(RunConfig.make(**larsen), tmp_path / "larsen")
    assert all(row["update_share"]["discriminator"] < 0.1 for row in frozen.metrics)


def test_the_mean_rule_frees_a_waiting_discriminator_that_larsens_rule_keeps_frozen():
    # A waiting discriminator's cost on reals stays where it was (nothing else moves it) while
    # the generator catches up on fakes: Larsen's rule waits for ever, the mean rule resumes.
    real = 0.2
    for fake in (0.4, 0.6, 0.8, 1.0):
        assert balancing(real, fake, 0.68, 0.35) == (False, True)
    assert mean_balancing(real, 0.4, 0.68, 0.35) == (False, True)  # mean 0.3: it waits
    assert mean_balancing(real, 0.6, 0.68, 0.35) == (True, True)  # mean 0.4: it learns
    assert mean_balancing(1.2, 1.0, 0.68, 0.35) == (True, False)  # it loses: the decoder waits


def test_balancer_averages_the_costs_and_keeps_them_in_its_state():
    balancer = Balancer("mean", 0.68, 0.35, decay=0.5)
    assert balancer.decide(torch.tensor(0.1), torch.tensor(0.1)) == (False, True)
    assert balancer.averages.tolist() == pytest.approx(
        [0.1, 0.1]
    )  # the first step's costs start them
    # 0.5·0.1 + 0.5·1.3 = 0.7 each: near equilibrium, both learn; the step's own costs
    # (1.3) would have made the decoder wait.
    assert balancer.decide(torch.tensor(1.3), torch.tensor(1.3)) == (True, True)
    assert balancer.averages.tolist() == pytest.approx([0.7, 0.7])
    resumed = Balancer("mean", 0.68, 0.35, decay=0.5)
    resumed.load_state_dict(balancer.state_dict())
    assert torch.equal(resumed.averages, balancer.averages)
    assert "averages" not in Balancer("larsen", 0.68, 0.35).state_dict()  # decay 0: no state
    assert Balancer("none", 0.68, 0.35).decide(torch.tensor(0.0), torch.tensor(9.0)) == (
        True,
        True,
    )


def test_a_frozen_discriminator_is_warned_about_in_one_line():
    task = _task(balance="larsen")
    frozen = {"update_share": {"discriminator": 0.05}, "test": {"acc_real": 1.0}}
    with pytest.warns(RuntimeWarning, match=r"epoch 3: the discriminator updated on 5% of the"):
        task.end_of_epoch(2, [frozen])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at a healthy share
        task.end_of_epoch(2, [{**frozen, "update_share": {"discriminator": 0.5}}])


def test_the_cli_prints_warnings_in_one_line(capsys):
    import warnings

    from robustvae.cli import _one_line_warning

    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        warnings.warn("the discriminator updated on 0% of the steps", RuntimeWarning, stacklevel=2)
    err = capsys.readouterr().err
    assert err == "robustvae: warning: the discriminator updated on 0% of the steps\n"


def test_balancing_skips_updates_and_counts_them():
    # Costs are near log 2 ≈ 0.69 at the start; an equilibrium of 10 makes both "low": the
    # discriminator counts as winning and waits, the decoder learns.
    task = _task(balance="larsen", equilibrium=10.0, margin=0.0)
    recorder = _Recorder(task)
    recorder.begin()
    task.training_step({"image": _images()}, recorder)
    assert recorder.skipped == {"encoder": 0, "decoder": 0, "discriminator": 1}
    assert set(recorder.grads) == {"encoder", "decoder"}
    unbalanced = _task(balance=False, equilibrium=10.0)
    off = _Recorder(unbalanced)
    off.begin()
    unbalanced.training_step({"image": _images()}, off)
    assert sum(off.skipped.values()) == 0 and len(off.grads) == 3


def test_every_term_moves_in_a_few_steps(tmp_path):
    config = RunConfig.make(**SMALL, epochs=2, batch_size=200, feature_loss="logcosh")
    result = train(config, tmp_path)
    first, last = (row["train"] for row in (result.metrics[0], result.metrics[-1]))
    moved = [t for t in ("kl", "llike", "gan", "dec_gan", "sq_l2") if first[t] != last[t]]
    assert moved == ["kl", "llike", "gan", "dec_gan", "sq_l2"]
    assert all(0 <= last[a] <= 1 for a in ("acc_real", "acc_sampled", "acc_recon"))


@pytest.mark.slow
def test_resume_is_bit_for_bit_with_three_optimizers(tmp_path):
    config = RunConfig.make(**SMALL, epochs=2, batch_size=200, feature_loss="adaptive")
    whole = train(config, tmp_path / "whole")
    train(config.replace(epochs=1), tmp_path / "split")
    resumed = train(config, tmp_path / "split", resume=True)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    checkpoint = load_checkpoint(tmp_path / "split" / "latest.safetensors")
    assert set(checkpoint.optimizers) == {"encoder", "decoder", "discriminator"}
    # No epoch is ranked: the best checkpoint is the latest.
    best = load_checkpoint(tmp_path / "split" / "best.safetensors")
    assert best.meta["epoch"] == 2 and best.meta["best_metric"] is None


def test_a_pinned_discriminator_stops_the_run_cleanly():
    task = _task(pinned_epochs=2, generator_loss="saturating")
    perfect = {"test": {"acc_real": 1.0, "acc_sampled": 1.0, "acc_recon": 1.0}}
    imperfect = {"test": {"acc_real": 1.0, "acc_sampled": 0.99, "acc_recon": 1.0}}
    task.end_of_epoch(1, [imperfect, perfect])  # one perfect epoch: go on
    with pytest.raises(TrainingStopped, match="2 epochs in a row"):
        task.end_of_epoch(2, [imperfect, perfect, perfect])
    _task(pinned_epochs=0).end_of_epoch(2, [perfect] * 5)  # 0: never
    # The non-saturating loss's gradient does not vanish when the discriminator wins.
    _task(pinned_epochs=2, generator_loss="non_saturating").end_of_epoch(2, [perfect] * 5)


def test_instability_stops_through_the_trainer_with_the_last_good_checkpoint(tmp_path):
    # Balancing off, an encoder and decoder that barely learn (rate 1e-6) and Larsen's γ
    # against a discriminator at 3e-4: it tells every test image apart from the first epoch
    # on. Epoch 1 is saved; epoch 2 is the second perfect one in a row and stops the run.
    config = RunConfig.make(
        **SMALL, epochs=3, batch_size=100, balance=False, vaegan_lr=1e-6, gamma=1e-6,
        pinned_epochs=2, generator_loss="saturating", discriminator_lr=3e-4,
    )  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"stopped after epoch 2: the discriminator has"):
        train(config, tmp_path)
    assert load_checkpoint(tmp_path / "latest.safetensors").meta["epoch"] == 1


@pytest.mark.parametrize("kind", ["vaegan", "gan"])
def test_instance_noise_reaches_the_discriminator_in_training_only(kind):
    # What the discriminator sees: the clean batch in the test terms, the batch with N(0, σ²)
    # noise in a training step, σ as begin_epoch sets it (linear to 0 over the run).
    from robustvae.models.gan import GAN, GANConfig

    torch.manual_seed(0)
    task = (
        _task(instance_noise=0.3)
        if kind == "vaegan"
        else GAN(GANConfig(width=0.125, instance_noise=0.3), (1, 28, 28))
    )
    seen = []
    task.discriminator.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    x = _images()
    assert task.noise_now == 0.3
    assert task.epoch_statistics() == {"instance_noise": 0.3}
    task.begin_epoch(2, 4)
    assert task.noise_now == pytest.approx(0.15)
    batch = {"image": x}
    (task._terms(x) if kind == "vaegan" else task.loss_terms(batch))
    task.training_step(batch, _Recorder(task))
    clean, trained = seen[0][:16], seen[1][:16]
    assert torch.equal(clean, x)
    assert (trained - x).std().item() == pytest.approx(0.15, rel=0.1)
    task.begin_epoch(4, 4)
    assert task.noise_now == 0.0
    off = _task() if kind == "vaegan" else GAN(GANConfig(width=0.125), (1, 28, 28))
    assert off.epoch_statistics() == {}


@pytest.mark.slow
def test_instance_noise_is_logged_per_epoch_and_resumes_bit_for_bit(tmp_path):
    config = RunConfig.make(**SMALL, epochs=2, batch_size=500, instance_noise=0.2)
    whole = train(config, tmp_path / "whole")
    rows = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").open()]
    assert [r["statistics"]["instance_noise"] for r in rows] == pytest.approx([0.2, 0.1])
    train(config.replace(epochs=1), tmp_path / "split")
    resumed = train(config, tmp_path / "split", resume=True)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_config_validation():
    for bad, message in [
        (dict(feature_loss="huber"), "feature_loss must be one of"),
        (dict(feature_loss="logcosh", feature_loss_params={"a": -1.0}), "a must lie"),
        (dict(gamma=0.0), "gamma"),
        (dict(generator_loss="hinge"), "saturating, non_saturating"),
        (dict(pinned_epochs=-1), "pinned_epochs"),
        (dict(balance="yes"), "balance must be one of: larsen, mean, none"),
        (dict(instance_noise=-0.1), "instance_noise"),
        (dict(real_weight=0), "real_weight"),
        (dict(real_weight=float("nan")), "real_weight"),
    ]:
        with pytest.raises(ValueError, match=message):
            VAEGANConfig(**bad)
    with pytest.raises(ValueError, match="unknown run setting.*'loss'|unknown run setting.*loss"):
        RunConfig.make(kind="vaegan", loss="l2")
    with pytest.raises(ValueError, match="28×28, 64×64"):
        RunConfig.make(kind="vaegan", image_size=32)


def test_cli_trains_a_vaegan_and_draws_from_it(tmp_path, capsys):
    run = tmp_path / "run"
    flags = ["--kind", "vaegan", "--width", "0.125", "--epochs", "1", "--batch-size", "200"]
    flags += ["--feature-loss", "logcosh", "--feature-loss-param", "a=2", "--no-progress"]
    assert main(["train", "--out", run, *flags, "--no-tensorboard"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["feature_loss_params"] == {"a": 2} and saved["kind"] == "vaegan"
    assert_picture(run / "samples.png", (484, 484))
    assert_picture(run / "reconstructions.png")
    assert main(["sample", run, "--out", tmp_path / "s.png", "-n", "16"]) == 0
    assert_picture(tmp_path / "s.png")
    assert main(["train", "--out", tmp_path / "x", "--kind", "vaegan", "--loss", "l1"]) == 2
    assert "unknown run setting" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_ddp_trains_a_vaegan_with_consistent_ranks(tmp_path):
    env = {**os.environ, "ROBUSTVAE_COMPILE": "0", "OMP_NUM_THREADS": "1"}
    flags = ["--kind", "vaegan", "--width", "0.125", "--epochs", "1", "--batch-size", "200"]
    flags += ["--no-progress", "--no-tensorboard", "--device", "cpu"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
    command += ["2", "-m", "robustvae", "train", "--out", str(tmp_path / "two"), *flags]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    single = train(RunConfig.make(**SMALL, epochs=1, batch_size=200), tmp_path / "one")
    (row,) = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert row["step"] == single.metrics[0]["step"] == 20
    # The same global batches; the ranks draw their own noise and normalise their own halves,
    # so the two runs agree loosely, not to float precision.
    for term in ("kl", "sq_l2"):
        assert row["test"][term] == pytest.approx(single.metrics[0]["test"][term], rel=0.5)


def test_a_step_runs_with_fused_losses_on():
    # L_llike is backpropagated into the encoder and the decoder from one graph; a compiled
    # (fused) reduction may free its buffers after one backward ("compiled with non-empty
    # donated buffers", seen in a grid run), so the feature loss is summed eagerly.
    from robustvae.losses import set_compile
    from robustvae.losses.fused import compile_enabled

    before = compile_enabled()
    set_compile(True)
    try:
        task = _task(feature_loss="logcosh", balance=False)
        recorder = _Recorder(task)
        recorder.begin()
        task.training_step({"image": _images(n=8)}, recorder)  # 8 × 12,544 features: fused size
        assert set(recorder.grads) == {"encoder", "decoder", "discriminator"}
        assert task.feature_loss.reduction == "none"
    finally:
        set_compile(before)


def _probe_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "probe_discriminator.py"
    spec = importlib.util.spec_from_file_location("probe_discriminator", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    return probe


@pytest.mark.parametrize(
    "setting, message",
    [
        ("ema=0.9", "leave ema 0"),
        ("kind=vae", "has no discriminator"),
        ("gamma=0", "gamma"),
        ("colour=red", "unknown run setting"),
    ],
)
def test_the_discriminator_probe_refuses_what_it_cannot_probe_in_one_line(
    setting, message, tmp_path, capsys
):
    with pytest.raises(SystemExit):
        _probe_script().main([str(tmp_path / "out"), "--set", setting])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_discriminator_probe_sees_inside_an_epoch_without_changing_the_run(tmp_path):
    # scripts/probe_discriminator.py: the test accuracies every N steps; its last probe of an
    # epoch is that epoch's row, and the probes leave training as it would be without them.
    probe = _probe_script()
    settings = ["dataset=mnist-5k", "width=0.05", "batch_size=500", "epochs=2", "device=cpu"]
    rows = probe.main([str(tmp_path / "probed"), "--every", "4", *[f"--set={s}" for s in settings]])
    assert [step for step, _, _ in rows] == [4, 8, 12, 16]
    metrics = [json.loads(line) for line in (tmp_path / "probed/metrics.jsonl").open()]
    for (_, sampled, real), row in zip(rows[1::2], metrics, strict=True):
        assert (sampled, real) == (row["test"]["acc_sampled"], row["test"]["acc_real"])
    config = RunConfig.make(**{**probe.DEFAULTS, **dict(probe._setting(s) for s in settings)})
    train(config, tmp_path / "plain")
    probed_weights = load_checkpoint(tmp_path / "probed/latest.safetensors")
    plain_weights = load_checkpoint(tmp_path / "plain/latest.safetensors")
    for name, tensor in plain_weights.model.items():
        assert torch.equal(tensor, probed_weights.model[name]), name
