import os

# Tests exercise the eager formulas unless they turn fused evaluation on themselves
# (tests/test_fused.py): compiling costs seconds per kernel.
os.environ.setdefault("ROBUSTVAE_COMPILE", "0")
# Decoded datasets are cached per test session, never in the user's ~/.cache.
if "ROBUSTVAE_CACHE" not in os.environ:
    import tempfile

    os.environ["ROBUSTVAE_CACHE"] = tempfile.mkdtemp(prefix="robustvae-test-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


FASHION_MNIST = __import__("pathlib").Path("/usr/share/datasets/fashion-mnist")


def require_fashion_mnist() -> None:
    """The real Fashion-MNIST tests need Debian's dataset-fashion-mnist, which .ci/run installs:
    in CI its absence is a failure; on a developer's machine without it the tests skip."""
    if (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        return
    message = "Debian's dataset-fashion-mnist is not installed (apt-get install it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def assert_picture(path, size=None) -> None:
    """``path`` is a PNG of ``size`` (width, height) whose pixels are not all the same."""
    from PIL import Image

    with Image.open(path) as picture:
        assert picture.format == "PNG", path
        if size is not None:
            assert picture.size == tuple(size), (path, picture.size)
        low, high = picture.convert("L").getextrema()
        assert high > low, f"{path} is one flat colour"


@pytest.fixture
def toys(monkeypatch):
    """The toy kinds of tests/toys.py, registered for one test."""
    from toys import register

    from robustvae.kinds import KINDS

    registry = dict(KINDS)
    register(registry)
    for name in ("gan-toy", "paired-toy"):
        monkeypatch.setitem(KINDS, name, registry[name])


def value_and_gradients(loss, x, target):
    """``loss(x, target)`` (a scalar, detached) and its gradients with respect to x and to each
    of the loss's parameters, from one backward pass."""
    leaf = x.clone().requires_grad_(True)
    value = loss(leaf, target)
    value.backward()
    return value.detach(), [leaf.grad] + [p.grad for p in loss.parameters()]
