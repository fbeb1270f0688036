"""robustvae.models: net shapes, VAE/WAE objectives, the MMD estimator, configs."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from conftest import DEVICES

from robustvae.losses import AdaptiveLoss
from robustvae.models import (
    VAE,
    WAE,
    AutoEncoder,
    AutoencoderConfig,
    ModelConfig,
    build_model,
    build_nets,
    gaussian_kl,
    imq_kernel,
    mmd_imq,
)
from robustvae.models.mmd import IMQ_SCALES
from robustvae.models.nets import scaled

MNIST = (1, 28, 28)
CELEBA = (3, 64, 64)


def blobs(n: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """Fixed synthetic images in [0, 1]: one Gaussian bump per channel at a random place."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    cy = torch.rand(n, c, 1, 1, generator=g) * h * 0.6 + h * 0.2
    cx = torch.rand(n, c, 1, 1, generator=g) * w * 0.6 + w * 0.2
    s = (torch.rand(n, c, 1, 1, generator=g) * 0.1 + 0.1) * h
    return torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2))


# ----------------------------------------------------------------------------- nets


@pytest.mark.parametrize("width", [1.0, 1 / 8])
@pytest.mark.parametrize(
    ("arch", "shape"), [("mlp", MNIST), ("mlp", CELEBA), ("conv", MNIST), ("conv", CELEBA)]
)
def test_net_shapes_and_range(arch, shape, width):
    latent = 8 if shape == MNIST else 64
    encoder, decoder = build_nets(arch, shape, latent, width, encoder_outputs=2 * latent)
    with torch.no_grad():
        h = encoder(torch.rand(2, *shape))
        x = decoder(torch.randn(2, latent) * 10)  # large codes: outputs still in [0, 1]
    assert h.shape == (2, 2 * latent)
    assert x.shape == (2, *shape)
    assert torch.isfinite(h).all()
    assert x.min() >= 0 and x.max() <= 1


