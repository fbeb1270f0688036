"""Downloading MNIST's four IDX files, with checksums, atomically.

Only users call this (``robustvae data download mnist``); tests run it against a local HTTP
server on 127.0.0.1 and nothing in the library downloads on its own.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from robustvae.data.idx import MNIST_GZ_MD5
from robustvae.files import atomic_write

__all__ = ["download_mnist", "MNIST_URL", "default_data_dir", "file_digest"]

#: The mirror torchvision uses; yann.lecun.com itself now often refuses plain downloads.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

_CHUNK = 1 << 20


def default_data_dir() -> Path:
    """Where downloaded data sets live: ``$ROBUSTVAE_DATA``, else ``$XDG_DATA_HOME/robustvae``,
    else ``~/.local/share/robustvae``."""
    env = os.environ.get("ROBUSTVAE_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "robustvae"


def _algorithm(digest: str) -> str:
    algo = {32: "md5", 64: "sha256"}.get(len(digest))
    if algo is None or any(ch not in "0123456789abcdef" for ch in digest.lower()):
        raise ValueError(f"checksum {digest!r} is neither a hex MD5 (32) nor SHA-256 (64) digest")
    return algo


def file_digest(path: str | Path, algorithm: str) -> str:
    """Hex digest of a file's bytes."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download_mnist(
    dest: str | Path | None = None,
    base_url: str = MNIST_URL,
    checksums: Mapping[str, str] = MNIST_GZ_MD5,
    *,
    timeout: float = 60.0,
    force: bool = False,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> list[Path]:
    """Download the MNIST IDX files into ``dest`` and verify their checksums.

    Args:
        dest: the folder (created if needed); default ``default_data_dir() / "mnist"``, where
            ``load_dataset("mnist")`` looks by default.
        base_url: the mirror; each file is fetched from ``base_url + filename``.
        checksums: file name → expected hex digest of the downloaded bytes, MD5 (32 hex digits)
            or SHA-256 (64). The default is the four official ``.gz`` files with their
            well-known MD5s (:data:`robustvae.data.idx.MNIST_GZ_MD5`); pass another mapping for
            another mirror or data set.
        timeout: seconds for each connection.
        force: download even when a file is already present with the right checksum.
        progress: called as ``progress(filename, bytes_so_far, total_or_None)`` while
            downloading.

    Returns:
        The paths of the files, in the order of ``checksums``.

    Raises:
        ValueError: a downloaded file does not match its checksum (nothing is left behind).
        OSError: the server cannot be reached or answers with an error (naming the URL).

    Each file is written to a temporary file in ``dest`` and renamed into place only once its
    checksum matches, so an interrupted download never leaves a partial file under the final
    name. Files already present with the right checksum are not downloaded again.
    """
    dest = Path(dest) if dest is not None else default_data_dir() / "mnist"
    dest.mkdir(parents=True, exist_ok=True)
    if not base_url.endswith("/"):
        base_url += "/"
    algos = {name: _algorithm(digest) for name, digest in checksums.items()}
    paths = []
    for name, expected in checksums.items():
        expected = expected.lower()
        algo = algos[name]
        target = dest / name
        paths.append(target)
        if not force and target.is_file() and file_digest(target, algo) == expected:
            continue
        url = base_url + name
        atomic_write(target, _fetcher(url, name, algo, expected, timeout, progress))
    return paths


def _fetcher(url: str, name: str, algo: str, expected: str, timeout: float, progress):
    """A writer for ``atomic_write``: stream ``url`` into the temporary file, hashing as it
    goes; a checksum mismatch raises, so the file never reaches its final name."""

    def fetch(tmp: str) -> None:
        h = hashlib.new(algo)
        with open(tmp, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    length = response.headers.get("Content-Length", "")
                    total = int(length) if length.isdigit() else None
                    done = 0
                    for block in iter(lambda r=response: r.read(_CHUNK), b""):
                        out.write(block)
                        h.update(block)
                        done += len(block)
                        if progress is not None:
                            progress(name, done, total)
            except urllib.error.HTTPError as e:
                raise OSError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                raise OSError(f"download of {url} failed: {reason}") from None
        got = h.hexdigest()
        if got != expected:
            raise ValueError(
                f"{url}: {algo} checksum mismatch (expected {expected}, got {got}); "
                "the file was discarded"
            )

    return fetch
