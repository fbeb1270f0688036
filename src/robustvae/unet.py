"""Noise2Noise's U-Net (Lehtinen et al., 2018, Table 2), with a width multiplier: the
restorer's net, and the depth net's (stereo pair in, disparity out).

Encoder: two 3×3 convolutions of 48 channels, then five times max-pool 2×2 followed by a 3×3
convolution of 48. Decoder: five times nearest upsampling ×2, concatenation with the pooled
encoder features of that size (the input itself at the top), and
two 3×3 convolutions of 96 channels (64 and 32 at the top), then a linear 3×3 convolution to
the image's channels. Leaky ReLU (slope 0.1) after every convolution but the last; no
normalisation, so the output at a pixel depends on its neighbourhood only, which is what makes
tiled inference exact (``robustvae.tiling``).

On the CPU the activations run channels-last (NHWC), which oneDNN's convolutions take without
reordering: a training step at width 1/4 on 16 crops of 64² takes about half the time of the
contiguous (NCHW) layout, and 0.7× at width 1/2 on 8 crops of 128² (``bench/bench_restoration.py``).
The output is returned contiguous. ``UNet.channels_last = False`` restores the old layout.

The input's height and width must be multiples of ``MULTIPLE`` (2⁵, five poolings).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustvae.settings import shown

__all__ = ["UNet", "MULTIPLE", "MAX_CROP", "RECEPTIVE_RADIUS", "check_crop"]

MULTIPLE = 32
#: The largest training crop side of the kinds on this net (restore, depth).
MAX_CROP = 4096
#: How far (in pixels, along each axis) an output pixel can see into the input: a sum, along
#: the deepest path, of each layer's reach times its stride (3×3 convolutions 1, 2×2 pooling
#: and ×2 upsampling ½ of the coarser stride): 2 + 1 + 2 + 2 + 4 + 4 + 8 + 8 + 16 + 16 + 32
#: (down) + 16 + 32 + 8 + 16 + 4 + 8 + 2 + 4 + 1 + 3 (up) = 189. A test checks it with autograd.
RECEPTIVE_RADIUS = 189


def check_crop(crop: int) -> int:
    """``crop`` if it is a training crop side this net takes, a multiple of ``MULTIPLE`` in
    [``MULTIPLE``, ``MAX_CROP``]; else ValueError."""
    if (
        isinstance(crop, bool)
        or not isinstance(crop, int)
        or not MULTIPLE <= crop <= MAX_CROP
        or crop % MULTIPLE
    ):
        raise ValueError(
            f"crop must be a multiple of {MULTIPLE} in [{MULTIPLE}, {MAX_CROP}], got {shown(crop)}"
        )
    return crop


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


def _channels(base: int, width: float) -> int:
    return max(1, round(base * width))


class UNet(nn.Module):
    """``UNet(channels, width, out_channels)``: images N×C×H×W → N×C'×H×W (H, W multiples of
    32; C' = ``out_channels``, by default C). ``width`` 1 is the paper's size (48/96
    channels)."""

    #: Run the activations channels-last on the CPU (measured there only).
    channels_last = True

    def __init__(self, channels: int = 3, width: float = 1.0, out_channels: int | None = None):
        super().__init__()
        e, d = _channels(48, width), _channels(96, width)
        top_a, top_b = _channels(64, width), _channels(32, width)
        self.enc0, self.enc1 = _conv(channels, e), _conv(e, e)
        self.enc = nn.ModuleList([_conv(e, e) for _ in range(5)])  # enc_conv2 … enc_conv6
        self.dec = nn.ModuleList()
        for level in range(5, 1, -1):  # dec_conv5 … dec_conv2: upsampled + skip → d → d
            cin = (e if level == 5 else d) + e
            self.dec.append(nn.Sequential(_conv(cin, d), _Leaky(), _conv(d, d), _Leaky()))
        self.top = nn.Sequential(
            _conv(d + channels, top_a), _Leaky(), _conv(top_a, top_b), _Leaky()
        )
        self.out = _conv(top_b, out_channels or channels)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if height % MULTIPLE or width % MULTIPLE:
            raise ValueError(
                f"the U-Net takes images whose sides are multiples of {MULTIPLE}, got "
                f"{height}×{width} (robustvae.tiling pads them)"
            )
        if self.channels_last and x.device.type == "cpu":
            return self._forward(x.contiguous(memory_format=torch.channels_last)).contiguous()
        return self._forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.enc1(F.leaky_relu(self.enc0(x), 0.1)), 0.1)
        skips = [x]
        for conv in self.enc[:-1]:  # pool1 … pool4 are skips; enc_conv2 … enc_conv5
            h = F.max_pool2d(h, 2)
            skips.append(h)
            h = F.leaky_relu(conv(h), 0.1)
        h = F.leaky_relu(self.enc[-1](F.max_pool2d(h, 2)), 0.1)  # pool5, enc_conv6
        for block in self.dec:
            h = block(torch.cat([F.interpolate(h, scale_factor=2.0), skips.pop()], 1))
        h = self.top(torch.cat([F.interpolate(h, scale_factor=2.0), skips.pop()], 1))
        return self.out(h)


class _Leaky(nn.LeakyReLU):
    def __init__(self):
        super().__init__(0.1)