def test_conv_layer_shapes_at_width_1():
    """The documented shapes: 28 → 14 → 7 → 4 → 2 and 64 → 32 → 16 → 8 → 4 (encoder); the
    decoders double from 7 (resp. 8) and end with a size-keeping stride-1 deconvolution."""

    def trace(net, x):
        shapes = []
        for layer in net.modules():
            if isinstance(layer, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
        with torch.no_grad():
            net(x)
        return shapes

    enc, dec = build_nets("conv", MNIST, 8, 1.0, 16)
    assert trace(enc, torch.rand(1, *MNIST)) == [
        (128, 14, 14),
        (256, 7, 7),
        (512, 4, 4),
        (1024, 2, 2),
    ]
    assert enc.fc.in_features == 4096
    assert dec.net[0].out_features == 7 * 7 * 1024
    assert trace(dec.eval(), torch.randn(1, 8)) == [(512, 14, 14), (256, 28, 28), (1, 29, 29)]
    enc, dec = build_nets("conv", CELEBA, 64, 1.0, 128)
    assert trace(enc, torch.rand(1, *CELEBA)) == [
        (128, 32, 32),
        (256, 16, 16),
        (512, 8, 8),
        (1024, 4, 4),
    ]
    assert dec.net[0].out_features == 8 * 8 * 1024
    assert trace(dec.eval(), torch.randn(1, 64)) == [
        (512, 16, 16),
        (256, 32, 32),
        (128, 64, 64),
        (3, 65, 65),  # cropped to 64×64 by the stride-1 'SAME' deconvolution
    ]


def test_width_scales_units():
    assert scaled(500, 1.0) == 500 and scaled(1024, 1 / 8) == 128 and scaled(128, 1e-6) == 1
    enc, dec = build_nets("mlp", MNIST, 8, 0.1, 8)
    assert enc.net[1].out_features == 50
    enc, dec = build_nets("conv", MNIST, 8, 1e-6, 8)  # everything at 1 unit still runs
    assert dec(enc(torch.rand(3, *MNIST))[:, :8]).shape == (3, *MNIST)


@pytest.mark.parametrize("width", [0, -0.5, math.nan, math.inf, True, "1"])
def test_width_must_be_positive(width):
    with pytest.raises(ValueError, match="width"):
        build_nets("mlp", MNIST, 8, width, 16)
    with pytest.raises(ValueError, match="width"):
        ModelConfig(width=width)


def test_conv_needs_a_supported_size():
    with pytest.raises(ValueError, match="28×28, 64×64"):
        build_nets("conv", (1, 32, 32), 8, 1.0, 16)
    with pytest.raises(ValueError, match="mlp, conv"):
        build_nets("resnet", MNIST, 8, 1.0, 16)
    encoder, decoder = build_nets("mlp", (1, 32, 32), 8, 1.0, 16)  # MLPs take any size
    assert encoder(torch.rand(2, 1, 32, 32)).shape == (2, 16)
    assert decoder(torch.rand(2, 8)).shape == (2, 1, 32, 32)


# ----------------------------------------------------------------------------- training

LOSSES = {"l2": (), "l1": (), "logcosh": (("a", 100.0),), "adaptive": ()}


@pytest.mark.parametrize(
    ("kind", "arch", "loss"), list(itertools.product(["vae", "wae"], ["mlp", "conv"], LOSSES))
)
def test_a_few_adam_steps_lower_the_loss(kind, arch, loss):
    config = ModelConfig(
        kind=kind,
        arch=arch,
        width=0.25 if arch == "mlp" else 1 / 8,
        loss=loss,
        loss_params=LOSSES[loss],
    )
    model = build_model(config)
    x = blobs(32, MNIST)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses, errors = [], []
    for _ in range(20):
        terms = model(x)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        assert all(torch.isfinite(v) and v.dim() == 0 for v in terms.values())
        losses.append(terms["loss"].item())
        errors.append(terms["sq_l2"].item())
    early, late = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert late < early - 0.02 * abs(early), losses
    assert errors[-1] < 0.7 * errors[0], errors


def test_terms_are_what_they_say():
    x = blobs(16, MNIST)
    vae = build_model(ModelConfig(loss="logcosh", loss_params={"a": 100}, recon_weight=3.0))
    terms = vae(x)
    assert set(terms) == {"loss", "recon", "kl", "sq_l2"}
    assert terms["loss"].item() == pytest.approx(3 * terms["recon"].item() + terms["kl"].item())
    assert not terms["sq_l2"].requires_grad

    wae = build_model(ModelConfig(kind="wae", loss="l1", recon_weight=2.0, mmd_weight=7.0))
    torch.manual_seed(5)
    terms = wae(x)
    assert set(terms) == {"loss", "recon", "mmd", "sq_l2"}
    expected = 2 * terms["recon"] + 7 * terms["mmd"]
    assert terms["loss"].item() == pytest.approx(expected.item())
    with torch.no_grad():
        x_hat = wae.reconstruct(x)  # deterministic encoder, no batch norm: the same x̂
    assert terms["recon"].item() == pytest.approx((x_hat - x).abs().sum().item() / 16, rel=1e-5)
    assert terms["sq_l2"].item() == pytest.approx((x_hat - x).pow(2).sum().item() / 16, rel=1e-5)
    # the MMD term is the functional estimate against the prior sample drawn after encoding
    torch.manual_seed(5)
    with torch.no_grad():
        z = wae.encode(x)
        prior = torch.randn_like(z)
    assert terms["mmd"].item() == pytest.approx(mmd_imq(z, prior).item(), rel=1e-5)


def test_seeded_runs_repeat():
    config = ModelConfig(kind="vae", arch="conv", width=1 / 16)
    x = blobs(8, MNIST)
    results = []
    for _ in range(2):
        torch.manual_seed(1)
        model = build_model(config)
        results.append({k: v.item() for k, v in model(x).items()})
    assert results[0] == results[1]


# ----------------------------------------------------------------------------- VAE


def test_kl_matches_closed_form_in_float64():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(50, 8, generator=g, dtype=torch.float64) * 2
    log_var = torch.randn(50, 8, generator=g, dtype=torch.float64) * 2
    for s in (1.0, 0.5, 3.0):
        q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
        p = torch.distributions.Normal(torch.zeros_like(mean), torch.full_like(mean, s))
        reference = torch.distributions.kl_divergence(q, p).sum(-1)
        torch.testing.assert_close(gaussian_kl(mean, log_var, s), reference, rtol=1e-12, atol=0)
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0


def test_vae_kl_term_and_encode():
    model = build_model(ModelConfig(latent_dim=5))
    x = blobs(10, MNIST)
    mean, log_var = model.posterior(x)
    assert mean.shape == log_var.shape == (10, 5)
    torch.testing.assert_close(model.encode(x), mean)
    expected = 0.5 * (log_var.double().exp() + mean.double() ** 2 - 1 - log_var.double())
    assert model(x)["kl"].item() == pytest.approx(expected.sum(1).mean().item(), rel=1e-5)


# ----------------------------------------------------------------------------- MMD


def mmd_loop(x, y, prior_variance=1.0):
    """Textbook unbiased MMD² with the multi-scale IMQ kernel, O(n²) Python loops in float64."""
    x, y = x.double().tolist(), y.double().tolist()
    d = len(x[0])

    def k(a, b):
        dist = sum((ai - bi) ** 2 for ai, bi in zip(a, b, strict=True))
        return sum(
            s * 2 * d * prior_variance / (s * 2 * d * prior_variance + dist) for s in IMQ_SCALES
        )

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


def test_mmd_matches_a_float64_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, generator=g, dtype=torch.float64) + 0.3
    y = torch.randn(9, 3, generator=g, dtype=torch.float64)
    assert mmd_imq(x, y).item() == pytest.approx(mmd_loop(x, y), rel=1e-12)
    assert mmd_imq(x, y, prior_variance=4.0).item() == pytest.approx(mmd_loop(x, y, 4.0), rel=1e-12)
    assert mmd_imq(x.float(), y.float()).item() == pytest.approx(mmd_loop(x, y), abs=1e-5)
    assert mmd_imq(x, y).item() == pytest.approx(mmd_imq(y, x).item(), rel=1e-12)


