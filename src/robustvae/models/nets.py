"""The papers' encoders and decoders (Chen et al., Appendix A), each with a ``width`` multiplier.

``width`` multiplies every hidden unit and channel count (rounded, at least 1); 1.0 is the
paper's size, 1/8 trains in minutes on two CPU cores. Input and output sizes (image shape,
``out_dim``, ``latent_dim``) never scale. Decoders end in a sigmoid: images are in [0, 1].

MLP (any image shape, D = C·H·W)::

    encoder  x → flatten D → FC500 → ReLU → FC500 → ReLU → FC out_dim
    decoder  z → FC500 → ReLU → FC500 → ReLU → FC D → sigmoid → C×H×W

Conv, 4×4 kernels; encoder convolutions are followed by batch norm and ReLU, and so are the
decoder's deconvolutions except the last (sigmoid). Every encoder convolution has stride 2,
as in Tolstikhin et al.'s DCGAN-style WAE encoder that the paper follows: the spatial size
halves (rounding up, as TensorFlow's 'SAME') at each layer. Padding is 1, except 2 where a
7×7 map must go to 4×4. The decoder is their ``dcgan_mod``: the FC's map is doubled by
stride-2 deconvolutions (padding 1: n → 2n) up to the image size, and the last deconvolution
has stride 1 (n → n: kernel 4 with padding 1 gives n + 1, the last row and column are
cropped, as TensorFlow's 'SAME' transposed convolution). Shapes at width 1 (C×H×W)::

    ConvEncoder28  1×28×28 → Conv128 14×14 → Conv256 7×7 → Conv512 4×4 (pad 2)
                   → Conv1024 2×2 → flatten 4096 → FC out_dim
    ConvDecoder28  z → FC 7·7·1024 → ReLU → 1024×7×7 → Deconv512 14×14 → Deconv256 28×28
                   → Deconv1 (stride 1) 1×28×28 → sigmoid
    ConvEncoder64  3×64×64 → Conv128 32×32 → Conv256 16×16 → Conv512 8×8 → Conv1024 4×4
                   → flatten 16384 → FC out_dim
    ConvDecoder64  z → FC 8·8·1024 → ReLU → 1024×8×8 → Deconv512 16×16 → Deconv256 32×32
                   → Deconv128 64×64 → Deconv3 (stride 1) 3×64×64 → sigmoid

Convolutions followed by batch norm carry no bias (the norm's shift replaces it). Batch norm
makes a conv net's output depend on the batch in training mode: call ``.eval()`` to encode,
decode or sample with the running statistics.
"""

from __future__ import annotations

import math
from numbers import Real

from torch import Tensor, nn

from robustvae.settings import shown

__all__ = [
    "MLPEncoder",
    "MLPDecoder",
    "ConvEncoder28",
    "ConvDecoder28",
    "ConvEncoder64",
    "ConvDecoder64",
    "build_nets",
    "scaled",
    "check_width",
    "ARCHS",
    "CONV_SIZES",
]

ARCHS = ("mlp", "conv")
CONV_SIZES = ((28, 28), (64, 64))
MLP_HIDDEN = 500
KERNEL = 4
#: The largest width: 64 times the papers' nets is far past any machine's memory.
MAX_WIDTH = 64


def check_width(width: float) -> float:
    """``width`` as a float; ValueError unless it is a number in (0, ``MAX_WIDTH``]."""
    if isinstance(width, bool) or not isinstance(width, Real) or not 0 < width <= MAX_WIDTH:
        raise ValueError(f"width must be a number in (0, {MAX_WIDTH}], got {shown(width)}")
    return float(width)


def scaled(units: int, width: float) -> int:
    """``units`` times ``width``, rounded, at least 1."""
    return max(1, round(units * check_width(width)))


def _check_count(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_image_shape(shape) -> tuple[int, int, int]:
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"image_shape must be (channels, height, width) of ints > 0, got {shape}")
    return shape


