"""Listing and decoding image files (plain or in a zip) with Pillow.

The dataset-specific parts live in :mod:`robustvae.data.celeba` and :mod:`robustvae.data.folder`.
Decoding returns uint8 arrays N×C×H×W; :mod:`robustvae.data.datasets` turns them into float32 in
[0, 1]. Decoding runs on a thread pool (Pillow releases the GIL while it decodes and resizes).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageSource",
    "list_folder",
    "list_zip",
    "read_member",
    "MAX_MEMBER_BYTES",
    "source_files",
    "hash_unit",
    "decode_images",
    "probe_channels",
    "resize_uint8",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

#: The largest zip member :func:`read_member` reads, in (uncompressed) bytes: 256 MiB, the size
#: of an uncompressed 8-bit RGB image at Pillow's decompression-bomb limit
#: (``PIL.Image.MAX_IMAGE_PIXELS`` × 3 bytes), so no image Pillow would decode is refused.
#: Settable: ``robustvae.data.images.MAX_MEMBER_BYTES = ...``.
MAX_MEMBER_BYTES = 256 * 2**20
_MEMBER_CHUNK = 2**20


@dataclass(frozen=True)
class ImageSource:
    """One image: a file on disk, or a member of a zip archive."""

    name: str  # path relative to the root (POSIX), or the zip member name
    path: Path  # the file, or the zip archive
    member: str | None = None  # zip member name, None for plain files

    def __str__(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)


def _pil():
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow is a dependency
        raise ImportError("image datasets need Pillow: pip install Pillow") from e
    return Image


# ----------------------------------------------------------------------------- listing


def _is_image(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def list_folder(root: Path) -> list[ImageSource]:
    """The image files under ``root``, recursively (hidden ones skipped), sorted by name.
    Symbolic links are followed, but no folder is entered twice and no file listed twice
    (a link loop, or two links to one file, would otherwise repeat images, even across the
    train and test splits): of several names for one file, the first in sorted order stays."""
    found = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if _is_image(f):
                p = Path(dirpath, f)
                found.append(ImageSource(p.relative_to(root).as_posix(), p))
    seen_files: set[str] = set()
    unique = []
    for source in sorted(found, key=lambda s: s.name):
        real = os.path.realpath(source.path)
        if real not in seen_files:
            seen_files.add(real)
            unique.append(source)
    return unique


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{archive}: not a readable zip archive ({e})") from None


def list_zip(archive: Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[ImageSource]:
    """The images in ``archive`` with one of ``extensions``, sorted by member name."""
    with _open_zip(archive) as z:
        names = [
            n
            for n in z.namelist()
            if not n.endswith("/")
            and _is_image(n)
            and n.lower().endswith(tuple(extensions))
            and "__MACOSX" not in n
        ]
    return sorted((ImageSource(n, archive, n) for n in names), key=lambda s: s.name)


def _member_too_large(label: str, size: str) -> ValueError:
    return ValueError(
        f"{label}: zip member is {size}, above the limit of {MAX_MEMBER_BYTES} bytes for one "
        "image; take it out of the archive, or raise robustvae.data.images.MAX_MEMBER_BYTES"
    )


def read_member(archive: zipfile.ZipFile, member: str, label: str) -> io.BytesIO:
    """The bytes of ``member`` of ``archive`` as a file, refused above :data:`MAX_MEMBER_BYTES`.

    The declared (uncompressed) size is checked before anything is read, and the data is read
    in chunks up to one byte past the limit, so memory stays bounded even for a member whose
    header understates its size.

    Raises:
        ValueError: naming ``label`` (``archive.zip:member``): the member is too large, or its
            data is corrupt (bad CRC, truncated or invalid compressed stream).
    """
    declared = archive.getinfo(member).file_size
    if declared > MAX_MEMBER_BYTES:
        raise _member_too_large(label, f"{declared} bytes uncompressed")
    data = io.BytesIO()
    try:
        with archive.open(member) as f:
            # One chunk at a time: f.read(n) may decompress n bytes before cutting them down to
            # the declared size.
            while chunk := f.read(min(_MEMBER_CHUNK, MAX_MEMBER_BYTES + 1 - data.tell())):
                data.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{label}: unreadable zip member ({type(e).__name__}: {e})") from None
    if data.tell() > MAX_MEMBER_BYTES:
        raise _member_too_large(label, f"more than {MAX_MEMBER_BYTES} bytes uncompressed")
    data.seek(0)
    return data


def source_files(sources: Iterable[ImageSource]) -> list[Path]:
    """The distinct files (images or zip archives) that ``sources`` are read from, sorted."""
    return sorted({s.path for s in sources})


def hash_unit(name: str) -> float:
    """A number in [0, 1) fixed by ``name`` alone (first 8 bytes of its SHA-1)."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big") / 2.0**64