def test_mmd_is_near_zero_for_one_distribution_and_grows_apart():
    torch.manual_seed(0)
    same = [mmd_imq(torch.randn(400, 8), torch.randn(400, 8)).item() for _ in range(5)]
    assert max(abs(v) for v in same) < 0.02
    shifted = [mmd_imq(torch.randn(400, 8) + t, torch.randn(400, 8)).item() for t in (0.5, 1, 2)]
    assert min(shifted) > 0.1 and shifted == sorted(shifted)
    assert mmd_imq(torch.randn(400, 8) * 2, torch.randn(400, 8)).item() > 0.1


def test_mmd_gradient_and_errors():
    z = torch.randn(16, 4, requires_grad=True)
    mmd_imq(z, torch.randn(16, 4)).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    k = imq_kernel(torch.zeros(2, 2), base_c=1.0)
    assert torch.equal(k, torch.full((2, 2), float(len(IMQ_SCALES))))
    with pytest.raises(ValueError, match="at least 2"):
        mmd_imq(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match="shaped"):
        mmd_imq(torch.randn(3, 4), torch.randn(3, 5))
    wae = build_model(ModelConfig(kind="wae"))
    with pytest.raises(ValueError, match="at least 2"):
        wae(blobs(1, MNIST))


# ----------------------------------------------------------------------------- losses inside


def test_adaptive_parameters_train_and_save():
    model = build_model(ModelConfig(loss="adaptive", width=0.25))
    adaptive = model.adaptive_loss()
    assert isinstance(adaptive, AdaptiveLoss) and adaptive.dims == MNIST
    assert adaptive.reduction == "sum"
    ids = {id(p) for p in model.parameters()}
    assert id(adaptive.latent_alpha.latent) in ids and id(adaptive.latent_scale.latent) in ids
    keys = model.state_dict().keys()
    assert any("latent_alpha" in k for k in keys) and any("latent_scale" in k for k in keys)

    alpha0, scale0 = adaptive.alpha().detach().clone(), adaptive.scale().detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = blobs(16, MNIST)
    for _ in range(3):
        optimizer.zero_grad()
        model(x)["loss"].backward()
        optimizer.step()
    assert not torch.equal(adaptive.alpha(), alpha0)
    assert not torch.equal(adaptive.scale(), scale0)

    fresh = build_model(model.config)
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh.adaptive_loss().alpha(), adaptive.alpha())
    torch.manual_seed(3)
    a = model(x)["loss"]
    torch.manual_seed(3)
    assert fresh(x)["loss"].item() == a.item()
    assert build_model(ModelConfig()).adaptive_loss() is None


