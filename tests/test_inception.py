"""The FID Inception-v3 (robustvae.metrics.inception), with random weights: the real
pt_inception-2015-12-05 file is never downloaded. Each full forward costs ~0.1-0.3 s per
image on CPU, so the batches are tiny."""

import re

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from robustvae.metrics.inception import FIDInceptionV3, InceptionFeatures, preprocess_images

# Learnable parameters of the FID Inception-v3 (pytorch-fid's FIDInceptionV3: torchvision's
# Inception3 without AuxLogits, 1008 classes, same conv shapes), summed block by block from
# the layer shapes: a conv k_h×k_w, c_in→c_out (no bias) + BN costs c_in·c_out·k_h·k_w + 2·c_out.
#   stem (1a, 2a, 2b, 3b, 4a)          928 + 9,280 + 18,560 + 5,280 + 138,624 =    172,672
#   Mixed_5b/5c/5d (A: 215,904 + c_in·(176 + pool) + 2·pool)  255,904 + 277,472 + 285,152
#   Mixed_6a (B)                                                               1,153,280
#   Mixed_6b/6c/6d/6e (C: 296,448 + 4,236·c7 + 28·c7²)
#                                          1,297,408 + 1,691,008 + 1,691,008 + 2,141,952
#   Mixed_7a (D)                                                               1,698,304
#   Mixed_7b/7c (E: 3,324,288 + 1,344·c_in)                    5,044,608 + 6,076,800
#   fc 2048·1008 + 1008                                                        2,065,392
# (= torchvision's 27,161,264 minus AuxLogits' 3,326,696, plus 8 more classes' 16,392.)
EXPECTED_PARAMETERS = 23_850_960
# BatchNorm running mean and variance: 2 × 17,216 channels over the 94 conv layers.
EXPECTED_BUFFER_ELEMENTS = 34_432

_STEM = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
_BRANCHES = {
    "A": "branch1x1 branch5x5_1 branch5x5_2 branch3x3dbl_1 branch3x3dbl_2 branch3x3dbl_3"
    " branch_pool",
    "B": "branch3x3 branch3x3dbl_1 branch3x3dbl_2 branch3x3dbl_3",
    "C": "branch1x1 branch7x7_1 branch7x7_2 branch7x7_3 branch7x7dbl_1 branch7x7dbl_2"
    " branch7x7dbl_3 branch7x7dbl_4 branch7x7dbl_5 branch_pool",
    "D": "branch3x3_1 branch3x3_2 branch7x7x3_1 branch7x7x3_2 branch7x7x3_3 branch7x7x3_4",
    "E": "branch1x1 branch3x3_1 branch3x3_2a branch3x3_2b branch3x3dbl_1 branch3x3dbl_2"
    " branch3x3dbl_3a branch3x3dbl_3b branch_pool",
}
_MIXED = {"5b": "A", "5c": "A", "5d": "A", "6a": "B", "6b": "C", "6c": "C", "6d": "C"}
_MIXED |= {"6e": "C", "7a": "D", "7b": "E", "7c": "E"}


def _expected_keys() -> set[str]:
    layers = list(_STEM)
    for name, kind in _MIXED.items():
        layers += [f"Mixed_{name}.{branch}" for branch in _BRANCHES[kind].split()]
    suffixes = ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]
    return {f"{layer}.{s}" for layer in layers for s in suffixes} | {"fc.weight", "fc.bias"}


def _core(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on a loaded 2-core machine torch's OpenMP threads spin against
    other processes, and the 2048×2048 eigendecomposition in FID's compute went from ~4 s to
    ~80 s. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def network() -> FIDInceptionV3:
    """Random weights scaled so features are O(1) (torch's default init shrinks them to
    ~1e-8), and random BatchNorm statistics so that loading them matters."""
    gen = torch.Generator().manual_seed(1234)
    net = FIDInceptionV3()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen))
                module.weight.mul_((2 / fan_in) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=gen))
                module.bias.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    return net.eval()


