"""One image file in, one out, at full precision: what ``robustvae restore`` reads and writes.

``read_image`` gives float32 C×H×W in [0, 1] with C = 1 (greyscale) or 3 (colour):

- 8-bit images are divided by 255; 16-bit greyscale PNGs (Pillow's ``I;16``) by 65535, and
  32-bit integer greyscale (``I``) likewise (by 255 when its values fit in 8 bits);
- alpha is dropped (RGBA → RGB, LA → L); palette, CMYK and YCbCr images become RGB;
- an unreadable or truncated file, one above Pillow's decompression-bomb limit
  (``PIL.Image.MAX_IMAGE_PIXELS``, settable), or a floating-point image holding NaN or
  infinity raises ``ValueError`` naming the file.

``write_image`` writes a PNG (8-bit, or 16-bit for greyscale) or any format Pillow knows by
the file's extension (8-bit), rounding and clipping to [0, 1]. ``write_disparity`` writes a
disparity map (pixels) as a PFM (float32) or a 16-bit PNG in KITTI's encoding (×256).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from robustvae.files import atomic_write

__all__ = ["read_image", "write_image", "write_disparity", "bit_depth"]


def _open(path, label: str):
    from PIL import Image

    from robustvae.data.images import too_large, unreadable

    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise FileNotFoundError(f"{label}: no such image file") from None
    except Image.DecompressionBombError as error:
        raise too_large(label, error) from None
    except (OSError, SyntaxError) as error:
        raise unreadable(label, error) from None
    return img


def bit_depth(path: str | Path) -> int:
    """16 for a 16-bit (or wider integer) greyscale image, else 8."""
    with _open(Path(path), str(path)) as img:
        return 16 if img.mode.startswith("I") else 8


def read_image(path, name: str | None = None) -> Tensor:
    """The image at ``path`` (a file name, or a binary file object called ``name`` in errors)
    as float32 C×H×W in [0, 1] (see the module docstring)."""
    if isinstance(path, str | Path):
        path, name = Path(path), name or str(path)
    with _open(path, name or "image") as img:
        mode = img.mode
        if mode.startswith("I") or mode == "F":
            a = np.asarray(img, dtype=np.float64)
            if not np.isfinite(a).all():
                raise ValueError(f"{name}: holds NaN or infinite values; an image must be finite")
            top = a.max(initial=0.0)
            if mode == "F":
                scale = 1.0 if top <= 1.0 else 255.0
            else:
                scale = 65535.0 if mode.startswith("I;16") or top > 255 else 255.0
            a = np.clip(a / scale, 0.0, 1.0)[None]
        else:
            if mode in ("1", "L", "LA"):
                a = np.asarray(img.convert("L"), dtype=np.float64)[None] / 255.0
            else:
                a = np.asarray(img.convert("RGB"), dtype=np.float64).transpose(2, 0, 1) / 255.0
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def write_image(path: str | Path, image: Tensor, bits: int = 8) -> Path:
    """Write C×H×W ``image`` (values clipped to [0, 1]) to ``path`` atomically; ``bits`` 16
    writes a 16-bit greyscale PNG (1-channel images only)."""
    from PIL import Image

    path = Path(path)
    a = image.detach().to("cpu", torch.float64).clamp(0, 1).numpy()
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"an image to write must be 1×H×W or 3×H×W, got {tuple(a.shape)}")
    if bits == 16:
        if a.shape[0] != 1 or path.suffix.lower() != ".png":
            raise ValueError("16-bit output is a greyscale PNG: 1 channel and a .png name")
        pil = Image.fromarray(np.rint(a[0] * 65535).astype(np.uint16))
    elif bits == 8:
        b = np.rint(a * 255).astype(np.uint8)
        pil = (
            Image.fromarray(b[0], "L") if b.shape[0] == 1 else Image.fromarray(b.transpose(1, 2, 0))
        )
    else:
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image format {path.suffix!r} (use .png)")
    return atomic_write(path, lambda tmp: pil.save(tmp, format=fmt))


def write_disparity(path: str | Path, disparity: Tensor) -> Path:
    """Write an H×W disparity map (pixels) atomically: a ``.pfm`` holds it as float32; a
    ``.png`` in KITTI's encoding, round(d·256) in 16 bits, clipped to [1, 65535] (0 is KITTI's
    unknown, which a prediction never is)."""
    from PIL import Image

    path = Path(path)
    a = disparity.detach().to("cpu", torch.float32).numpy()
    if a.ndim != 2:
        raise ValueError(f"a disparity map to write must be H×W, got {tuple(a.shape)}")
    if path.suffix.lower() == ".pfm":
        rows = np.ascontiguousarray(a[::-1], dtype="<f4")  # PFM stores the bottom row first
        header = f"Pf\n{rows.shape[1]} {rows.shape[0]}\n-1.0\n".encode()
        return atomic_write(path, lambda tmp: Path(tmp).write_bytes(header + rows.tobytes()))
    if path.suffix.lower() == ".png":
        encoded = np.clip(np.rint(a.astype(np.float64) * 256), 1, 65535).astype(np.uint16)
        image = Image.fromarray(encoded)
        return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    raise ValueError(f"{path}: write a .png (16-bit, KITTI's ×256) or a .pfm")
