import os

# Tests exercise the eager formulas unless they turn fused evaluation on themselves
# (tests/test_fused.py): compiling costs seconds per kernel.
os.environ.setdefault("ROBUSTVAE_COMPILE", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