class _Unflatten(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class _SameDeconv(nn.Module):
    """Stride-1 4×4 transposed convolution that keeps the spatial size (TensorFlow 'SAME'):
    padding 1 yields n + 1, then the last row and column are dropped."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, KERNEL, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        return self.deconv(x)[..., :h, :w]


# ----------------------------------------------------------------------------- MLP


class MLPEncoder(nn.Module):
    """x (N×C×H×W) → FC500 → ReLU → FC500 → ReLU → FC ``out_dim`` (N×out_dim)."""

    def __init__(self, image_shape: tuple[int, int, int], out_dim: int, width: float = 1.0):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        hidden = scaled(MLP_HIDDEN, width)
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(self.image_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, _check_count("out_dim", out_dim)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """z (N×latent) → FC500 → ReLU → FC500 → ReLU → FC C·H·W → sigmoid (N×C×H×W)."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], width: float = 1.0):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        hidden = scaled(MLP_HIDDEN, width)
        self.net = nn.Sequential(
            nn.Linear(_check_count("latent_dim", latent_dim), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, math.prod(self.image_shape)),
            nn.Sigmoid(),
            _Unflatten(self.image_shape),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


# ----------------------------------------------------------------------------- Conv


def _conv_block(in_channels: int, out_channels: int, padding: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, KERNEL, stride=2, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def _deconv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.ConvTranspose2d(in_channels, out_channels, KERNEL, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def _conv_size(n: int, padding: int) -> int:
    return (n + 2 * padding - KERNEL) // 2 + 1


class _ConvEncoder(nn.Module):
    """Stride-2 4×4 convolutions (+ batch norm + ReLU), then one FC layer."""

    size: int
    paddings: tuple[int, ...]

    def __init__(self, in_channels: int, out_dim: int, width: float = 1.0):
        super().__init__()
        channels = [_check_count("in_channels", in_channels)]
        channels += [scaled(c, width) for c in (128, 256, 512, 1024)]
        layers: list[nn.Module] = []
        side = self.size
        for i, padding in enumerate(self.paddings):
            layers += _conv_block(channels[i], channels[i + 1], padding)
            side = _conv_size(side, padding)
        self.in_channels = in_channels
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels[-1] * side * side, _check_count("out_dim", out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).flatten(1))


class _ConvDecoder(nn.Module):
    """FC to a start×start×1024 map, stride-2 4×4 deconvolutions (+ batch norm + ReLU), and a
    last stride-1 deconvolution to the image's channels with a sigmoid."""

    start: int
    deconv_channels: tuple[int, ...]

    def __init__(self, latent_dim: int, out_channels: int, width: float = 1.0):
        super().__init__()
        top = scaled(1024, width)
        channels = [top] + [scaled(c, width) for c in self.deconv_channels]
        layers: list[nn.Module] = [
            nn.Linear(_check_count("latent_dim", latent_dim), top * self.start * self.start),
            nn.ReLU(),
            _Unflatten((top, self.start, self.start)),
        ]
        for i in range(len(self.deconv_channels)):
            layers += _deconv_block(channels[i], channels[i + 1])
        layers += [_SameDeconv(channels[-1], _check_count("out_channels", out_channels))]
        layers += [nn.Sigmoid()]
        self.out_channels = out_channels
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ConvEncoder28(_ConvEncoder):
    """C×28×28 → Conv128 (14) → Conv256 (7) → Conv512 (4, padding 2) → Conv1024 (2) → FC.

    4×4 kernels, stride 2, batch norm + ReLU after each convolution; ``out_dim`` outputs.
    """

    size = 28
    paddings = (1, 1, 2, 1)


class ConvDecoder28(_ConvDecoder):
    """z → FC 7·7·1024 → Deconv512 (14) → Deconv256 (28) → Deconv C (stride 1, 28) → sigmoid."""

    start = 7
    deconv_channels = (512, 256)


class ConvEncoder64(_ConvEncoder):
    """C×64×64 → Conv128 (32) → Conv256 (16) → Conv512 (8) → Conv1024 (4) → FC ``out_dim``."""

    size = 64
    paddings = (1, 1, 1, 1)


class ConvDecoder64(_ConvDecoder):
    """z → FC 8·8·1024 → Deconv512 (16) → Deconv256 (32) → Deconv128 (64) → Deconv C (stride 1,
    64) → sigmoid."""

    start = 8
    deconv_channels = (512, 256, 128)


_CONV_NETS = {
    (28, 28): (ConvEncoder28, ConvDecoder28),
    (64, 64): (ConvEncoder64, ConvDecoder64),
}


def build_nets(
    arch: str,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    width: float,
    encoder_outputs: int,
) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) for ``arch`` ('mlp' | 'conv') and images of ``image_shape`` (C, H, W).

    The encoder maps N×C×H×W to N×``encoder_outputs`` (2·latent for a Gaussian encoder), the
    decoder N×``latent_dim`` to N×C×H×W in [0, 1]. 'conv' exists for 28×28 and 64×64 images.
    """
    image_shape = _check_image_shape(image_shape)
    check_width(width)
    if arch == "mlp":
        return (
            MLPEncoder(image_shape, encoder_outputs, width),
            MLPDecoder(latent_dim, image_shape, width),
        )
    if arch == "conv":
        channels, height, width_px = image_shape
        try:
            encoder_cls, decoder_cls = _CONV_NETS[(height, width_px)]
        except KeyError:
            supported = ", ".join(f"{h}×{w}" for h, w in CONV_SIZES)
            raise ValueError(
                f"conv nets support images of {supported} pixels, got {height}×{width_px} "
                "(use arch 'mlp' for other sizes)"
            ) from None
        return (
            encoder_cls(channels, encoder_outputs, width),
            decoder_cls(latent_dim, channels, width),
        )
    raise ValueError(f"unknown arch {arch!r}; choose one of: {', '.join(ARCHS)}")