@pytest.fixture(scope="module")
def weights_file(network, tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def features(weights_file) -> InceptionFeatures:
    return InceptionFeatures(weights_file)


def _images(n: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_loaded_features_match_the_in_memory_network(network, features):
    images = _images(2)
    out = features(images)
    assert out.shape == (2, 2048) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.abs().mean() > 1e-2  # the random weights give non-trivial features
    with torch.no_grad():
        assert torch.equal(out, network(preprocess_images(images)))
    assert features.num_features == 2048 and isinstance(features.num_features, int)


def test_state_dict_layout_and_parameter_count(network, weights_file):
    saved = torch.load(weights_file, map_location="cpu", weights_only=True)
    core = _core(saved)
    assert set(core) == _expected_keys() and len(core) == 472
    assert sum(p.numel() for p in network.parameters()) == EXPECTED_PARAMETERS
    assert sum(t.numel() for t in core.values()) == EXPECTED_PARAMETERS + EXPECTED_BUFFER_ELEMENTS
    shapes = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_4a_3x3.bn.running_var": (192,),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
        "Mixed_6e.branch7x7dbl_2.conv.weight": (192, 192, 7, 1),
        "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
        "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
        "Mixed_7c.branch3x3_2b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }
    assert {k: tuple(saved[k].shape) for k in shapes} == shapes
    assert all(m.eps == 1e-3 for m in network.modules() if isinstance(m, nn.BatchNorm2d))


def test_pool_branches_exclude_padding_and_7c_takes_the_max(network):
    """Mixed_5b's pool branch averages without the zero padding: a constant input stays
    spatially constant. Mixed_7c max-pools: on a left-to-right ramp, columns 6 and 7 both
    see the maximum 7; Mixed_7b's average (6 vs 6.5) tells them apart."""
    with torch.no_grad():
        pool = network.Mixed_5b(torch.full((1, 192, 35, 35), 0.7))[:, -32:]
        # corners average 4 inputs, the interior 9: equal up to rounding (with the padding
        # counted, a corner would see 0.7 · 4/9)
        torch.testing.assert_close(pool, pool[:, :, 17:18, 17:18].expand_as(pool))
        ramp = torch.arange(8.0).expand(1, 2048, 8, 8)
        seven_c = network.Mixed_7c(ramp)[:, -192:]
        assert torch.equal(seven_c[..., 6], seven_c[..., 7])
        seven_b = network.Mixed_7b(ramp[:, :1280])[:, -192:]
        assert not torch.equal(seven_b[..., 6], seven_b[..., 7])


def test_grayscale_equals_repeated_rgb(features):
    grey = _images(2, channels=1, seed=1)
    torch.testing.assert_close(features(grey), features(grey.expand(-1, 3, -1, -1)))


def test_always_eval_and_frozen(features):
    features.train()
    assert not any(m.training for m in features.modules())
    assert not any(p.requires_grad for p in features.parameters())
    with pytest.raises(ValueError, match="normalize=True"):
        features(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="1 or 3"):
        features(torch.zeros(1, 2, 8, 8))


def test_other_file_layouts_load(network, tmp_path):
    """Files without BatchNorm's num_batches_tracked (older torch), and safetensors."""
    expected = _core(network.state_dict())
    torch.save(expected, tmp_path / "no_counters.pth")
    save_file(network.state_dict(), str(tmp_path / "w.safetensors"))
    for name in ("no_counters.pth", "w.safetensors"):
        loaded = _core(InceptionFeatures(tmp_path / name).state_dict())
        assert loaded.keys() == expected.keys()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected)


def test_bad_files_are_refused_by_name(network, tmp_path):
    state = network.state_dict()
    key = "Mixed_6c.branch7x7dbl_3.bn.running_var"
    torch.save({k: v for k, v in state.items() if k != key}, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=rf"missing\.pth.*missing keys: {re.escape(key)}"):
        InceptionFeatures(tmp_path / "missing.pth")

    torch.save({**state, "fc.weight": torch.zeros(1000, 2048)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"wrong\.pth.*fc\.weight \(1000, 2048\)"):
        InceptionFeatures(tmp_path / "wrong.pth")

    torch.save({**state, "AuxLogits.fc.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"unexpected keys: AuxLogits\.fc\.weight"):
        InceptionFeatures(tmp_path / "extra.pth")

    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        InceptionFeatures(tmp_path / "nowhere.pth")


def test_as_the_torchmetrics_fid_feature(features, weights_file):
    images = _images(4, seed=2)
    metric = FrechetInceptionDistance(feature=features, normalize=True)
    metric.update(images, real=True)
    metric.update(images, real=False)
    assert abs(float(metric.compute())) < 1e-2
    # ... and not because the features are degenerate: their total variance is large
    n = metric.real_features_num_samples
    mean = metric.real_features_sum / n
    total_variance = (metric.real_features_cov_sum.trace() - n * mean.square().sum()) / (n - 1)
    assert total_variance > 10.0
    # robustvae's frechet_distance calls set_dtype(torch.float64), which casts the feature
    # module too: it must then still take float32 images and return float32 features
    fresh = InceptionFeatures(weights_file)
    FrechetInceptionDistance(feature=fresh, normalize=True).set_dtype(torch.float64)
    assert fresh.fc.weight.dtype == torch.float64
    out64 = fresh(images[:2])
    assert out64.dtype == torch.float32
    torch.testing.assert_close(out64, features(images[:2]), rtol=1e-4, atol=1e-4)


def test_evaluate_reports_inception_fid_from_a_local_file(weights_file, tmp_path):
    """``robustvae evaluate RUN --inception FILE`` adds fid_inception (no download)."""
    import json
    import math

    from robustvae.cli import main

    run = tmp_path / "run"
    flags = ["--width", "0.1", "--epochs", "1", "--no-progress", "--no-tensorboard"]
    assert main(["train", "--out", run, *flags]) == 0
    args = ["--images", "8", "--samples", "4", "--no-fid", "--inception", weights_file]
    assert main(["evaluate", run, *args]) == 0
    results = json.loads((run / "evaluation.json").read_text())
    assert math.isfinite(results["fid_inception"]) and results["fid_inception"] > 0
    assert "fid" not in results
