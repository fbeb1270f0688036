"""The Inception-v3 network of the FID literature, as a torchmetrics feature extractor.

FID as published (Heusel et al., 2017, and every paper that compares against its numbers) is
computed with one specific network: TensorFlow's ``inception-2015-12-05`` graph, whose
2048-unit "pool3" activations are the feature space. pytorch-fid ported that graph's weights
to a PyTorch state dict, ``pt_inception-2015-12-05-6726825d.pth``; torch-fidelity ships a
file with the same tensors under the same key names
(``weights-inception-2015-12-05-6726825d.pth``). This module rebuilds that architecture and
loads either file (or the same tensors as ``.safetensors``) from local disk. It never
downloads anything: fetch the file yourself and pass its path.

How this network differs from torchvision's ImageNet ``inception_v3`` (and so why that one's
weights will not load here):

* 1008 output classes in ``fc`` and no auxiliary classifier;
* the average-pool branch of Mixed_5b/5c/5d, Mixed_6b–6e and Mixed_7b excludes the zero
  padding from its average (``count_include_pad=False``), as TensorFlow's pooling does;
* the pool branch of the last block, Mixed_7c, takes a 3×3 *max* pool, not an average.

Every convolution is bias-free and followed by BatchNorm (eps = 0.001) and a ReLU.

Preprocessing in :class:`InceptionFeatures` (the same as pytorch-fid's defaults):

1. input: float images in [0, 1], shape (N, C, H, W), C = 1 or 3; a single channel is
   repeated to three (grey RGB);
2. resize to 299 × 299 with ``torch.nn.functional.interpolate(mode="bilinear",
   align_corners=False)``, no antialiasing (inputs already 299 × 299 pass unchanged);
3. map to [-1, 1] with ``2 x - 1``;
4. run the network in eval mode; the output is the global average of Mixed_7c, (N, 2048),
   float32.

Honest caveat: the TensorFlow graph resizes with TF1's own bilinear kernel, and the reference
statistics of most papers were computed from uint8 images. torch's bilinear resize differs
slightly from TF's, so features — and FIDs — computed here are close to, but not bit-equal
with, TF-computed values (the same caveat pytorch-fid states for its own numbers). Compare
FIDs only when they were computed with the same network and preprocessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FIDInceptionV3",
    "INPUT_SIZE",
    "InceptionFeatures",
    "NUM_CLASSES",
    "NUM_FEATURES",
    "load_inception_weights",
    "preprocess_images",
]

INPUT_SIZE = 299
NUM_FEATURES = 2048
NUM_CLASSES = 1008
_BN_EPS = 1e-3
# BatchNorm's step counter: present in files saved by recent torch, absent from older ones,
# never used in eval mode. Accepted whether or not a file has it.
_OPTIONAL_SUFFIX = ".num_batches_tracked"
_SHOW_KEYS = 5


class _ConvBN(nn.Module):
    """Bias-free convolution → BatchNorm(eps=0.001) → ReLU; state keys ``conv.*``, ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=_BN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor) -> Tensor:
    # TF's SAME-padded average pool divides by the number of real (unpadded) inputs.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _max3(x: Tensor) -> Tensor:
    return F.max_pool2d(x, 3, stride=1, padding=1)


