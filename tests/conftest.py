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
