"""LossSpec (robustvae.losses.spec): the one place that turns a kind's loss settings into a
module: which losses learn per dimension, what they learn over, losses in a representation,
annealing, and one-line errors."""

import pytest
import torch

from robustvae.losses import AdaptiveImageLoss, AdaptiveLoss, LossSpec, RepresentedLoss


@pytest.mark.parametrize(
    "name, params, learns",
    [
        ("l2", {}, False),
        ("adaptive", {}, True),
        ("normal", {}, False),
        ("normal", {"learn_scale": True}, True),
        ("student_t", {"learn_df": True}, True),
        ("general", {"alpha": 1.0, "scale": 0.1}, False),
    ],
)
def test_which_losses_learn_per_dimension(name, params, learns):
    spec = LossSpec(name, params)
    assert spec.learns_per_dim is learns
    module = spec.module(3)
    learned = [p for p in module.parameters() if p.requires_grad]
    assert bool(learned) is learns
    if learns:  # one parameter set per channel: the first learned tensor has 3 entries
        assert learned[0].numel() == 3


def test_a_module_learns_over_the_dimensions_it_is_given():
    per_pixel = LossSpec("adaptive").module((1, 4, 4))
    assert isinstance(per_pixel, AdaptiveLoss) and per_pixel.alpha().shape == (1, 4, 4)
    x = torch.rand(2, 1, 4, 4)
    assert per_pixel(x, torch.zeros_like(x)).shape == ()  # summed


def test_an_image_module_compares_in_its_representation():
    dct = LossSpec("adaptive", representation="dct", color="yuv").image_module((3, 8, 8))
    assert isinstance(dct, AdaptiveImageLoss) and dct.alpha().shape == (3, 8, 8)
    l1 = LossSpec("l1", representation="wavelet", params={"wavelet_levels": 1})
    module = l1.image_module((1, 8, 8))
    assert isinstance(module, RepresentedLoss)
    plain = LossSpec("l1").image_module((1, 8, 8))
    x, y = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    assert torch.allclose(plain(x, y), (x - y).abs().sum())
    with pytest.raises(ValueError, match="compares whole images"):
        LossSpec("l1", representation="dct").module(3)
    with pytest.raises(ValueError, match="'wavelet_levels' applies only"):
        LossSpec("l1", {"wavelet_levels": 2}).image_module((1, 8, 8))


def test_annealing_rebuilds_with_one_fixed_parameter():
    spec = LossSpec("general", {"alpha": 2.0, "scale": 0.1})
    assert spec.with_param("alpha", 0.5).kwargs == {"alpha": 0.5, "scale": 0.1}
    module = spec.annealed("alpha", 0.5, lambda s: s.module(3))
    x = torch.tensor([0.3])
    expected = LossSpec("general", {"alpha": 0.5, "scale": 0.1}).module(3)(x, torch.zeros(1))
    assert module(x, torch.zeros(1)) == expected
    with pytest.raises(ValueError, match="has no parameter 'beta' to anneal"):
        spec.with_param("beta", 1.0)
    with pytest.raises(ValueError, match="learns its parameters here"):
        LossSpec("adaptive").annealed("alpha_lo", 0.1, lambda s: s.module(3))


@pytest.mark.parametrize(
    "args, message",
    [
        (("nope",), "loss must be one of"),
        (("l2", {"x": [1]}), "must be a finite number"),
        (("l2", {}, "fft"), "representation must be one of"),
        (("l2", {}, "pixels", "hsv"), "color must be one of"),
        (("logcosh", {"num_dims": 3}), "may not set 'num_dims'"),
    ],
)
def test_bad_settings_are_one_line(args, message):
    with pytest.raises(ValueError, match=message):
        LossSpec(*args)


def test_a_bad_parameter_value_is_one_line():
    with pytest.raises(ValueError, match="a must be a number"):
        LossSpec("logcosh", {"a": "ten"}, setting="feature_loss").module(4)


def test_a_runs_label_names_its_loss_annealing_and_targets():
    from robustvae.evaluation.labels import run_label
    from robustvae.training import RunConfig

    restore = RunConfig.make(kind="restore", loss="logcosh", loss_params={"a": 10.0})
    assert run_label(restore) == "logcosh (a=10.0)"
    clean = restore.replace(clean_targets=True, representation="dct", color="yuv")
    assert run_label(clean) == "logcosh (a=10.0) [dct, yuv] N2C"
    depth = RunConfig.make(
        kind="depth", loss="general", loss_params={"alpha": 2.0, "scale": 0.01}, anneal="alpha=2:0"
    )
    assert run_label(depth) == "general (alpha=2.0, scale=0.01), alpha=2:0 linear"
