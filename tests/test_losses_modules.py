import inspect
import math

import pytest
import torch
from conftest import DEVICES, value_and_gradients
from torch import nn

from robustvae.losses import (
    LOSSES,
    AdaptiveImageLoss,
    AdaptiveLoss,
    CauchyNLL,
    GeneralLoss,
    L1Loss,
    LaplaceNLL,
    LogCoshLoss,
    NormalNLL,
    RepresentedLoss,
    SquaredL2Loss,
    StudentTNLL,
    get_loss,
    loss_parameters,
)
from robustvae.losses import functional as LF
from robustvae.representations import Representation

NAMES = ["l2", "l1", "logcosh", "general", "adaptive", "normal", "laplace", "cauchy", "student_t"]


def test_registry_names():
    assert list(LOSSES) == NAMES
    for name in NAMES:
        kwargs = {"num_dims": 5} if name == "adaptive" else {}
        loss = get_loss(name, **kwargs)
        assert isinstance(loss, nn.Module)
        out = loss(torch.randn(4, 5), torch.randn(4, 5))
        assert out.shape == () and torch.isfinite(out)


@pytest.mark.parametrize("name", NAMES)
def test_a_residual_alone_is_its_loss_against_zero(name):
    kwargs = {"num_dims": 5} if name == "adaptive" else {}
    x = torch.randn(4, 5, dtype=torch.float64)
    for reduction in ("mean", "sum", "none"):
        loss = get_loss(name, reduction=reduction, **kwargs).double()
        assert torch.equal(loss(x), loss(x, torch.zeros_like(x)))


@pytest.mark.parametrize("name", NAMES)
def test_a_weight_weighs_each_elements_value(name):
    """BasicSR's convention: 'sum' is Σ w·ρ, 'mean' Σ w·ρ / Σ w, 'none' w·ρ; a weight that
    broadcasts (one per row here) is expanded first, and gradients reach the weight."""
    kwargs = {"num_dims": 5} if name == "adaptive" else {}
    input, target = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    weight = torch.tensor([[0.0], [1.0], [2.5], [0.5]], dtype=torch.float64, requires_grad=True)
    values = get_loss(name, reduction="none", **kwargs).double()(input, target)
    full = weight.expand(4, 5)
    for reduction, expected in (
        ("none", values * full),
        ("sum", (values * full).sum()),
        ("mean", (values * full).sum() / full.sum()),
    ):
        got = get_loss(name, reduction=reduction, **kwargs).double()(input, target, weight=weight)
        torch.testing.assert_close(got, expected)
    get_loss(name, reduction="sum", **kwargs).double()(input, target, weight=weight).backward()
    torch.testing.assert_close(weight.grad, values.sum(1, keepdim=True))
    loss = get_loss(name, **kwargs).double()
    with pytest.raises(ValueError, match="does not broadcast"):
        loss(input, target, weight=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="finite and >= 0"):
        loss(input, target, weight=-torch.ones(4, 5, dtype=torch.float64))


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="logcosh.*student_t"):
        get_loss("log_cosh")


def test_missing_required_parameter_is_a_value_error():
    with pytest.raises(ValueError, match="needs the parameter 'num_dims'"):
        get_loss("adaptive")


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(ValueError, match="no parameter 'alpha'.*valid: a, reduction"):
        get_loss("logcosh", alpha=3)
    assert "df" in loss_parameters("student_t") and "scale" in loss_parameters("student_t")


@pytest.mark.parametrize(
    "name, params",
    [
        ("logcosh", dict(a=0.0)),
        ("logcosh", dict(a=-3.0)),
        ("general", dict(scale=0.0)),
        ("general", dict(alpha=math.nan)),
        ("general", dict(alpha="2")),
        ("normal", dict(scale=-1.0)),
        ("student_t", dict(df=0.0)),
        ("cauchy", dict(num_dims=-3)),
        ("adaptive", dict(num_dims=3, alpha_hi=12.0)),
        ("l2", dict(reduction="avg")),
    ],
)
def test_invalid_parameters(name, params):
    with pytest.raises(ValueError):
        get_loss(name, **params)


def test_modules_equal_functional_forms():
    x, y = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    r = x - y
    cases = [
        (SquaredL2Loss(reduction="none"), r**2),
        (L1Loss(reduction="none"), r.abs()),
        (LogCoshLoss(a=7.0, reduction="none"), LF.log_cosh(x, y, 7.0, "none")),
        (GeneralLoss(alpha=0.5, scale=0.3, reduction="none"), LF.general(r, 0.5, 0.3)),
        (NormalNLL(scale=0.4, reduction="none"), LF.normal_nll(r, 0.4)),
        (LaplaceNLL(scale=0.4, reduction="none"), LF.laplace_nll(r, 0.4)),
        (CauchyNLL(scale=0.4, reduction="none"), LF.cauchy_nll(r, 0.4)),
        (StudentTNLL(df=3.0, scale=0.4, reduction="none"), LF.student_t_nll(r, 3.0, 0.4)),
    ]
    for module, want in cases:
        torch.testing.assert_close(module.double()(x, y), want, msg=repr(module))