# ----------------------------------------------------------------------------- decoding

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def too_large(src, error) -> ValueError:
    """The one-line error for an image above Pillow's decompression-bomb limit."""
    Image = _pil()
    return ValueError(
        f"{src}: too many pixels to decode safely ({error}); raise "
        f"PIL.Image.MAX_IMAGE_PIXELS (now {Image.MAX_IMAGE_PIXELS}) to read it"
    )


def unreadable(src, error: Exception) -> ValueError:
    """The one-line error for a file Pillow cannot decode. Pillow's "cannot identify image
    file" names the file object (a zip member's is a BytesIO repr), so that one is reworded."""
    if isinstance(error, _pil().UnidentifiedImageError):
        return ValueError(
            f"{src}: unreadable image (not an image Pillow can identify: an unknown format or "
            "a damaged header)"
        )
    return ValueError(f"{src}: unreadable image ({type(error).__name__}: {error})")


def _to_8bit(img):
    """Pillow image → mode L or RGB; alpha is dropped. 16-bit greyscale (``I;16``) is scaled by
    255/65535; 32-bit integer greyscale (``I``) likewise when it exceeds 255; float greyscale
    (``F``) by 255 when it lies in [0, 1]."""
    Image = _pil()
    if img.mode in ("L", "RGB"):
        return img
    if img.mode.startswith("I") or img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        top = a.max(initial=0.0)
        if img.mode == "F" and top <= 1.0:
            a = a * 255.0
        elif img.mode.startswith("I;16") or top > 255:
            a = a * (255.0 / 65535.0)
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    if img.mode in ("1", "LA"):
        return img.convert("L")
    return img.convert("RGB")  # P, RGBA, CMYK, YCbCr, …


#: The smallest side a decoded image may have: below it there is nothing to learn from, and
#: resizing to a network's input would only blow up a few pixels.
MIN_IMAGE_SIDE = 4


@dataclass(frozen=True)
class _Decode:
    size: int | None  # output side, None keeps the native size
    box: tuple[int, int, int, int] | None  # crop box, None: the centred square when resizing
    expect: tuple[int, int] | None  # required (width, height) before cropping
    resample: int


