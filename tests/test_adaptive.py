import math

import pytest
import torch
from conftest import value_and_gradients

from robustvae.losses import AdaptiveLoss
from robustvae.losses import functional as LF


def test_initial_values_and_shapes():
    loss = AdaptiveLoss(5, alpha_init=1.2, scale_init=0.3)
    torch.testing.assert_close(loss.alpha(), torch.full((5,), 1.2))
    torch.testing.assert_close(loss.scale(), torch.full((5,), 0.3))
    default = AdaptiveLoss((3, 4, 4))
    assert default.alpha().shape == (3, 4, 4)
    torch.testing.assert_close(default.alpha(), torch.full((3, 4, 4), 1.0))


def test_parameters_are_trained_and_saved():
    loss = AdaptiveLoss(4)
    names = {name for name, _ in loss.named_parameters()}
    assert names == {"latent_alpha.latent", "latent_scale.latent"}
    fixed = AdaptiveLoss(4, learn_alpha=False, learn_scale=False)
    assert list(fixed.parameters()) == []
    assert set(fixed.state_dict()) == {
        "latent_alpha.latent",
        "latent_alpha.bounds",
        "latent_scale.latent",
        "latent_scale.bounds",
        "scale_pending",  # whether c still waits for the first batch
    }
    half = AdaptiveLoss(4, learn_alpha=False)
    assert {n for n, _ in half.named_parameters()} == {"latent_scale.latent"}


def test_state_dict_round_trip():
    a = AdaptiveLoss(6)
    with torch.no_grad():
        a.latent_alpha.latent.normal_()
        a.latent_scale.latent.normal_()
    b = AdaptiveLoss(6)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b.alpha(), a.alpha())
    torch.testing.assert_close(b.scale(), a.scale())


def test_a_state_saved_with_other_bounds_is_refused_and_an_old_one_loads():
    saved = AdaptiveLoss(3, alpha_lo=0.0, alpha_hi=2.0).state_dict()
    with pytest.raises(ValueError, match=r"learned within bounds \(0.0, 2.0\).*\(0.001, 1.999\)"):
        AdaptiveLoss(3).load_state_dict(saved)
    with pytest.raises(ValueError, match="scale was learned within bounds"):
        AdaptiveLoss(3, scale_lo=1e-3).load_state_dict(AdaptiveLoss(3).state_dict())
    old = {k: v for k, v in AdaptiveLoss(3).state_dict().items() if not k.endswith("bounds")}
    again = AdaptiveLoss(3)
    again.load_state_dict(old)  # written before the bounds were saved: the module's own
    assert again.latent_alpha.bounds.tolist() == [0.001, 1.999]


def test_bounds_hold_for_extreme_latents():
    loss = AdaptiveLoss(4, alpha_lo=0.5, alpha_hi=1.5, scale_lo=1e-3)
    with torch.no_grad():
        loss.latent_alpha.latent.copy_(torch.tensor([-1e4, -10.0, 10.0, 1e4]))
        loss.latent_scale.latent.copy_(torch.tensor([-1e4, -10.0, 10.0, 1e4]))
    alpha, scale = loss.alpha(), loss.scale()
    assert ((alpha >= 0.5) & (alpha <= 1.5)).all()
    assert (scale >= 1e-3).all() and torch.isfinite(scale).all()


def test_forward_is_general_nll_with_current_parameters():
    loss = AdaptiveLoss(7, reduction="none", scale_init=1.0).double()  # c set by hand below
    with torch.no_grad():
        loss.latent_alpha.latent.normal_()
        loss.latent_scale.latent.normal_()
    x, y = torch.randn(3, 7, dtype=torch.float64), torch.randn(3, 7, dtype=torch.float64)
    want = LF.general_nll(x - y, loss.alpha(), loss.scale())
    torch.testing.assert_close(loss(x, y), want)
    loss.reduction = "sum"
    torch.testing.assert_close(loss(x, y), want.sum())


