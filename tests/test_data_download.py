"""robustvae.data.download_mnist against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from robustvae.data import MNIST_GZ_MD5, MNIST_URL, download_mnist, load_dataset, write_idx


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Loads without an explicit cache_dir write under tmp_path, never ~/.cache."""
    monkeypatch.setenv("ROBUSTVAE_CACHE", str(tmp_path / "default-cache"))


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields (base_url, folder, list of requested paths)."""
    www = tmp_path / "www"
    www.mkdir()
    requests: list[str] = []

    class Handler(_Handler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(www))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", www, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _publish(www: Path) -> dict[str, str]:
    """Four tiny gzipped IDX files; returns their checksums (MD5 for two, SHA-256 for two)."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(6, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([3, 4], np.uint8),
    }
    sums = {}
    for i, (name, a) in enumerate(arrays.items()):
        data = write_idx(www / name, a).read_bytes()
        sums[name] = (hashlib.md5 if i % 2 else hashlib.sha256)(data).hexdigest()
    return sums


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_official_defaults():
    assert MNIST_URL.startswith("https://")
    assert sorted(MNIST_GZ_MD5) == sorted(
        f"{p}-{k}-idx{d}-ubyte.gz"
        for p in ("train", "t10k")
        for k, d in (("images", 3), ("labels", 1))
    )
    assert MNIST_GZ_MD5["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"


def test_download_verifies_and_loads(server, tmp_path):
    url, www, requests = server
    sums = _publish(www)
    seen = []
    paths = download_mnist(
        tmp_path / "mnist", url, sums, progress=lambda n, done, total: seen.append((n, total))
    )
    assert [p.name for p in paths] == list(sums)
    for p in paths:
        assert p.read_bytes() == (www / p.name).read_bytes()
    assert len(requests) == 4 and not _leftovers(tmp_path / "mnist")
    assert {n for n, _ in seen} == set(sums)
    assert all(total == (www / n).stat().st_size for n, total in seen)
    with pytest.warns(UserWarning, match="differs from the official"):
        ds = load_dataset("mnist", "test", root=tmp_path / "mnist", cache_dir=tmp_path / "c")
    assert ds.labels.tolist() == [3, 4] and ds.images.shape == (2, 1, 28, 28)
    assert torch.all((0 <= ds.images) & (ds.images <= 1))

    # Present and valid: nothing is downloaded again, unless forced.
    download_mnist(tmp_path / "mnist", url, sums)
    assert len(requests) == 4
    download_mnist(tmp_path / "mnist", url.rstrip("/"), sums, force=True)
    assert len(requests) == 8


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, www, _ = server
    sums = _publish(www)
    sums["t10k-images-idx3-ubyte.gz"] = "0" * 64
    dest = tmp_path / "mnist"
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: sha256 checksum mismatch"):
        download_mnist(dest, url, sums)
    assert sorted(p.name for p in dest.iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]


def test_corrupted_local_file_is_replaced(server, tmp_path):
    url, www, requests = server
    sums = _publish(www)
    dest = tmp_path / "mnist"
    download_mnist(dest, url, sums)
    (dest / "train-labels-idx1-ubyte.gz").write_bytes(b"damaged")
    download_mnist(dest, url, sums)
    assert len(requests) == 5
    assert (dest / "train-labels-idx1-ubyte.gz").read_bytes() == (
        www / "train-labels-idx1-ubyte.gz"
    ).read_bytes()


def test_http_error_names_the_url(server, tmp_path):
    url, www, _ = server
    with pytest.raises(
        OSError, match=r"^download of http://127\.0\.0\.1:\d+/absent\.gz failed: HTTP 404"
    ):
        download_mnist(tmp_path / "d", url, {"absent.gz": "0" * 32})
    assert not list((tmp_path / "d").iterdir())


def test_unreachable_server(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OSError, match="failed"):
        download_mnist(tmp_path / "d", f"http://127.0.0.1:{port}/", {"a.gz": "0" * 32}, timeout=5)


def test_bad_checksum_strings(tmp_path):
    with pytest.raises(ValueError, match="neither a hex MD5"):
        download_mnist(tmp_path, "http://127.0.0.1:9/", {"a.gz": "abc"})
    with pytest.raises(ValueError, match="neither a hex MD5"):
        download_mnist(tmp_path, "http://127.0.0.1:9/", {"a.gz": "z" * 32})


@contextlib.contextmanager
def _serving(respond):
    """A server on 127.0.0.1 answering every GET with ``respond(handler)``; yields its URL."""

    class Handler(_Handler):
        def do_GET(self):
            respond(self)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


class _Body:
    """Answers with ``size`` zero bytes, ``block`` at a time ``pause`` seconds apart, and counts
    the bytes the connection took before the client hung up."""

    def __init__(self, size: int, block: int, pause: float = 0.0, announce: bool = True):
        self.size, self.block, self.pause, self.announce = size, block, pause, announce
        self.sent = 0
        self.finished = threading.Event()

    def __call__(self, handler) -> None:
        try:
            handler.send_response(200)
            if self.announce:
                handler.send_header("Content-Length", str(self.size))
            handler.end_headers()
            while self.sent < self.size:
                handler.wfile.write(bytes(self.block))
                self.sent += self.block
                time.sleep(self.pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.finished.set()


_FIFTY_MB = 50 * 2**20


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "no-content-length"])
def test_a_body_past_the_expected_size_is_cut_off(tmp_path, announce):
    body = _Body(_FIFTY_MB, 2**16, announce=announce)
    dest = tmp_path / "d"
    with _serving(body) as url:
        with pytest.raises(ValueError) as caught:
            download_mnist(dest, url, {"big.gz": "0" * 32}, sizes={"big.gz": 1000})
        assert body.finished.wait(10)
    what = f"announces {_FIFTY_MB} bytes, more than" if announce else "sent more than"
    assert str(caught.value) == (
        f"{url}big.gz: the server {what} the 1100 bytes expected of this file; check the mirror "
        "(base_url, --url), or pass its sizes"
    )
    assert body.sent < _FIFTY_MB // 4  # what the sockets buffered, not the whole body
    assert not list(dest.iterdir())


