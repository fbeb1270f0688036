"""The VAE-GAN's nets (Larsen et al., 2016), after the authors' code
(``andersbll/autoencoding_beyond_pixels``, ``architectures.py``, ``img64x64``), with a ``width``
multiplier on every hidden channel and unit count.

5×5 kernels, 'same' padding; "↓" is a stride-2 convolution and "↑" a stride-2 transposed
convolution, each without bias and followed by batch norm and ReLU. Shapes at width 1::

    Encoder64        3×64×64 → ↓64 → ↓128 → ↓256 (8×8) → FC1024 (BN, ReLU) → mean, log-var
    Decoder64        z → FC 8·8·256 (BN, ReLU) → ↑256 → ↑128 → ↑32 (64×64) → conv C → sigmoid
    Discriminator64  3×64×64 → conv32 (stride 1, ReLU) → ↓128 → ↓256 → ↓256 (8×8)
                     → FC512 (BN, ReLU) → FC1 (logit)

Dis_l, the layer whose features the reconstruction is compared in, is the last strided
convolution's output before its batch norm (the code's ``recon_depth=9``): 256×8×8 features.
Two changes from the authors' code: the encoder's FC layer has the code's 1024 units (the
paper's Table 1 says 2048), and the decoder ends in a sigmoid on images in [0, 1] instead of a
tanh on [-1, 1] (the same family: sigmoid(2a) = (tanh(a) + 1)/2).

The authors made no VAE-GAN for 28×28 images; the 28×28 nets follow the same pattern with one
strided stage fewer (the feature map is 7×7)::

    Encoder28        1×28×28 → ↓64 → ↓128 (7×7) → FC1024 → mean, log-var
    Decoder28        z → FC 7·7·128 → ↑128 → ↑32 (28×28) → conv C → sigmoid
    Discriminator28  1×28×28 → conv32 (stride 1) → ↓128 → ↓256 (7×7) → FC512 → FC1

Dis_l of the 28×28 discriminator is its last strided convolution's output (256×7×7).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from robustvae.models.nets import scaled

__all__ = ["VAEGANNets", "build_vaegan_nets", "check_size", "SIZES"]

KERNEL = 5
SIZES = ((28, 28), (64, 64))
# (encoder convolutions, decoder: channels of the FC map then of each ↑, discriminator ↓)
_PLAN = {
    64: ((64, 128, 256), (256, 256, 128, 32), (128, 256, 256)),
    28: ((64, 128), (128, 128, 32), (128, 256)),
}
ENCODER_FC, DISCRIMINATOR_FC, DISCRIMINATOR_FIRST = 1024, 512, 32


def _down(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, KERNEL, stride=2, padding=2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


def _up(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.ConvTranspose2d(cin, cout, KERNEL, 2, padding=2, output_padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


class Encoder(nn.Module):
    """Images → (mean, log-variance) of q(z|x), each N×latent_dim."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: float):
        super().__init__()
        channels, size, _ = image_shape
        convs = [scaled(c, width) for c in _PLAN[size][0]]
        layers: list[nn.Module] = []
        for cin, cout in zip([channels, *convs[:-1]], convs, strict=True):
            layers += _down(cin, cout)
        final = size // 2 ** len(convs)
        hidden = scaled(ENCODER_FC, width)
        layers += [
            nn.Flatten(),
            nn.Linear(convs[-1] * final * final, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
        ]
        self.body = nn.Sequential(*layers)
        self.mean = nn.Linear(hidden, latent_dim)
        self.log_var = nn.Linear(hidden, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return self.mean(h), self.log_var(h)


class Decoder(nn.Module):
    """Codes N×latent_dim → images N×C×H×W in [0, 1]; the GAN's generator too."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: float):
        super().__init__()
        channels, size, _ = image_shape
        first, *ups = (scaled(c, width) for c in _PLAN[size][1])
        start = size // 2 ** len(ups)
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, first * start * start, bias=False),
            nn.BatchNorm1d(first * start * start),
            nn.ReLU(),
            nn.Unflatten(1, (first, start, start)),
        ]
        for cin, cout in zip([first, *ups[:-1]], ups, strict=True):
            layers += _up(cin, cout)
        layers += [nn.Conv2d(ups[-1], channels, KERNEL, padding=2), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """Images → (Dis_l features N×F, logits N) where F = channels·h·w of layer l."""

    def __init__(self, image_shape: tuple[int, int, int], width: float):
        super().__init__()
        channels, size, _ = image_shape
        first = scaled(DISCRIMINATOR_FIRST, width)
        downs = [scaled(c, width) for c in _PLAN[size][2]]
        layers: list[nn.Module] = [nn.Conv2d(channels, first, KERNEL, padding=2), nn.ReLU()]
        for cin, cout in zip([first, *downs[:-2]], downs[:-1], strict=True):
            layers += _down(cin, cout)
        # Layer l: the last strided convolution, read before its batch norm.
        layers.append(nn.Conv2d(downs[-2], downs[-1], KERNEL, stride=2, padding=2, bias=False))
        self.to_features = nn.Sequential(*layers)
        final = size // 2 ** len(downs)
        hidden = scaled(DISCRIMINATOR_FC, width)
        self.head = nn.Sequential(
            nn.BatchNorm2d(downs[-1]),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(downs[-1] * final * final, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.feature_shape = (downs[-1], final, final)

    @property
    def num_features(self) -> int:
        return math.prod(self.feature_shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.to_features(x)
        return features.flatten(1), self.head(features).squeeze(1)


def check_size(kind: str, image_shape: tuple[int, int, int]) -> None:
    """ValueError unless Larsen's nets take images of this size."""
    if tuple(image_shape[1:]) not in SIZES:
        supported = ", ".join(f"{h}×{w}" for h, w in SIZES)
        raise ValueError(
            f"kind {kind!r} takes images of {supported} pixels, got "
            f"{image_shape[1]}×{image_shape[2]}"
        )


class VAEGANNets(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: float):
        super().__init__()
        if tuple(image_shape[1:]) not in SIZES:
            supported = ", ".join(f"{h}×{w}" for h, w in SIZES)
            raise ValueError(
                f"the VAE-GAN's nets take images of {supported} pixels, got "
                f"{image_shape[1]}×{image_shape[2]}"
            )
        self.encoder = Encoder(image_shape, latent_dim, width)
        self.decoder = Decoder(image_shape, latent_dim, width)
        self.discriminator = Discriminator(image_shape, width)


def build_vaegan_nets(image_shape, latent_dim: int, width: float) -> VAEGANNets:
    return VAEGANNets(tuple(image_shape), latent_dim, width)
