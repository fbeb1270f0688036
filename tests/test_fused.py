"""Fused (torch.compile) evaluation agrees with the eager formulas, and falls back cleanly."""

import pytest
import torch
from conftest import DEVICES

from robustvae.losses import AdaptiveLoss, GeneralLoss, LogCoshLoss, fused, set_compile
from robustvae.losses.fused import MIN_NUMEL, ReducedLoss

pytestmark = pytest.mark.compile


@pytest.fixture
def compiled():
    set_compile(True)
    yield
    set_compile(False)


def value_and_grads(loss, x, y):
    x = x.clone().requires_grad_(True)
    out = loss(x, y)
    params = [p for p in loss.parameters()]
    grads = torch.autograd.grad(out, [x, *params])
    return out.detach(), grads


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_compiled_losses_match_eager(compiled, reduction, device):
    rows, dims = MIN_NUMEL // 64 + 3, 64
    x, y = torch.rand(rows, dims, device=device), torch.rand(rows, dims, device=device)
    adaptive = AdaptiveLoss(dims, reduction=reduction).to(device)
    with torch.no_grad():
        adaptive.latent_alpha.latent.normal_()
        adaptive.latent_scale.latent.normal_()
    losses = [
        LogCoshLoss(a=100.0, reduction=reduction).to(device),
        GeneralLoss(alpha=1.0, scale=0.1, reduction=reduction).to(device),
        GeneralLoss(alpha=0.0, scale=0.1, reduction=reduction).to(device),
        adaptive,
    ]
    for loss in losses:
        got = value_and_grads(loss, x, y)
        set_compile(False)
        want = value_and_grads(loss, x, y)
        set_compile(True)
        torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6, msg=repr(loss))
        for g, w in zip(got[1], want[1], strict=True):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6, msg=repr(loss))


def test_compiler_failure_falls_back_to_eager_once(compiled, monkeypatch):
    def broken(fn):
        def run(*args):
            raise RuntimeError("no C compiler")

        return run

    monkeypatch.setattr(fused.torch, "compile", broken)
    reduced = ReducedLoss(lambda a, b: (a - b) ** 2)
    x, y = torch.ones(MIN_NUMEL), torch.zeros(MIN_NUMEL)
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        out = reduced("sum", x, y)
    assert out.item() == MIN_NUMEL
    assert not fused.compile_enabled()


def test_input_errors_are_not_mistaken_for_compiler_failures(compiled, monkeypatch):
    monkeypatch.setattr(fused.torch, "compile", lambda fn: fn)
    reduced = ReducedLoss(lambda a, b: (a - b) ** 2)
    with pytest.raises(RuntimeError, match="size"):
        reduced("sum", torch.ones(MIN_NUMEL), torch.ones(MIN_NUMEL + 1))
    assert fused.compile_enabled()


def test_many_kernels_stay_compiled_and_special_alphas_stay_right(compiled, monkeypatch):
    """Each kernel has its own dynamo cache: a dozen loss variants in one process neither hit
    the recompile limit nor reuse a graph guarded for another α (e.g. ±inf after finite α)."""
    import functools
    import math

    from torch._dynamo.utils import counters

    monkeypatch.setattr(fused.torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()
    counters.clear()
    x = torch.randn(MIN_NUMEL, requires_grad=True)
    y = torch.zeros(MIN_NUMEL)
    variants = [LogCoshLoss(a=a, reduction=r) for a in (1.0, 100.0) for r in ("sum", "mean")]
    alphas = (0.5, 1.0, -2.0, 0.0, 2.0, -math.inf, math.inf, 3.0)
    variants += [GeneralLoss(alpha=a, scale=10.0, reduction="sum") for a in alphas]
    variants += [GeneralLoss(alpha=a, scale=10.0, reduction="mean") for a in alphas]
    for loss in variants:
        got = loss(x, y)
        set_compile(False)
        want = loss(x, y)
        set_compile(True)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=repr(loss))
    assert counters["frames"]["total"] == counters["frames"]["ok"] >= len(variants) // 2


def test_auto_compiles_a_kernel_once_its_eager_time_would_pay_for_it(monkeypatch, capsys):
    compiled_calls = []

    def counting_compile(fn):
        def run(*args):
            compiled_calls.append(1)
            return fn(*args)

        return run

    monkeypatch.setattr(fused.torch, "compile", counting_compile)
    monkeypatch.setattr(fused, "COMPILE_AFTER_SECONDS", 0.05)
    kernel = fused.Fused(lambda a: (a.exp() - a).sum(), "probe")
    x = torch.rand(MIN_NUMEL)
    set_compile("auto")
    try:
        calls = 0
        while not compiled_calls:
            kernel(x)
            calls += 1
            assert calls < 10_000
        assert calls > 1 and kernel.eager_seconds >= 0.05  # eager until the time was spent
        for _ in range(3):
            kernel(x)
        assert len(compiled_calls) == 4
        assert capsys.readouterr().err.count("compiling the loss kernel probe") == 1
        kernel(x[:100])  # small inputs stay eager
        assert len(compiled_calls) == 4
    finally:
        set_compile(False)
    with pytest.raises(ValueError, match="True, False or 'auto'"):
        set_compile("sometimes")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1e-30, 0.1, 1e30])
def test_the_fused_charbonnier_matches_the_eager_power_form_across_the_range(
    compiled, monkeypatch, dtype, scale
):
    """α = 1 compiles to a square-root kernel (eagerly it takes the power form): values and
    gradients agree from x = 0 to the dtype's maximum, where u = x/c overflows included."""
    import functools

    from robustvae.losses import functional as LF

    monkeypatch.setattr(fused.torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()
    top = torch.tensor([torch.finfo(dtype).max / 2], dtype=dtype)
    magnitudes = torch.logspace(-40, 38, 200, dtype=torch.float64).to(dtype)
    magnitudes = torch.cat([torch.zeros(1, dtype=dtype), magnitudes, top])
    values = torch.cat([magnitudes, -magnitudes]).repeat(MIN_NUMEL // 400 + 1)[:MIN_NUMEL]

    def value_and_gradient():
        x = values.clone().requires_grad_(True)
        reduced = GeneralLoss(alpha=1.0, scale=scale, reduction="sum")
        (grad,) = torch.autograd.grad(reduced(x, torch.zeros_like(x)), x)
        kernel = LF.fixed_alpha_kernel(1.0, scale)
        compiled_values = fused.torch.compile(lambda v: LF.fixed_alpha_values(v, *kernel))
        return compiled_values(values), grad

    got, got_grad = value_and_gradient()
    set_compile(False)
    want = LF.general(values, 1.0, scale)
    want_grad = value_and_gradient()[1]
    set_compile(True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-30)
    assert not torch.isnan(got_grad).any()
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-5, atol=0)
