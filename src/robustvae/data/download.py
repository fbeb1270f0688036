"""Downloading MNIST's four IDX files, with checksums, atomically.

Only users call this (``robustvae data download mnist``); tests run it against a local HTTP
server on 127.0.0.1 and nothing in the library downloads on its own.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from robustvae.data.idx import MNIST_GZ_MD5, MNIST_GZ_SIZES
from robustvae.files import atomic_write

__all__ = [
    "download_mnist",
    "MNIST_URL",
    "MAX_DOWNLOAD_BYTES",
    "SIZE_MARGIN",
    "default_data_dir",
    "file_digest",
]

#: The mirror torchvision uses; yann.lecun.com itself now often refuses plain downloads.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

#: How far past its expected size a download may run (10%): enough for a mirror that gzips the
#: same data with other settings (given its own checksums), far short of a runaway body.
SIZE_MARGIN = 0.1

#: The most bytes taken for a file with no expected size: 64 MiB, over twice the largest file of
#: the IDX data sets (Fashion-MNIST's 26 MB of training images).
MAX_DOWNLOAD_BYTES = 64 * 2**20

_CHUNK = 1 << 20


class _DownloadFailed(OSError):
    """A download that failed on the network side; its message names the URL."""


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
    sizes: Mapping[str, int] = MNIST_GZ_SIZES,
    timeout: float = 60.0,
    deadline: float = 600.0,
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
        sizes: file name → expected size in bytes (default: the official files',
            :data:`robustvae.data.idx.MNIST_GZ_SIZES`). A file may run :data:`SIZE_MARGIN`
            past it; one not named here may take :data:`MAX_DOWNLOAD_BYTES`. A server that
            announces more (``Content-Length``) is refused before the body is read, and one
            that sends more is cut off at the first byte past the limit.
        timeout: seconds for each connection, and for each read to bring a byte.
        deadline: seconds one file may take in all (checked after every read, so a file fails
            at most ``timeout`` seconds past it), so a server trickling bytes cannot hold the
            download forever.
        force: download even when a file is already present with the right checksum.
        progress: called as ``progress(filename, bytes_so_far, total_or_None)`` while
            downloading.

    Returns:
        The paths of the files, in the order of ``checksums``.

    Raises:
        ValueError: a downloaded file does not match its checksum, or is larger than its limit
            (naming the URL; nothing is left behind).
        OSError: the server cannot be reached, answers with an error, or misses the deadline
            (naming the URL).

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
        body = _body(url, _max_bytes(name, sizes), timeout, deadline)
        try:
            atomic_write(target, _fetcher(url, name, algo, expected, body, progress))
        except OSError as error:
            # atomic_write blames the file it was writing; a network failure names its URL.
            if isinstance(error.__cause__, _DownloadFailed):
                raise error.__cause__ from None
            raise
    return paths


def _max_bytes(name: str, sizes: Mapping[str, int]) -> int:
    if name not in sizes:
        return MAX_DOWNLOAD_BYTES
    return sizes[name] + int(sizes[name] * SIZE_MARGIN)


def _too_large(url: str, what: str) -> ValueError:
    return ValueError(
        f"{url}: the server {what} bytes expected of this file; check the mirror "
        "(base_url, --url), or pass its sizes"
    )


def _content_length(response) -> int | None:
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


def _body(
    url: str, max_bytes: int, timeout: float, deadline: float
) -> Iterator[tuple[bytes, int | None]]:
    """Yield ``url``'s body in blocks, each with the announced length (or None); stop with an
    error past ``max_bytes`` bytes or ``deadline`` seconds."""
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = _content_length(response)
            if total is not None and total > max_bytes:
                raise _too_large(url, f"announces {total} bytes, more than the {max_bytes}")
            done = 0
            # read1: whatever has arrived, so a trickle cannot hold one read past the deadline.
            while block := response.read1(min(_CHUNK, max_bytes + 1 - done)):
                done += len(block)
                if done > max_bytes:
                    raise _too_large(url, f"sent more than the {max_bytes}")
                if time.monotonic() - start > deadline:
                    raise _DownloadFailed(
                        f"download of {url} failed: not finished after the deadline of "
                        f"{deadline:g} s ({done} bytes in); allow more time for a slow link (the "
                        "deadline argument, or --deadline on the command line)"
                    )
                yield block, total
    except urllib.error.HTTPError as e:
        raise _DownloadFailed(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        hint = (
            " (a read brought nothing within the timeout; raise the timeout argument, or "
            "--timeout on the command line)"
            if isinstance(reason, TimeoutError)
            else ""
        )
        raise _DownloadFailed(f"download of {url} failed: {reason}{hint}") from None


def _fetcher(url: str, name: str, algo: str, expected: str, body, progress):
    """A writer for ``atomic_write``: stream ``body`` into the temporary file, hashing as it
    goes; a checksum mismatch raises, so the file never reaches its final name."""

    def fetch(tmp: str) -> None:
        h = hashlib.new(algo)
        done = 0
        with open(tmp, "wb") as out:
            for block, total in body:
                out.write(block)
                h.update(block)
                done += len(block)
                if progress is not None:
                    progress(name, done, total)
        got = h.hexdigest()
        if got != expected:
            raise ValueError(
                f"{url}: {algo} checksum mismatch (expected {expected}, got {got}); "
                "the file was discarded"
            )

    return fetch
