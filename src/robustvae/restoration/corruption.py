"""The corruptions of Noise2Noise (Lehtinen et al., 2018), each deterministic for a generator:

- ``text``: random strings in random fonts, sizes, colours and positions, drawn opaquely with
  Pillow until a fraction ``level`` of the pixels is covered (the mask is measured after every
  string; a string that covers nothing new, or would overshoot by more than
  ``TEXT_TOLERANCE``, is redrawn, up to ``TEXT_RETRIES`` times; then the last string that
  landed is cut off where the coverage is reached, or, when none landed (an image of a few
  pixels), random uncovered pixels take one colour). The coverage is always within
  ``TEXT_TOLERANCE`` of the request, or the fewest whole pixels that reach it on an image too
  small for that; every image, even 1×1, takes a bounded number of strings. Training can
  take its strings from ``text_bank()`` instead (``banked=True``): ``TEXT_BANK_SIZE`` strings
  rendered once per process from ``TEXT_BANK_SEED``, each placed, coloured and cut as a
  freshly rendered one would be, about 30× faster than Pillow (see bench/bench_restoration.py).
  Text is not zero-mean noise: what a net trained on it outputs depends on the loss (L2 → the mean,
  L1 → the median).
- ``gaussian``: additive N(0, σ²) with σ = ``level`` (images in [0, 1]; not clipped, so the
  noise stays zero-mean as Noise2Noise requires).
- ``poisson``: Poisson(λ·x)/λ with λ = ``level`` (smaller λ: more noise; not clipped).

``LIMITS`` bounds the levels: text coverage in [0, 1], σ in [0, 1], λ in (0, 1e6] (beyond
that the noise is far below 16-bit quantisation and float32's counts lose precision).

Levels are drawn per image from a range while training (``draw_levels``); a test set uses one
fixed level. Images are float N×C×H×W in [0, 1], 1 or 3 channels.
"""

from __future__ import annotations

import functools
import math
import string
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "NOISES",
    "LEVELS",
    "LIMITS",
    "FONT_DIRS",
    "TEXT_BANK_SIZE",
    "check_level",
    "check_levels",
    "corrupt",
    "draw_levels",
    "fonts",
    "text_bank",
    "text_overlay",
]

NOISES = ("text", "gaussian", "poisson")
#: Per noise: (training range low, high, test level), Noise2Noise's: text coverage 0–50%,
#: test 25%; σ 0–50 (of 255), test 25; λ up to 50, test 30 (λ > 0: from 1).
LEVELS: dict[str, tuple[float, float, float]] = {
    "text": (0.0, 0.5, 0.25),
    "gaussian": (0.0, 50 / 255, 25 / 255),
    "poisson": (1.0, 50.0, 30.0),
}
#: Per noise: the (lowest, highest) level accepted (poisson: λ > 0).
LIMITS: dict[str, tuple[float, float]] = {
    "text": (0.0, 1.0),
    "gaussian": (0.0, 1.0),
    "poisson": (0.0, 1e6),
}
#: Where the text's fonts come from: Debian's fonts-dejavu-core (22 faces), which the set-up
#: installs, so that text is the same on every machine set up this way; without it, every
#: TrueType/OpenType font under ``FALLBACK_FONT_DIRS``.
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
FALLBACK_FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))
#: Text height in pixels: fixed in pixels, not relative to the image, so text on a whole test
#: image looks like text on a training crop.
FONT_SIZES = (10, 28)
CHARACTERS = string.ascii_letters + string.digits + "!?.,:;-+&#@%"
TEXT_TOLERANCE = 0.01
TEXT_RETRIES = 20
#: The bank's strings: enough that a glyph of every face and size recurs with many
#: neighbours (62 characters × 22 faces × 18 sizes ≈ 25k glyphs; the bank holds ~30k).
TEXT_BANK_SIZE = 4096
TEXT_BANK_SEED = 20181012


