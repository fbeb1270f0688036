"""The IDX format of MNIST and Fashion-MNIST: reader, writer, and the official checksums.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (``TT`` the element type, ``DD`` the number
of dimensions), ``DD`` big-endian uint32 sizes, then the elements in C order, big-endian. Image
files are ``0x00000803`` (uint8, N×rows×cols), label files ``0x00000801`` (uint8, N). Files may
be gzipped (``.gz``, or any file starting with the gzip magic ``1f 8b``).

Checksums are SHA-256 of the *decompressed* IDX bytes, so a file gzipped by someone else (Debian
re-compresses Fashion-MNIST; its ``.gz`` bytes differ from Zalando's) or stored raw still matches.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "read_idx",
    "parse_idx",
    "read_idx_bytes",
    "idx_shape",
    "write_idx",
    "IDX_DTYPES",
    "MNIST_SHA256",
    "FASHION_MNIST_SHA256",
    "MNIST_GZ_MD5",
    "MNIST_GZ_SIZES",
    "MAX_IDX_BYTES",
]

#: IDX element-type byte → big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_OF = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}

#: SHA-256 of the decompressed official MNIST IDX files (LeCun, Cortes & Burges; the same bytes
#: every mirror serves). Cross-checked against several independent public projects.
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: SHA-256 of the decompressed Fashion-MNIST IDX files, computed from Debian's
#: ``dataset-fashion-mnist`` and equal to those of Zalando's published archives (whose ``.gz``
#: MD5s are 8d4fb7e6…, 25c81989…, bef4ecab…, bb300cfd…).
FASHION_MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: MD5 of the official gzipped MNIST files as served by the mirrors (the values torchvision and
#: most loaders verify). Used by :func:`robustvae.data.download_mnist`.
MNIST_GZ_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

#: Sizes in bytes of the same files (as listed on yann.lecun.com/exdb/mnist). Used by
#: :func:`robustvae.data.download_mnist` to stop a download that runs past them.
MNIST_GZ_SIZES: dict[str, int] = {
    "train-images-idx3-ubyte.gz": 9912422,
    "train-labels-idx1-ubyte.gz": 28881,
    "t10k-images-idx3-ubyte.gz": 1648877,
    "t10k-labels-idx1-ubyte.gz": 4542,
}

_GZIP_MAGIC = b"\x1f\x8b"

#: The most decompressed bytes an IDX file may declare (EMNIST's largest file is 0.55 GB).
MAX_IDX_BYTES = 1 << 30


def read_idx_bytes(path: str | Path) -> bytes | bytearray:
    """The decompressed bytes of an IDX file (gzipped or raw).

    A gzip stream is decompressed only as far as its header declares (at most
    ``MAX_IDX_BYTES``), so a small file that inflates without end cannot fill the memory.

    Raises:
        ValueError: the gzip stream is truncated or corrupt, declares more than
            ``MAX_IDX_BYTES``, or holds bytes past its declared data (naming the file).
    """
    path = Path(path)
    with open(path, "rb") as f:
        gz = path.suffix == ".gz" or f.read(2) == _GZIP_MAGIC
    if not gz:
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return _read_declared(f, path)
    except (OSError, EOFError, zlib.error) as e:
        # gzip.BadGzipFile is an OSError; a cut-off stream raises EOFError.
        problem = "truncated" if isinstance(e, EOFError) else "corrupt"
        raise ValueError(f"{path}: {problem} gzip stream ({e})") from None


def _read_declared(f, path: Path) -> bytes | bytearray:
    """The header and the data it declares, read from the open stream ``f`` into one buffer;
    a stream going on past them is refused at its first chunk."""
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_DTYPES or head[3] == 0:
        return head  # parse_idx says what is wrong with it
    head += f.read(4 * head[3])
    if len(head) < 4 + 4 * head[3]:
        return head
    shape = tuple(int.from_bytes(head[i : i + 4], "big") for i in range(4, len(head), 4))
    declared = math.prod(shape) * IDX_DTYPES[head[2]].itemsize
    if declared > MAX_IDX_BYTES:
        raise ValueError(
            f"{path}: the IDX header declares shape {shape}, {declared} bytes of data, more "
            f"than the {MAX_IDX_BYTES >> 20} MiB limit (MAX_IDX_BYTES)"
        )
    data = bytearray(len(head) + declared)
    data[: len(head)] = head
    view, done = memoryview(data)[len(head) :], 0
    # 1 MiB at a time: gzip's readinto decompresses into a temporary of the size asked for.
    while done < declared and (n := f.readinto(view[done : done + (1 << 20)])):
        done += n
    if done < declared:
        return data[: len(head) + done]  # parse_idx reports the truncated data
    if extra := len(f.read(1 << 20)):
        raise ValueError(
            f"{path}: unexpected trailing bytes (at least {extra}) after the IDX data of shape "
            f"{shape}"
        )
    return data


def idx_shape(path: str | Path) -> tuple[int, ...] | None:
    """The shape an IDX file's header declares (reading only the header), or None when the
    header cannot be read; :func:`read_idx` reports what is wrong with such a file."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == _GZIP_MAGIC
        with (gzip.open if gz else open)(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[3] == 0:
                return None
            dims = f.read(4 * head[3])
    except (OSError, EOFError, zlib.error):
        return None
    if len(dims) < 4 * head[3]:
        return None
    return tuple(int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4))


def parse_idx(data: bytes, source: str | Path = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a native-endian array, validating the header and the length.

    ``source`` names the file in error messages.
    """
    if len(data) < 4:
        raise ValueError(f"{source}: truncated IDX file ({len(data)} bytes, no complete header)")
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or type_code not in IDX_DTYPES:
        raise ValueError(
            f"{source}: not an IDX file (magic number 0x{int.from_bytes(data[:4], 'big'):08x}; "
            "expected 0x000008dd for uint8 data, e.g. 0x00000803 images, 0x00000801 labels)"
        )
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source}: truncated IDX header ({len(data)} of {header} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise ValueError(
            f"{source}: truncated IDX data: shape {shape} needs {expected} bytes after the "
            f"header, found {found}"
        )
    if found > expected:
        raise ValueError(
            f"{source}: {found - expected} unexpected trailing bytes after the IDX data of "
            f"shape {shape}"
        )
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | Path, *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a numpy array of its declared shape.

    Args:
        path: the file. Gzip is detected by the ``.gz`` suffix or the gzip magic bytes.
        ndim: when given, the number of dimensions the file must declare (3 for images,
            1 for labels).

    Returns:
        A native-endian array (``uint8`` for MNIST-style files). It may be read-only.

    Raises:
        ValueError: naming the file: corrupt or truncated gzip, wrong magic number, a header
            or payload shorter than declared, trailing bytes, or the wrong number of dimensions.
    """
    array = parse_idx(read_idx_bytes(path), path)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(
            f"{path}: expected a {ndim}-dimensional IDX file, found shape {array.shape}"
        )
    return array


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``."""
    path = Path(path)
    array = np.asarray(array)
    type_code = _TYPE_OF.get(array.dtype.newbyteorder("="))
    if type_code is None or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"cannot store an array of {array.dtype} and shape {array.shape} as IDX")
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    data = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[type_code]).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
