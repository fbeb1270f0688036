"""The gan kind (robustvae.models.gan): Larsen's decoder and discriminator as a GAN, trained,
resumed and evaluated like the other kinds, with the game's health logged."""

import pytest
import torch
from conftest import assert_picture

from robustvae.evaluation import draw_run, evaluate_run
from robustvae.models.gan import GAN, GANConfig
from robustvae.task import TrainingStopped, Updates
from robustvae.training import RunConfig, load_checkpoint, train

SMALL = dict(kind="gan", width=0.125, progress=False, tensorboard=False, device="cpu")


def test_each_group_descends_its_own_loss_only():
    torch.manual_seed(0)
    task = GAN(GANConfig(width=0.125, balance="none"), (1, 28, 28))
    optimizers = {n: g.build(1.0) for n, g in task.parameter_groups().items()}
    updates = Updates(optimizers, lambda params: None, lambda terms, log: None)
    before = {k: v.clone() for k, v in task.state_dict().items()}
    updates.begin()
    terms = task.training_step({"image": torch.rand(16, 1, 28, 28)}, updates)
    changed = {
        k.split(".")[0] for k, v in task.state_dict().items() if not torch.equal(v, before[k])
    }
    assert changed == {"generator", "discriminator"}
    assert set(terms) >= {"gan", "gen_gan", "cost_real", "cost_fake", "acc_real", "acc_sampled"}
    # The non-saturating generator loss is −log D(sample) > 0; the saturating one is minus
    # the discriminator's cost on samples.
    assert terms["gen_gan"].item() > 0
    saturating = GAN(GANConfig(width=0.125, generator_loss="saturating"), (1, 28, 28))
    terms = saturating.loss_terms({"image": torch.rand(16, 1, 28, 28)})
    assert terms["gen_gan"].item() == pytest.approx(-terms["cost_fake"].item())
    # ... and its generator learns from it, as the discriminator learns from the samples.
    optimizers = {n: g.build(1.0) for n, g in saturating.parameter_groups().items()}
    updates = Updates(optimizers, lambda params: None, lambda terms, log: None)
    before = {k: v.clone() for k, v in saturating.state_dict().items()}
    updates.begin()
    saturating.training_step({"image": torch.rand(16, 1, 28, 28)}, updates)
    moved = {k for k, v in saturating.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("generator.") and k.endswith("weight") for k in moved)
    assert {id(p) for p in task.generator.parameters()} == {
        id(p) for p in task.parameter_groups()["generator"].params
    }


@pytest.mark.slow
def test_gan_trains_resumes_bit_for_bit_and_evaluates_without_reconstructions(tmp_path):
    config = RunConfig.make(**SMALL, epochs=2, batch_size=200, balance="mean", balance_decay=0.9)
    whole = train(config, tmp_path / "whole")
    train(config.replace(epochs=1), tmp_path / "split")
    resumed = train(config, tmp_path / "split", resume=True)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert "balancer.averages" in whole.model.state_dict()  # the moving averages resume too
    checkpoint = load_checkpoint(tmp_path / "split" / "latest.safetensors")
    assert set(checkpoint.optimizers) == {"generator", "discriminator"}
    row = whole.metrics[-1]
    assert set(row["update_share"]) == {"generator", "discriminator"}
    results = evaluate_run(tmp_path / "whole", images=100, samples=200, fid=False)
    assert (
        results["sharpness_generated"] > 0 and results["samples_drawn"] == 100
    )  # no FID: as many as scored
    assert not {"ssim", "sq_l2", "sharpness_reconstructed", "mmd_to_prior"} & set(results)
    assert 0 <= results["test"]["acc_sampled"] <= 1
    draw_run(tmp_path / "whole")
    assert_picture(tmp_path / "whole" / "samples.png")
    assert_picture(tmp_path / "whole" / "interpolations.png")
    assert not (tmp_path / "whole" / "reconstructions.png").exists()
    from robustvae.cli import main  # the CLI samples a GAN and refuses what needs an encoder

    assert main(["sample", tmp_path / "whole", "--out", tmp_path / "s.png", "-n", "4"]) == 0
    assert_picture(tmp_path / "s.png")
    assert main(["reconstruct", tmp_path / "whole", "--out", tmp_path / "r.png"]) == 2
    assert not (tmp_path / "r.png").exists()


def test_a_pinned_discriminator_stops_a_gan():
    task = GAN(GANConfig(width=0.125, pinned_epochs=1, generator_loss="saturating"), (1, 28, 28))
    with pytest.raises(TrainingStopped, match="real, sampled"):
        task.end_of_epoch(0, [{"test": {"acc_real": 1.0, "acc_sampled": 1.0}}])


def test_config_is_checked():
    for bad, message in [
        (dict(balance="sometimes"), "balance must be one of: larsen, mean, none"),
        (dict(balance_decay=1.0), r"balance_decay must be in \[0, 1\)"),
        (dict(generator_loss="hinge"), "saturating, non_saturating"),
    ]:
        with pytest.raises(ValueError, match=message):
            GANConfig(**bad)
    with pytest.raises(ValueError, match="kind 'gan' takes images of 28×28, 64×64"):
        RunConfig.make(kind="gan", image_size=32)
    with pytest.raises(ValueError, match="unknown run setting"):
        RunConfig.make(kind="gan", gamma=0.1)  # a VAE-GAN setting