def test_the_default_sizes_are_the_official_files_plus_the_margin(tmp_path):
    from robustvae.data.download import SIZE_MARGIN
    from robustvae.data.idx import MNIST_GZ_SIZES

    assert list(MNIST_GZ_SIZES) == list(MNIST_GZ_MD5)
    official = MNIST_GZ_SIZES["train-images-idx3-ubyte.gz"]
    with _serving(_Body(_FIFTY_MB, 2**16)) as url:
        with pytest.raises(ValueError) as caught:
            download_mnist(tmp_path / "d", url)
    assert str(caught.value).startswith(
        f"{url}train-images-idx3-ubyte.gz: the server announces {_FIFTY_MB} bytes, more than "
        f"the {official + int(official * SIZE_MARGIN)} bytes expected"
    )


def test_a_trickling_server_misses_the_deadline(tmp_path):
    body = _Body(100, 1, pause=0.1)
    dest = tmp_path / "d"
    with _serving(body) as url:
        start = time.monotonic()
        with pytest.raises(OSError) as caught:
            download_mnist(dest, url, {"slow.gz": "0" * 32}, timeout=5, deadline=1.0)
        took = time.monotonic() - start
    message = str(caught.value)
    assert message.startswith(
        f"download of {url}slow.gz failed: not finished after the deadline of 1 s ("
    )
    assert message.endswith(
        "bytes in); allow more time for a slow link (the deadline argument, or --deadline on "
        "the command line)"
    )
    assert 1.0 <= took < 1.5 and body.sent < 20
    assert not list(dest.iterdir())


def test_the_cli_passes_the_deadline_and_refuses_a_bad_one(tmp_path, capsys):
    from robustvae.cli import main

    body = _Body(100, 1, pause=0.1)
    with _serving(body) as url:
        start = time.monotonic()
        code = main(["data", "download", "mnist", "--dest", str(tmp_path / "d"), "--url", url,
                     "--deadline", "0.5"])  # fmt: skip
        took = time.monotonic() - start
    assert code == 2 and 0.5 <= took < 3
    assert "not finished after the deadline of 0.5 s" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "download", "mnist", "--deadline", "-3"])
    assert "--deadline: expected a positive number of seconds, got '-3'" in capsys.readouterr().err


def test_the_cli_passes_the_timeout(tmp_path, capsys):
    from robustvae.cli import main

    body = _Body(100, 1, pause=1.0)  # a byte a second: every read waits past a 0.3 s timeout
    with _serving(body) as url:
        code = main(["data", "download", "mnist", "--dest", str(tmp_path / "d"), "--url", url,
                     "--timeout", "0.3"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "timed out" in err and "--timeout on the command line" in err