def test_nll_can_be_negative():
    loss = AdaptiveLoss(3, scale_init=0.01)
    assert loss(torch.zeros(2, 3), torch.zeros(2, 3)) < 0


@pytest.mark.parametrize("source, want_low_alpha", [("normal", False), ("cauchy", True)])
def test_learns_shape_and_scale_of_the_data(source, want_low_alpha):
    torch.manual_seed(0)
    n, scale = 4000, 0.5
    if source == "normal":
        data = torch.randn(n, 2) * scale
    else:
        data = torch.distributions.Cauchy(0.0, scale).sample((n, 2))
    # From c = 1, as Barron's; the data's own start is tested below.
    loss = AdaptiveLoss(2, alpha_lo=0.001, alpha_hi=2.5, reduction="mean", scale_init=1.0)
    opt = torch.optim.Adam(loss.parameters(), lr=0.1)
    for _ in range(600):
        opt.zero_grad()
        loss(data, torch.zeros_like(data)).backward()
        opt.step()
    alpha, fitted = loss.alpha().detach(), loss.scale().detach()
    if want_low_alpha:
        assert (alpha < 0.15).all()  # Cauchy is α = 0 with c = scale/√2 (α → 0 is slow)
        torch.testing.assert_close(
            fitted, torch.full((2,), scale / math.sqrt(2)), rtol=0.12, atol=0
        )
    else:
        assert (alpha > 1.7).all()  # normal is α = 2 with c = σ
        torch.testing.assert_close(fitted, torch.full((2,), scale), rtol=0.1, atol=0)


def test_warns_when_alpha_sits_at_a_bound():
    loss = AdaptiveLoss(4)
    assert not loss.warn_if_at_bounds()
    with torch.no_grad():
        loss.latent_alpha.latent.fill_(30.0)
    assert loss.fraction_at_bounds() == 1.0
    with pytest.warns(RuntimeWarning, match="bound"):
        assert loss.warn_if_at_bounds()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_dims=0), "num_dims"),
        (dict(num_dims=(3, -1)), "num_dims"),
        (dict(num_dims=3, alpha_lo=-0.1), "alpha_lo"),
        (dict(num_dims=3, alpha_lo=1.0, alpha_hi=1.0), "alpha_hi"),
        (dict(num_dims=3, alpha_hi=9.0), "alpha_hi"),
        (dict(num_dims=3, scale_lo=0.0), "scale_lo"),
        (dict(num_dims=3, alpha_init=2.5), "alpha_init"),
        (dict(num_dims=3, scale_init=0.0), "scale_init"),
        (dict(num_dims=3, reduction="avg"), "reduction"),
    ],
)
def test_invalid_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveLoss(**kwargs)