def check_level(noise: str, value: float, name: str = "level") -> None:
    """ValueError naming ``name`` unless ``value`` is a level of ``noise`` within ``LIMITS``."""
    if noise not in NOISES:
        raise ValueError(f"noise must be one of: {', '.join(NOISES)}; got {noise!r}")
    low, high = LIMITS[noise]
    symbol = {"text": "coverage", "gaussian": "σ", "poisson": "λ"}[noise]
    opening = "(" if noise == "poisson" else "["
    if not (low < value <= high if noise == "poisson" else low <= value <= high):
        raise ValueError(
            f"{name} ({symbol} of {noise} noise) must be in {opening}{low:g}, {high:g}], "
            f"got {value!r}"
        )


def check_levels(noise: str, low: float, high: float, test: float) -> None:
    """ValueError unless the levels make sense for ``noise`` (within ``LIMITS``)."""
    for name, value in (("noise_min", low), ("noise_max", high), ("noise_test", test)):
        check_level(noise, value, name)
    if low > high:
        raise ValueError(f"noise_min must be ≤ noise_max, got {low!r} > {high!r}")


def draw_levels(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    """``n`` levels uniform in [low, high] (float64)."""
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def corrupt(
    images: Tensor,
    noise: str,
    levels: Tensor,
    generator: torch.Generator,
    banked: bool = False,
) -> Tensor:
    """``images`` corrupted by ``noise``, image i at ``levels[i]``; draws only from
    ``generator`` (a CPU generator), so the result is a function of it. ``banked``: text
    strings come from ``text_bank()`` (see the module docstring)."""
    if images.dim() != 4:
        raise ValueError(f"images must be N×C×H×W, got shape {tuple(images.shape)}")
    levels = torch.as_tensor(levels, dtype=torch.float64).reshape(-1)
    if len(levels) != len(images):
        raise ValueError(f"need one level per image: {len(levels)} for {len(images)} images")
    shape = (-1, 1, 1, 1)
    if noise == "gaussian":
        sigma = levels.to(images.dtype).view(shape)
        return images + sigma * torch.randn(images.shape, generator=generator, dtype=images.dtype)
    if noise == "poisson":
        lam = levels.to(images.dtype).view(shape)
        counts = torch.poisson(images.clamp(min=0) * lam, generator=generator)
        return counts / lam
    if noise == "text":
        seeds = torch.randint(0, 2**62, (len(images),), generator=generator).tolist()
        out = [
            text_overlay(image, float(level), np.random.default_rng(seed), banked)[0]
            for image, level, seed in zip(images, levels.tolist(), seeds, strict=True)
        ]
        return torch.stack(out)
    raise ValueError(f"noise must be one of: {', '.join(NOISES)}; got {noise!r}")


def _font_files(dirs) -> list[Path]:
    return sorted(
        p for d in dirs if d.is_dir() for p in d.rglob("*") if p.suffix in (".ttf", ".otf")
    )


@functools.cache
def fonts() -> tuple[Path, ...]:
    """The text corruption's font files, sorted: those under ``FONT_DIRS``, else under
    ``FALLBACK_FONT_DIRS`` (the same fonts give the same text)."""
    found = _font_files(FONT_DIRS) or _font_files(FALLBACK_FONT_DIRS)
    if not found:
        raise ValueError(
            "the text corruption needs TrueType fonts and found none under "
            + ", ".join(map(str, FONT_DIRS + FALLBACK_FONT_DIRS))
            + " (Debian: apt-get install fonts-dejavu-core)"
        )
    return tuple(found)


@functools.lru_cache(maxsize=512)
def _font(path: Path, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(path), size)


def _random_text(rng: np.random.Generator) -> str:
    length = int(rng.integers(3, 13))
    return "".join(CHARACTERS[i] for i in rng.integers(0, len(CHARACTERS), length))


@functools.cache
def _measure():
    """A drawing context that measures text as ``_render`` draws it (no antialiasing)."""
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("1", (1, 1)))
    draw.fontmode = "1"
    return draw