class SourceReader:
    """Gives what ``Image.open`` reads for each source: the file, or the zip member's bytes. One
    zip handle per thread (a ZipFile is not thread-safe)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handles: list[zipfile.ZipFile] = []

    def file(self, src: ImageSource) -> Path | io.BytesIO:
        if src.member is None:
            return src.path
        return read_member(self._zip(src.path), src.member, str(src))

    def _zip(self, archive: Path) -> zipfile.ZipFile:
        zips = getattr(self._local, "zips", None)
        if zips is None:
            zips = self._local.zips = {}
        z = zips.get(archive)
        if z is None:
            z = zips[archive] = _open_zip(archive)
            with self._lock:
                self._handles.append(z)
        return z

    def close(self) -> None:
        """Close every zip handle; the reader opens new ones if it is used again."""
        with self._lock:
            handles, self._handles = self._handles, []
            self._local = threading.local()
        for z in handles:
            z.close()


def _decode_one(src: ImageSource, how: _Decode, reader: SourceReader) -> np.ndarray:
    Image = _pil()
    errors = (OSError, ValueError, SyntaxError)
    file = reader.file(src)
    try:
        with Image.open(file) as img:
            img.load()
            img = _to_8bit(img)
    except Image.DecompressionBombError as e:
        raise too_large(src, e) from None
    except errors as e:
        # SyntaxError: some Pillow plugins raise it on malformed headers.
        raise unreadable(src, e) from None
    if min(img.size) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"{src}: image is {img.size[0]}×{img.size[1]} pixels; images need at least "
            f"{MIN_IMAGE_SIDE} on each side (remove it from the folder)"
        )
    if how.expect is not None and img.size != how.expect:
        raise ValueError(
            f"{src}: image is {img.size[0]}×{img.size[1]}, expected {how.expect[0]}×"
            f"{how.expect[1]} (the aligned-and-cropped CelebA, img_align_celeba)"
        )
    if how.size is not None:
        box = how.box
        if box is None:
            w, h = img.size
            s = min(w, h)
            box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        # Crop, then resize: the filter sees only the cropped pixels (as the WAE code does);
        # resize(box=...) would let it reach past the box's edges.
        img = img.crop(box).resize((how.size, how.size), how.resample)
    return np.asarray(img)


def decode_images(
    sources: Sequence[ImageSource],
    *,
    size: int | None,
    box: tuple[int, int, int, int] | None = None,
    expect: tuple[int, int] | None = None,
    resample: str = "bilinear",
    channels: int | None = None,
    progress: str | None = None,
) -> np.ndarray:
    """Decode ``sources`` into one uint8 array N×C×H×W.

    Args:
        size: resize to ``size``×``size`` after cropping ``box`` (by default the centred largest
            square); None keeps every image's native size, and then all must be equal.
        box: crop box (left, top, right, bottom) applied before resizing.
        expect: every image must have this (width, height).
        resample: Pillow filter, ``"bilinear"`` or ``"lanczos"`` (both antialias when shrinking).
        channels: 1 or 3 to force; None gives 1 when every image is greyscale, else 3.
        progress: a tqdm description; a bar is shown (when tqdm is installed) for long jobs.

    Raises:
        ValueError: naming the file: unreadable image, wrong size (``expect``), or sizes that
            differ while not resizing.
    """
    Image = _pil()
    filters = {"bilinear": Image.Resampling.BILINEAR, "lanczos": Image.Resampling.LANCZOS}
    how = _Decode(size, box, expect, filters[resample])
    reader = SourceReader()
    # Known output shape: fill one array as images arrive (no second copy of a large set).
    out = None
    if channels is not None and size is not None:
        out = np.empty((len(sources), channels, size, size), dtype=np.uint8)
    arrays: list[np.ndarray] = []
    first: tuple[int, ...] | None = None
    results = _map(lambda s: _decode_one(s, how, reader), sources, progress)
    try:
        for i, (src, a) in enumerate(zip(sources, results, strict=True)):
            if first is None:
                first = a.shape[:2]
            elif a.shape[:2] != first:
                raise ValueError(
                    f"{src}: image is {a.shape[1]}×{a.shape[0]} but {sources[0]} is "
                    f"{first[1]}×{first[0]}; pass image_size (--image-size on the command "
                    "line) to resize them all"
                )
            if out is not None:
                _place(out, i, a)
            else:
                arrays.append(a)
    finally:
        results.close()  # stops the pool before its zip handles close
        reader.close()
    if out is not None:
        return out
    if channels is None:
        channels = 1 if all(a.ndim == 2 for a in arrays) else 3
    out = np.empty((len(arrays), channels, *first), dtype=np.uint8)
    for i, a in enumerate(arrays):
        _place(out, i, a)
    return out


def _place(out: np.ndarray, i: int, a: np.ndarray) -> None:
    if a.ndim == 2:
        out[i] = a  # broadcasts over 1 or 3 channels
    elif out.shape[1] == 1:
        out[i, 0] = np.asarray(_pil().fromarray(a, "RGB").convert("L"))
    else:
        out[i] = a.transpose(2, 0, 1)


def _map(fn: Callable[[ImageSource], np.ndarray], items, progress: str | None):
    """Yield ``fn(item)`` in order, on a thread pool, with an optional progress bar."""
    bar = None
    if progress and len(items) >= 2000:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc=progress, unit="img", leave=False, disable=None)
        except ImportError:
            pass
    workers = min(8, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(workers)
    try:
        # Bounded look-ahead: at most a few thousand decoded images wait in memory.
        window = 4096
        pending = [pool.submit(fn, it) for it in items[:window]]
        for k in range(len(items)):
            a = pending[k].result()
            pending[k] = None
            if k + window < len(items):
                pending.append(pool.submit(fn, items[k + window]))
            if bar is not None:
                bar.update()
            yield a
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()


def probe_channels(sources: Sequence[ImageSource]) -> int:
    """1 when every image is greyscale (judged from its header's mode), else 3."""
    reader = SourceReader()
    try:
        for src in sources:
            file = reader.file(src)
            try:
                with _pil().open(file) as im:
                    mode = im.mode
            except _pil().DecompressionBombError as e:
                raise too_large(src, e) from None
            except (OSError, ValueError, SyntaxError) as e:
                raise unreadable(src, e) from None
            if mode not in _GRAY_MODES:
                return 3
        return 1
    finally:
        reader.close()


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 N×C×H×W array to ``size``×``size`` (Pillow bilinear, antialiased)."""
    Image = _pil()
    n, c, _, _ = images.shape
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        for j in range(c):
            img = Image.fromarray(images[i, j], "L")
            out[i, j] = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))
    return out