def test_nll_losses_learn_per_pixel_scales_only_when_asked():
    fixed = build_model(ModelConfig(loss="normal", loss_params={"scale": 0.1}))
    assert list(fixed.recon_loss.parameters()) == []
    learned = build_model(ModelConfig(loss="cauchy", loss_params={"learn_scale": True}))
    (latent,) = learned.recon_loss.parameters()
    assert latent.shape == MNIST
    t = build_model(ModelConfig(loss="student_t", loss_params={"learn_df": True, "df": 3.0}))
    assert [p.shape for p in t.recon_loss.parameters()] == [MNIST]
    assert torch.isfinite(learned(blobs(4, MNIST))["loss"])


@pytest.mark.parametrize("loss", ["adaptive", "l2", "logcosh", "normal"])
def test_dct_representation(loss):
    params = {"a": 100.0} if loss == "logcosh" else {}
    config = ModelConfig(loss=loss, representation="dct", loss_params=params, width=0.25)
    model = build_model(config)
    x = blobs(8, MNIST)
    terms = model(x)
    terms["loss"].backward()
    assert all(torch.isfinite(v) for v in terms.values())
    if loss == "l2":  # the orthonormal DCT keeps sums of squares
        assert terms["recon"].item() == pytest.approx(terms["sq_l2"].item(), rel=1e-4)
    if loss == "adaptive":
        assert model.adaptive_loss().dims == MNIST
        assert any(p.grad is not None for p in model.adaptive_loss().parameters())


def test_wavelet_yuv_on_colour_conv():
    config = ModelConfig(
        kind="wae",
        arch="conv",
        image_shape=CELEBA,
        latent_dim=64,
        width=1 / 16,
        loss="adaptive",
        representation="wavelet",
        color="yuv",
        loss_params={"wavelet_levels": 2},
    )
    model = build_model(config)
    assert model.recon_loss.transform.levels == 2
    terms = model(blobs(4, CELEBA))
    terms["loss"].backward()
    assert all(torch.isfinite(v) for v in terms.values())
    plain = build_model(ModelConfig(image_shape=CELEBA, loss="l1", color="yuv", width=0.1))
    assert torch.isfinite(plain(blobs(4, CELEBA))["loss"])


# ----------------------------------------------------------------------------- interface