def test_input_must_end_with_num_dims():
    loss = AdaptiveLoss((2, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        loss(torch.zeros(4, 3, 2), torch.zeros(4, 3, 2))
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.zeros(4, 2, 3), torch.zeros(5, 2, 3))


def test_images_go_in_as_they_are_flattened_or_per_channel():
    torch.manual_seed(0)
    x, y = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    flat = AdaptiveLoss(784, reduction="none")
    with torch.no_grad():
        flat.latent_alpha.latent.normal_()
    values = flat(x, y)
    assert values.shape == x.shape
    torch.testing.assert_close(values.flatten(1), flat(x.flatten(1), y.flatten(1)))
    images, targets = torch.rand(2, 3, 5, 7), torch.rand(2, 3, 5, 7)
    per_channel = AdaptiveLoss(3, reduction="none")
    with torch.no_grad():
        per_channel.latent_scale.latent.copy_(torch.tensor([-1.0, 0.0, 2.0]))
    values = per_channel(images, targets)
    assert values.shape == images.shape
    channels_last = per_channel(images.movedim(1, -1), targets.movedim(1, -1))
    torch.testing.assert_close(values, channels_last.movedim(-1, 1))
    per_channel.reduction = "sum"
    torch.testing.assert_close(per_channel(images, targets), values.sum())
    with pytest.raises(ValueError, match="that many channels"):
        AdaptiveLoss(4)(images, targets)


def test_the_bound_warning_fires_by_itself_in_a_training_loop(monkeypatch):
    from robustvae.losses import adaptive as module

    monkeypatch.setattr(module, "CHECK_EVERY", 5)
    loss = AdaptiveLoss(4, alpha_lo=0.5, alpha_hi=1.5)
    with torch.no_grad():
        loss.latent_alpha.latent.fill_(40.0)  # α at its upper bound
    x = torch.zeros(2, 4)
    with pytest.warns(RuntimeWarning, match="sit at a bound"):
        for _ in range(5):
            loss(x, x)
    loss.eval()  # evaluation never warns
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(10):
            loss(x, x)


def test_fused_gradients_equal_autograd_over_the_whole_range():
    """The adaptive loss's written-out gradients (adaptive_kernel) against autograd through
    functional.general_per_dim, in float64, from 0 to 1e30 and across α ∈ [0, 8]."""
    from robustvae.losses import functional as LF
    from robustvae.losses.adaptive_kernel import AdaptiveRhoSum

    alpha = torch.tensor([0.0, 1e-6, 0.3, 1.0, 1.999, 2.0, 2.5, 5.0, 8.0], dtype=torch.float64)
    scale = torch.tensor([1e-3, 0.1, 1.0, 3.0, 1e-25, 1e25, 0.5, 2.0, 1e-2], dtype=torch.float64)
    mags = torch.tensor([0, 1e-30, 1e-10, 1e-3, 0.1, 1, 10, 1e3, 1e6, 1e10, 1e20, 1e30])
    x = torch.cat([mags, -mags]).double()[:, None].expand(-1, 9).contiguous()
    leaves = [t.clone().requires_grad_(True) for t in (x, alpha, scale)]
    fused = AdaptiveRhoSum.apply(leaves[0], torch.zeros_like(x), leaves[1], leaves[2])
    got = torch.autograd.grad(fused, leaves)
    leaves = [t.clone().requires_grad_(True) for t in (x, alpha, scale)]
    rho = LF.general_per_dim(leaves[0], *LF.barron_terms(leaves[1], leaves[2], leaves[0]))
    want = torch.autograd.grad(rho.sum(), leaves)
    torch.testing.assert_close(fused, rho.sum(), rtol=1e-14, atol=0)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("shape, dims", [((5, 3, 4), (3, 4)), ((3, 4), (3, 4)), ((2, 3, 6, 6), 3)])
def test_summed_loss_gradients_equal_those_of_the_elementwise_values(shape, dims):
    """The fused sum (written-out gradients, scratch arrays reused between calls) against
    autograd through reduction='none', including two calls before one backward."""
    torch.manual_seed(0)
    summed = AdaptiveLoss(dims, reduction="sum", scale_init=0.3).double()
    elementwise = AdaptiveLoss(dims, reduction="none", scale_init=0.3).double()
    elementwise.load_state_dict(summed.state_dict())
    a, b = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    target = torch.zeros(shape, dtype=torch.float64)
    grads = []
    for loss, reduce in ((summed, lambda v: v), (elementwise, torch.sum)):
        xa, xb = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
        value = reduce(loss(xa, target)) + 2 * reduce(loss(xb, target))
        grads.append([value, *torch.autograd.grad(value, [xa, xb, *loss.parameters()])])
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_an_int_num_dims_that_is_several_dimensions_of_the_items_is_refused():
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError) as caught:
        AdaptiveLoss(num_dims=32)(x, torch.zeros_like(x))
    message = str(caught.value)
    assert "ambiguous" in message and "num_dims=3072" in message and "num_dims=(32,)" in message
    assert len(message.splitlines()) == 1
    # A shape says which: one α per last-dimension column; the other readings stay open.
    assert AdaptiveLoss(num_dims=(32,)).alpha().shape == (32,)
    AdaptiveLoss(num_dims=(32,))(x, torch.zeros_like(x))
    AdaptiveLoss(num_dims=3)(x, torch.zeros_like(x))  # channels
    AdaptiveLoss(num_dims=3)(x.movedim(1, -1), torch.zeros_like(x).movedim(1, -1))  # last
    AdaptiveLoss(num_dims=3072)(x, torch.zeros_like(x))  # every value


