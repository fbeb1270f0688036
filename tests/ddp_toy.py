"""Run one toy training under torchrun: ``ddp_toy.py OUT KIND KEY=VALUE…``. Every rank then
writes its parameters and buffers to OUT/rank<r>.safetensors."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from safetensors.torch import save_file  # noqa: E402
from toys import register  # noqa: E402

from robustvae.kinds import KINDS  # noqa: E402
from robustvae.training import RunConfig, train  # noqa: E402
from robustvae.training.distributed import end_worker  # noqa: E402

out, kind, *pairs = sys.argv[1:]
register(KINDS)
settings = {k: json.loads(v) for k, v in (p.split("=", 1) for p in pairs)}
result = train(RunConfig.make(kind=kind, **settings), Path(out) / "run")
state = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
save_file(state, str(Path(out) / f"rank{os.environ.get('RANK', '0')}.safetensors"))
end_worker(0)