def test_reduction_sum_and_mean():
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    for name in NAMES:
        kwargs = {"num_dims": 4} if name == "adaptive" else {}
        none = get_loss(name, reduction="none", **kwargs)(x, y)
        total = get_loss(name, reduction="sum", **kwargs)(x, y)
        mean = get_loss(name, reduction="mean", **kwargs)(x, y)
        torch.testing.assert_close(total, none.sum())
        torch.testing.assert_close(mean, none.mean())


def test_learned_per_dimension_scales_and_df():
    loss = StudentTNLL(df=2.0, learn_df=True, scale=0.5, num_dims=(2, 3), learn_scale=True)
    names = {n for n, _ in loss.named_parameters()}
    assert names == {"scale.latent", "df.latent"}
    x = torch.randn(10, 2, 3)
    loss(x, torch.zeros_like(x)).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in loss.parameters())
    with pytest.raises(ValueError, match="end with"):
        loss(torch.zeros(10, 3, 2), torch.zeros(10, 3, 2))
    fixed = NormalNLL(scale=0.5)
    assert list(fixed.parameters()) == []


def test_general_loss_accepts_every_special_alpha():
    x, y = torch.randn(50), torch.randn(50)
    for alpha in (-math.inf, -2.0, 0.0, 1.0, 2.0, math.inf):
        out = GeneralLoss(alpha=alpha, scale=2.0)(x, y)
        assert torch.isfinite(out)


def test_adaptive_image_loss_is_a_represented_adaptive_loss_and_loads_old_keys():
    loss = AdaptiveImageLoss(8, 3, representation="dct", color="yuv")
    same = RepresentedLoss(Representation(8, 3, "dct", "yuv"), AdaptiveLoss((3, 8, 8)), True)
    with torch.no_grad():
        loss.adaptive.latent_alpha.latent.add_(torch.randn(3, 8, 8))
    # A state dict of the earlier class, whose inner loss was called "adaptive".
    old = {k.replace("loss.", "adaptive.", 1): v for k, v in loss.state_dict().items()}
    same.load_state_dict(old)
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(same(x, y), loss(x, y))
    assert loss.adaptive is loss.loss and torch.equal(loss.alpha(), same.loss.alpha())


@pytest.mark.parametrize("name", NAMES)
def test_modules_move_with_to_and_have_no_constructor_device_args(name):
    cls = LOSSES[name]
    parameters = inspect.signature(cls.__init__).parameters
    assert not {"device", "dtype"} & set(parameters), name
    loss = get_loss(name, **({"num_dims": 4} if name == "adaptive" else {})).double()
    floats = [t for t in [*loss.parameters(), *loss.buffers()] if t.is_floating_point()]
    assert all(t.dtype == torch.float64 for t in floats), name
    x = torch.rand(3, 4, dtype=torch.float64)
    assert loss(x, torch.zeros_like(x)).dtype == torch.float64


@pytest.mark.parametrize("device", DEVICES)
def test_every_loss_runs_on_each_device_like_on_cpu(device):
    x, y = torch.rand(6, 5, dtype=torch.float64), torch.rand(6, 5, dtype=torch.float64)
    for name in NAMES:
        kwargs = {"num_dims": 5} if name == "adaptive" else {}
        loss = get_loss(name, reduction="sum", **kwargs).double()
        want = loss(x, y)
        moved = loss.to(device)
        got = moved(x.to(device), y.to(device))
        assert got.device.type == device
        torch.testing.assert_close(got.cpu(), want, msg=name)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("num_dims", [5, None])
@pytest.mark.parametrize("name", ["normal", "laplace", "cauchy", "student_t"])
def test_a_learned_scale_nll_in_one_pass_equals_its_float64_form(name, num_dims, reduction):
    """Sums and means with a learned scale take ``onepass.scaled_nll_sum`` (float32, gradients
    written out); its value and every gradient match the float64 form they replace."""
    from robustvae.losses import get_loss

    torch.manual_seed(0)
    x, t = torch.randn(16, 5) * 0.3, torch.zeros(16, 5)
    results = []
    for one_pass in (True, False):
        torch.manual_seed(1)
        params = {"df": 3.0} if name == "student_t" else {}
        loss = get_loss(name, scale=0.2, num_dims=num_dims, learn_scale=True, **params)
        loss.reduction = reduction
        if not one_pass:
            loss._one_pass = lambda *args, **kwargs: None
        results.append(value_and_gradients(loss, x, t))
    (fast, fast_grads), (slow, slow_grads) = results
    torch.testing.assert_close(fast, slow, rtol=1e-6, atol=0)
    for a, b in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_learned_scale_nll_declines_the_one_pass_where_it_could_overflow():
    from robustvae.losses import NormalNLL

    loss = NormalNLL(scale=2e-5, learn_scale=True, reduction="sum")
    x = torch.tensor([1.5e14])  # ∂/∂c = −2.8e42 overflows float32; the latent's is −2.8e37
    loss(x, torch.zeros_like(x)).backward()
    (latent,) = loss.parameters()
    assert torch.isfinite(latent.grad).all() and latent.grad.item() < -1e37
