import json
import math

import pytest
import torch
from torch import nn

from robustvae.metrics import (
    Sharpness,
    frechet_distance,
    l1_per_image,
    psnr_per_image,
    sharpness,
    sharpness_per_image,
    squared_l2_per_image,
    ssim_per_image,
)


def test_sharpness_of_a_single_spike_by_hand():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    # valid 3×3 responses: -4 at the centre, 1 at its four neighbours, 0 at the corners
    assert sharpness(image) == pytest.approx(20 / 9 - 0.0)


def test_sharpness_is_zero_for_flat_and_linear_images_and_averages_channels():
    flat = torch.full((2, 1, 8, 8), 0.3)
    ramp = torch.linspace(0, 1, 8).expand(1, 1, 8, 8)
    assert sharpness(flat) == 0.0
    assert sharpness(ramp) == pytest.approx(0.0, abs=1e-12)
    spike = torch.zeros(1, 3, 5, 5)
    spike[0, 1, 2, 2] = 1.0  # one of three channels
    assert sharpness(spike) == pytest.approx(20 / 27)
    acc = Sharpness()
    acc.update(spike)
    acc.update(flat.expand(2, 3, 8, 8))
    assert acc.compute() == pytest.approx(20 / 27 / 3)
    with pytest.raises(ValueError, match="H, W >= 3"):
        sharpness_per_image(torch.zeros(1, 1, 2, 9))


def test_reconstruction_errors_psnr_ssim():
    target = torch.rand(3, 1, 16, 16, dtype=torch.float64) * 0.8
    preds = target + 0.1
    torch.testing.assert_close(
        squared_l2_per_image(preds, target), torch.full((3,), 2.56, dtype=torch.float64)
    )
    torch.testing.assert_close(
        l1_per_image(preds, target), torch.full((3,), 25.6, dtype=torch.float64)
    )
    torch.testing.assert_close(
        psnr_per_image(preds, target), torch.full((3,), 20.0, dtype=torch.float64)
    )
    torch.testing.assert_close(ssim_per_image(target, target), torch.ones(3, dtype=torch.float64))
    assert (ssim_per_image(preds, target) < 1).all()
    with pytest.raises(ValueError, match="one shape"):
        psnr_per_image(preds, target[:2])


class Identity(nn.Module):
    num_features = 4

    def forward(self, x):
        return x.flatten(1)


def test_fid_of_a_set_against_itself_is_zero():
    x = torch.randn(500, 4, 1, 1, dtype=torch.float64)
    assert frechet_distance(Identity(), x, x) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_two_gaussian_sets_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    n, d = 40000, 4
    mean = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    std = torch.tensor([2.0, 1.0, 0.5, 3.0], dtype=torch.float64)
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = torch.randn(n, d, generator=g, dtype=torch.float64) * std + mean
    # N(0, I) against N(μ, diag σ²): ‖μ‖² + Σ (1 + σ² − 2σ)
    closed = (mean**2).sum().item() + ((1 - std) ** 2).sum().item()
    got = frechet_distance(Identity(), a.view(n, d, 1, 1), b.view(n, d, 1, 1))
    assert got == pytest.approx(closed, rel=0.02)


def test_fid_needs_a_feature_size_and_two_images():
    with pytest.raises(ValueError, match="num_features"):
        frechet_distance(nn.Flatten(), torch.zeros(3, 4, 1, 1), torch.zeros(3, 4, 1, 1))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(Identity(), torch.zeros(1, 4, 1, 1), torch.zeros(3, 4, 1, 1))


def test_evaluate_a_trained_run_from_the_cli(tmp_path, capsys):
    from robustvae.cli import main
    from robustvae.evaluation.fid_classifiers import _manifest

    run = tmp_path / "run"
    flags = ["--width", "0.2", "--epochs", "1", "--no-progress", "--no-tensorboard"]
    assert main(["train", "--out", run, "--loss", "normal", *flags]) == 0
    assert main(["evaluate", run, "--images", "200", "--samples", "400"]) == 0
    results = json.loads((run / "evaluation.json").read_text())
    keys = ("sharpness_reconstructed", "sharpness_generated", "ssim", "psnr", "fid", "mmd_to_prior")
    for key in keys:
        assert math.isfinite(results[key]), key
    assert results["fid"] > 0
    assert results["classifier_test_accuracy"] == _manifest()["mnist-5k"]["test_accuracy"]
    assert results["fid_classifier"].startswith("shipped mnist-5k.safetensors (sha256 ")
    assert results["fid_samples"] == [400, 400]
    bits = results["negative_elbo_nats"] / (784 * math.log(2))
    assert results["negative_elbo_bits_per_dim"] == pytest.approx(bits)


def test_mmd_to_prior_is_near_zero_for_prior_codes_and_large_when_shifted():
    from types import SimpleNamespace

    from robustvae.evaluation.autoencoder import mmd_to_prior

    class Encoder:  # a WAE-like model whose codes are given
        def __init__(self, codes):
            self.codes, self.config = codes, SimpleNamespace(prior_scale=1.0)
            self.training = True

        def train(self, mode=True):
            self.training = mode

        def eval(self):
            self.training = False

        def encode(self, batch):
            return self.codes[batch[:, 0, 0, 0].long()]

    images = torch.arange(800.0).view(-1, 1, 1, 1)  # image i encodes to codes[i]
    gen = torch.Generator().manual_seed(0)
    prior_like = torch.randn(800, 8, generator=torch.Generator().manual_seed(1))
    near = mmd_to_prior(Encoder(prior_like), images, gen, "cpu")
    far = mmd_to_prior(Encoder(prior_like + 3.0), images, gen, "cpu")
    assert abs(near) < 0.02 and far > 1.0  # 0.004 and 3.8 measured


def test_shipped_classifiers_are_verified_and_serve_their_datasets(monkeypatch):
    from robustvae.evaluation import fid_classifiers as C

    manifest = C._manifest()
    assert set(manifest) == {"mnist-5k", "fashion-mnist"}
    assert manifest["mnist-5k"]["serves"] == ["mnist-5k", "mnist"]
    for name in ("mnist-5k", "mnist", "fashion-mnist"):
        shipped = C.shipped_classifier(name, (1, 28, 28))
        assert shipped is not None and shipped.origin.startswith("shipped ")
        assert 0.8 < shipped.test_accuracy <= 1
    assert C.shipped_classifier("mnist-5k", (1, 32, 32)) is None  # another size: trained here
    assert C.shipped_classifier("folder", (1, 28, 28)) is None
    damaged = {k: dict(v) for k, v in manifest.items()}
    damaged["fashion-mnist"]["sha256"] = "0" * 64
    monkeypatch.setattr(C, "_manifest", lambda: damaged)
    with pytest.raises(ValueError, match="fashion-mnist.safetensors: .*reinstall robustvae"):
        C.shipped_classifier("fashion-mnist", (1, 28, 28))


def test_fid_in_shipped_features_does_not_depend_on_the_thread_count():
    from robustvae.data import load_dataset
    from robustvae.evaluation.fid_classifiers import shipped_classifier
    from robustvae.metrics.classifier import CodingLayer

    images = load_dataset("mnist-5k", "test").images
    real, fake = images[:400], images[400:800].flip(-1)  # mirrored digits: a real distance
    features = CodingLayer(shipped_classifier("mnist-5k", (1, 28, 28)).model)
    threads = torch.get_num_threads()
    fids = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            fids.append(frechet_distance(features, real, fake))
    finally:
        torch.set_num_threads(threads)
    assert fids[0] > 1
    assert fids[0] == pytest.approx(fids[1], rel=1e-3)