def test_without_scale_init_the_first_training_batch_sets_the_scale():
    torch.manual_seed(0)
    x, y = torch.randn(64, 10) * 0.1, torch.zeros(64, 10)
    loss = AdaptiveLoss(10)
    loss.eval()
    loss(x, y)  # evaluation does not decide it
    assert bool(loss.scale_pending)
    loss.train()
    loss(x, y)
    median = x.abs().median().item()
    torch.testing.assert_close(loss.scale(), torch.full((10,), median))
    assert not bool(loss.scale_pending)
    loss(x * 10, y)  # later batches leave it to the optimiser
    torch.testing.assert_close(loss.scale(), torch.full((10,), median))
    fixed = AdaptiveLoss(10, scale_init=0.5)
    fixed(x, y)
    torch.testing.assert_close(fixed.scale(), torch.full((10,), 0.5))


def test_the_scale_taken_from_data_resumes_and_old_checkpoints_still_load():
    x, y = torch.randn(32, 4) * 0.2, torch.zeros(32, 4)
    trained = AdaptiveLoss(4)
    trained(x, y)
    resumed = AdaptiveLoss(4)
    resumed.load_state_dict(trained.state_dict())
    resumed(x * 5, y)  # loaded: it does not take the scale again
    torch.testing.assert_close(resumed.scale(), trained.scale())
    old = {k: v for k, v in AdaptiveLoss(4, scale_init=0.3).state_dict().items()}
    del old["scale_pending"]  # a checkpoint from before the buffer existed
    loaded = AdaptiveLoss(4)
    loaded.load_state_dict(old)
    loaded(x, y)
    torch.testing.assert_close(loaded.scale(), torch.full((4,), 0.3))
    assert AdaptiveLoss(4, scale_lo=1e-3)._scale_from(y, y) is None  # all-zero residuals


def test_no_nan_gradient_where_a_product_inside_the_gradient_overflows():
    # Issue 27's corner: α near 8, c = 2e-5, x = −3 in float32. ρ = 5.2e37 is finite, G·q
    # overflows; ∂ρ/∂α came out inf − inf = NaN. Now it is finite in float64 and, in
    # float32, inf where ∂ρ/∂α itself (5.5e38) is past float32's maximum, never NaN.
    grads = {}
    for dtype in (torch.float32, torch.float64):
        loss = AdaptiveLoss(
            1, alpha_hi=8.0, alpha_init=7.9, scale_lo=1e-6, scale_init=2e-5, reduction="sum"
        ).to(dtype)
        x = torch.tensor([[-3.0]], dtype=dtype)
        loss(x, torch.zeros_like(x)).backward()
        grads[dtype] = loss.latent_alpha.latent.grad.item()
        assert not math.isnan(grads[dtype])
    assert math.isfinite(grads[torch.float64]) and grads[torch.float64] > 1e37


def test_the_eager_pass_in_chunks_equals_it_whole(monkeypatch):
    from robustvae.losses import adaptive_kernel, fused

    monkeypatch.setitem(fused._state, "mode", "never")  # eager
    torch.manual_seed(0)
    x, t = torch.randn(37, 5, 6), torch.randn(37, 5, 6)
    results = []
    for chunk in (1 << 30, 64):  # whole, then slices of 2 rows (60 elements)
        monkeypatch.setattr(adaptive_kernel, "EAGER_CHUNK", chunk)
        loss = AdaptiveLoss((5, 6), reduction="mean", scale_init=0.5)
        results.append(value_and_gradients(loss, x, t))
    (whole, whole_grads), (chunked, chunked_grads) = results
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=0)
    for a, b in zip(chunked_grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)