@pytest.mark.parametrize("kind", ["vae", "wae"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_decode_sample_reconstruct(kind, arch):
    model = build_model(ModelConfig(kind=kind, arch=arch, width=1 / 8, prior_scale=2.0)).eval()
    assert isinstance(model, AutoEncoder) and isinstance(model, VAE if kind == "vae" else WAE)
    x = blobs(5, MNIST)
    assert model.encode(x).shape == (5, 8)
    assert model.reconstruct(x).shape == x.shape
    samples = model.sample(6, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (6, *MNIST) and samples.min() >= 0 and samples.max() <= 1
    again = model.sample(6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(samples, again)
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(1)) * 2.0
    with torch.no_grad():
        torch.testing.assert_close(model.decode(z), samples)
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        model.decode(torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="n must"):
        model.sample(0)


# ----------------------------------------------------------------------------- config


def test_config_defaults_and_dict_round_trip():
    config = ModelConfig()
    assert (config.kind, config.arch, config.image_shape, config.latent_dim) == (
        "vae",
        "mlp",
        (1, 28, 28),
        8,
    )
    assert config.mmd_weight == 10.0 and config.recon_weight == 1.0
    custom = ModelConfig(
        kind="wae",
        arch="conv",
        image_shape=[3, 64, 64],
        latent_dim=64,
        width=1,
        loss="logcosh",
        loss_params={"a": 2.5},
        representation="dct",
        color="yuv",
        recon_weight=2,
        mmd_weight=100,
        prior_scale=1.5,
    )
    assert custom.image_shape == (3, 64, 64) and isinstance(custom.width, float)
    assert custom.loss_params == (("a", 2.5),) and custom.loss_spec().kwargs == {"a": 2.5}
    assert hash(custom) == hash(ModelConfig.from_dict(custom.to_dict()))
    for c in (config, custom):
        text = json.dumps(c.to_dict())
        assert ModelConfig.from_dict(json.loads(text)) == c


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="'lattent_dim', 'wdith'.*valid: arch, latent_dim"):
        ModelConfig.from_dict({"lattent_dim": 3, "wdith": 1.0})
    assert ModelConfig.from_dict({"latent_dim": 3}).latent_dim == 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kind", "gan", "vae, wae"),
        ("arch", "resnet", "mlp, conv"),
        ("image_shape", (28, 28), "image_shape"),
        ("image_shape", (1, 0, 28), "image_shape"),
        ("latent_dim", 0, "latent_dim"),
        ("latent_dim", 2.0, "latent_dim"),
        ("loss", "huber", "l2, l1, logcosh"),
        ("loss_params", {"b": 1.0}, "valid"),
        ("loss_params", {"reduction": "mean"}, "model sets"),
        ("loss_params", {"a": [1, 2]}, "loss_params"),
        ("loss_params", 5, "loss_params"),
        ("representation", "fft", "pixels, dct, wavelet"),
        ("color", "hsv", "rgb, yuv"),
        ("recon_weight", 0.0, "recon_weight"),
        ("mmd_weight", -1.0, "mmd_weight"),
        ("mmd_weight", math.nan, "mmd_weight"),
        ("prior_scale", 0.0, "prior_scale"),
    ],
)
def test_config_validation(field, value, message):
    kwargs = {field: value}
    if field == "loss_params":
        kwargs["loss"] = "logcosh"
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_config_cross_field_validation():
    with pytest.raises(ValueError, match="28×28, 64×64"):
        ModelConfig(arch="conv", image_shape=(1, 32, 32))
    with pytest.raises(ValueError, match="3-channel"):
        ModelConfig(color="yuv")
    with pytest.raises(ValueError, match="a must lie"):
        ModelConfig(loss="logcosh", loss_params={"a": -1.0})
    with pytest.raises(ValueError, match="wavelet_levels"):
        ModelConfig(loss="l2", loss_params={"wavelet_levels": 2})
    with pytest.raises(ValueError, match="repeats"):
        ModelConfig(loss="logcosh", loss_params=(("a", 1.0), ("a", 2.0)))
    with pytest.raises(ValueError, match="ModelConfig"):
        build_model({"kind": "vae"})
    assert ModelConfig(loss="general", loss_params={"scale": 0.1, "alpha": 1.0}).loss_params == (
        ("alpha", 1.0),
        ("scale", 0.1),
    )
    assert ModelConfig(mmd_weight=0).mmd_weight == 0.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["vae", "wae"])
def test_runs_on_device(device, kind):
    config = ModelConfig(kind=kind, arch="conv", width=1 / 8, loss="adaptive")
    model = build_model(config).to(device)
    terms = model(blobs(16, MNIST).to(device))
    terms["loss"].backward()
    assert all(v.device.type == device and torch.isfinite(v) for v in terms.values())
    assert model.adaptive_loss().latent_alpha.latent.grad.device.type == device
    model.eval()
    samples = model.sample(4, generator=torch.Generator().manual_seed(0))
    cpu_samples = model.cpu().sample(4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(samples.cpu(), cpu_samples, rtol=1e-4, atol=1e-4)


def test_classes_check_their_kind():
    with pytest.raises(ValueError, match="kind 'wae'"):
        WAE(ModelConfig(kind="vae"))
    # A VAE's encoder gives a mean and a log-variance per latent dimension.
    assert VAE(ModelConfig(latent_dim=3)).encoder(torch.zeros(2, 1, 28, 28)).shape == (2, 6)


def test_run_settings_resolve_against_the_data_shape():
    settings = AutoencoderConfig(arch="conv", loss="logcosh", loss_params={"a": 5.0})
    assert settings.latent_dim is None
    small, large = settings.resolve("wae", (1, 28, 28)), settings.resolve("vae", (3, 64, 64))
    assert (small.kind, small.latent_dim, large.latent_dim) == ("wae", 8, 64)
    assert small.loss_params == large.loss_params == (("a", 5.0),)
    with pytest.raises(ValueError, match="28×28, 64×64"):
        settings.resolve("vae", (1, 32, 32))
    with pytest.raises(ValueError, match="a must lie"):  # checked before any data is known
        AutoencoderConfig(loss="logcosh", loss_params={"a": -1.0})
    with pytest.raises(ValueError, match="unknown AutoencoderConfig setting.*'image_shape'"):
        AutoencoderConfig.from_dict({"image_shape": [1, 28, 28]})