def _render(text: str, font):
    """``text`` in ``font`` (no antialiasing): bool h×w, cropped to the text's box, and the
    box's (left, top) offset from where Pillow places the text."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = _measure().textbbox((0, 0), text, font=font)
    canvas = Image.new("1", (max(right - left, 1), max(bottom - top, 1)), 0)
    draw = ImageDraw.Draw(canvas)
    draw.fontmode = "1"
    draw.text((-left, -top), text, fill=1, font=font)
    return np.asarray(canvas, dtype=bool)


def _random_string(rng: np.random.Generator) -> np.ndarray:
    """One random string, rendered: random face, size (``FONT_SIZES``) and characters."""
    font = _font(fonts()[int(rng.integers(len(fonts())))], int(rng.integers(*FONT_SIZES)) + 1)
    return _render(_random_text(rng), font)


@functools.cache
def text_bank() -> tuple[np.ndarray, ...]:
    """``TEXT_BANK_SIZE`` random strings (bool bitmaps), rendered once per process from
    ``TEXT_BANK_SEED``: the same bank on every machine with the same fonts."""
    rng = np.random.default_rng(TEXT_BANK_SEED)
    return tuple(_random_string(rng) for _ in range(TEXT_BANK_SIZE))


def _placed(bitmap: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``bitmap`` at a random position of an H×W image (bool H×W): at least half of it on
    the image along each axis where the image is that large; the rest is cut off."""
    h, w = bitmap.shape
    x = int(rng.integers(-w // 2, max(width - w // 2, 1)))
    y = int(rng.integers(-h // 2, max(height - h // 2, 1)))
    out = np.zeros((height, width), dtype=bool)
    top, bottom, left, right = max(y, 0), min(y + h, height), max(x, 0), min(x + w, width)
    if top < bottom and left < right:
        out[top:bottom, left:right] = bitmap[top - y : bottom - y, left - x : right - x]
    return out


def _string_mask(height: int, width: int, rng: np.random.Generator, banked: bool) -> np.ndarray:
    """One random string's pixels (bool H×W) at a random position (it may run off the
    edges): freshly rendered, or drawn from ``text_bank()`` when ``banked``."""
    if banked:
        bank = text_bank()
        return _placed(bank[int(rng.integers(len(bank)))], height, width, rng)
    return _placed(_random_string(rng), height, width, rng)


def _cut(pixels: np.ndarray, keep: int) -> np.ndarray:
    """``pixels`` (bool H×W) with only its first ``keep`` set pixels, column by column from
    the left: a string cut off by a vertical edge."""
    order = np.flatnonzero(pixels.T)[:keep]  # column-major positions of the set pixels
    out = np.zeros_like(pixels.T)
    out.flat[order] = True
    return out.T


def _random_pixels(free: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` of the ``free`` pixels (bool H×W), chosen at random."""
    out = np.zeros_like(free)
    out.flat[rng.choice(np.flatnonzero(free), count, replace=False)] = True
    return out


def text_overlay(
    image: Tensor, coverage: float, rng: np.random.Generator, banked: bool = False
) -> tuple[Tensor, Tensor]:
    """(image with text over ``coverage`` of its pixels, the text's bool H×W mask).

    Strings are added until the covered fraction reaches ``coverage``; each has one random
    colour (one grey level on a 1-channel image). Later strings cover earlier ones.
    ``banked``: the strings come from ``text_bank()``."""
    channels, height, width = image.shape
    out = image.detach().cpu().numpy().copy()
    mask = np.zeros((height, width), dtype=bool)
    total = height * width
    covered = 0
    target = math.ceil(coverage * total)
    while covered < target:
        landed = None
        for _ in range(TEXT_RETRIES):
            pixels = _string_mask(height, width, rng, banked)
            count = covered + int((pixels & ~mask).sum())
            if count == covered:  # nothing new (a string off the image)
                continue
            landed = pixels
            if count / total <= coverage + TEXT_TOLERANCE or count <= target:
                break
        else:  # no string fitted: cut the last one that landed where the target is reached
            if landed is None:
                pixels = _random_pixels(~mask, target - covered, rng)
            else:
                pixels = _cut(landed & ~mask, target - covered)
        colour = rng.random(channels, dtype=np.float64).astype(out.dtype)
        out[:, pixels] = colour[:, None]
        mask |= pixels
        covered = int(mask.sum())
    return torch.from_numpy(out).to(image.device), torch.from_numpy(mask)