class _BlockA(nn.Module):
    """35×35 block (Mixed_5b–5d): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool→1×1."""

    def __init__(self, cin: int, pool_out: int):
        super().__init__()
        self.branch1x1 = _ConvBN(cin, 64, 1)
        self.branch5x5_1 = _ConvBN(cin, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(cin, pool_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_avg3(x))
        return torch.cat([a, b, c, d], 1)


class _ReductionB(nn.Module):
    """35→17 grid reduction (Mixed_6a): 3×3/2 | 1×1→3×3→3×3/2 | max-pool/2."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = _ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, 3, stride=2)
        return torch.cat([a, b, c], 1)


class _BlockC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (Mixed_6b–6e)."""

    def __init__(self, cin: int, mid: int):
        super().__init__()
        self.branch1x1 = _ConvBN(cin, 192, 1)
        self.branch7x7_1 = _ConvBN(cin, mid, 1)
        self.branch7x7_2 = _ConvBN(mid, mid, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(mid, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(cin, mid, 1)
        self.branch7x7dbl_2 = _ConvBN(mid, mid, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(mid, mid, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(mid, mid, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(mid, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            c = layer(c)
        d = self.branch_pool(_avg3(x))
        return torch.cat([a, b, c, d], 1)


class _ReductionD(nn.Module):
    """17→8 grid reduction (Mixed_7a): 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max-pool/2."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = _ConvBN(cin, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = layer(b)
        c = F.max_pool2d(x, 3, stride=2)
        return torch.cat([a, b, c], 1)


class _BlockE(nn.Module):
    """8×8 block with split 1×3 / 3×1 outputs (Mixed_7b, 7c). ``max_pool`` selects the pool
    branch's pooling: average (Mixed_7b) or max (Mixed_7c, a quirk of the FID graph)."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self._pool = _max3 if max_pool else _avg3
        self.branch1x1 = _ConvBN(cin, 320, 1)
        self.branch3x3_1 = _ConvBN(cin, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        d = self.branch_pool(self._pool(x))
        return torch.cat([a, b, c, d], 1)


class FIDInceptionV3(nn.Module):
    """The bare FID Inception-v3 (torch's default random initialisation until weights are
    loaded). Its ``state_dict`` keys and shapes are those of pytorch-fid's
    ``pt_inception-2015-12-05-6726825d.pth`` (plus BatchNorm's ``num_batches_tracked``).

    ``forward`` takes already-preprocessed input — (N, 3, 299, 299) in [-1, 1] — and returns
    the 2048-d pool3 features; :meth:`logits` adds the 1008-way classifier on top.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _BlockA(192, 32)
        self.Mixed_5c = _BlockA(256, 64)
        self.Mixed_5d = _BlockA(288, 64)
        self.Mixed_6a = _ReductionB(288)
        self.Mixed_6b = _BlockC(768, 128)
        self.Mixed_6c = _BlockC(768, 160)
        self.Mixed_6d = _BlockC(768, 160)
        self.Mixed_6e = _BlockC(768, 192)
        self.Mixed_7a = _ReductionD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)
        self.fc = nn.Linear(NUM_FEATURES, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # 64 × 147²
        x = F.max_pool2d(x, 3, stride=2)  # 64 × 73²
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # 192 × 71²
        x = F.max_pool2d(x, 3, stride=2)  # 192 × 35²
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a):
            x = block(x)  # → 768 × 17²
        for block in (self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
            x = block(x)
        for block in (self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)  # → 2048 × 8²
        return x.mean(dim=(2, 3))

    def logits(self, x: Tensor) -> Tensor:
        """The 1008 class logits for preprocessed input (as ``forward`` takes)."""
        return self.fc(self.forward(x))


def preprocess_images(images: Tensor) -> Tensor:
    """Float images in [0, 1], (N, 1 or 3, H, W) → (N, 3, 299, 299) in [-1, 1]: grey
    repeated to RGB, bilinear resize (``align_corners=False``, no antialias), ``2x - 1``."""
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"expected images of shape (N, 1 or 3, H, W), got {shape}")
    if not images.is_floating_point():
        raise ValueError(
            f"expected float images in [0, 1], got dtype {images.dtype} "
            "(with torchmetrics' FrechetInceptionDistance, pass normalize=True)"
        )
    if images.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        images = F.interpolate(
            images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
        )
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return 2 * images - 1


def _read_file(path: Path) -> Mapping[str, object]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as error:
            raise ValueError(f"{path}: not a readable safetensors file ({error})") from error
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path}: not a weights-only torch state dict ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(content, Mapping):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(content).__name__}")
    return content


def _listing(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_SHOW_KEYS])
    return shown + (f", … ({len(keys)} in all)" if len(keys) > _SHOW_KEYS else "")


def load_inception_weights(
    path: str | PathLike[str], expected: Mapping[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Read a FID Inception state dict from ``path`` (``.pth``/``.pt`` via ``torch.load``
    with ``weights_only=True``, or ``.safetensors``) and check it against ``expected`` (by
    default a fresh :class:`FIDInceptionV3`'s state dict): the same keys — BatchNorm's
    ``num_batches_tracked`` may be present or absent — and the same shapes. Tensors come
    back as float32 (the step counters as int64).

    Raises FileNotFoundError for a missing file and ValueError, naming the file and the
    first offending keys, for an unreadable file, missing or unexpected keys, non-tensor
    values or wrong shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Inception weights file not found: {path}")
    content = _read_file(path)
    if expected is None:
        expected = FIDInceptionV3().state_dict()

    required = {k for k in expected if not k.endswith(_OPTIONAL_SUFFIX)}
    missing = required - content.keys()
    unexpected = content.keys() - expected.keys()
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(map(str, unexpected))}")
        if any(str(k).startswith("AuxLogits.") for k in unexpected):
            problems.append(
                "this looks like torchvision's ImageNet inception_v3, not the FID network "
                "(pt_inception-2015-12-05)"
            )
    common = sorted(k for k in expected.keys() & content.keys())
    not_tensors = [k for k in common if not isinstance(content[k], Tensor)]
    if not_tensors:
        problems.append(f"values that are not tensors: {_listing(not_tensors)}")
    wrong = [
        f"{k} {tuple(content[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in common
        if isinstance(content[k], Tensor) and content[k].shape != expected[k].shape
    ]
    if wrong:
        more = f", … ({len(wrong)} in all)" if len(wrong) > _SHOW_KEYS else ""
        problems.append("wrong shapes: " + ", ".join(wrong[:_SHOW_KEYS]) + more)
    if problems:
        raise ValueError(
            f"{path} is not a FID Inception-v3 state dict (pt_inception-2015-12-05 layout): "
            + "; ".join(problems)
        )
    return {k: content[k].to(expected[k].dtype) for k in common}


class InceptionFeatures(FIDInceptionV3):
    """FID's Inception-v3 pool3 features, loaded from a local weights file.

    ``InceptionFeatures(path)(images)`` maps float images in [0, 1], (N, 1 or 3, H, W), to
    float32 features (N, 2048); see the module docstring for the exact preprocessing. The
    module is frozen (``requires_grad=False``) and stays in eval mode whatever ``train()``
    is asked; gradients still flow to the *input* if it requires them. ``num_features``
    (2048) lets it serve as ``FrechetInceptionDistance(feature=..., normalize=True)``.
    """

    num_features: int = NUM_FEATURES

    def __init__(self, weights_path: str | PathLike[str]):
        super().__init__()
        self.weights_path = Path(weights_path)
        state = load_inception_weights(self.weights_path, self.state_dict())
        self.load_state_dict(state, strict=False)  # strictness checked above
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> InceptionFeatures:
        """Always eval: BatchNorm must use the stored statistics."""
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        x = preprocess_images(images).to(self.fc.weight.dtype)
        return super().forward(x).float()

    def logits(self, images: Tensor) -> Tensor:
        """The 1008 class logits of float images in [0, 1] (preprocessed as ``forward``)."""
        x = preprocess_images(images).to(self.fc.weight.dtype)
        return self.fc(super().forward(x)).float()
