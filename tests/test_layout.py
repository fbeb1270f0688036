"""The package's module graph has no import cycles, counting the imports inside functions and
under ``TYPE_CHECKING`` too: a lazy import that hides a cycle is still one (the earlier
``models.config ↔ models.reconstruction`` and ``losses ↔ representations``)."""

import ast
from pathlib import Path

import robustvae

ROOT = Path(robustvae.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """robustvae modules that ``name`` imports, anywhere in its file: each imported module and
    the packages above it, except the packages that contain ``name`` (a package's own modules
    run after its __init__ starts)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for target in (n for n in names if n in known):
            while target and not (name == target or name.startswith(target + ".")):
                found.add(target)
                target = target.rpartition(".")[0]
    return found


def test_no_import_cycles():
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    known = set(paths)
    graph = {name: _imports(name, path, known) for name, path in paths.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt == node:
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" → ".join(c) for c in cycles[:5])


def test_the_metrics_work_on_tensors_alone():
    """robustvae.metrics imports no other part of robustvae (no data, training or models)."""
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    known = set(paths)
    for name, path in paths.items():
        if name == "robustvae.metrics" or name.startswith("robustvae.metrics."):
            outside = {
                m for m in _imports(name, path, known) if not m.startswith("robustvae.metrics")
            }
            assert outside <= {"robustvae"}, f"{name} imports {sorted(outside)}"


#: The layers below the evaluation side: they train and describe kinds; evaluating and comparing
#: runs sits above them and imports them, never the other way round.
BELOW_EVALUATION = (
    "robustvae.kinds",
    "robustvae.task",
    "robustvae.training",
    "robustvae.models",
    "robustvae.losses",
    "robustvae.data",
    "robustvae.restoration",
    "robustvae.depth",
)


def test_the_trainer_and_the_kinds_import_no_evaluation():
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    known = set(paths)
    for name, path in paths.items():
        if any(name == low or name.startswith(low + ".") for low in BELOW_EVALUATION):
            above = {
                m
                for m in _imports(name, path, known)
                if m.startswith(("robustvae.evaluation", "robustvae.experiments", "robustvae.cli"))
            }
            assert not above, f"{name} imports {sorted(above)}"


def test_every_kind_has_an_evaluator():
    from robustvae.evaluation import EVALUATORS, Evaluator
    from robustvae.kinds import KINDS

    assert set(EVALUATORS) == set(KINDS)
    assert all(isinstance(e, Evaluator) for e in EVALUATORS.values())


def test_the_cli_and_grids_load_without_the_metrics():
    # Reading the CLI or a grid needs no evaluator: they import torchmetrics (seconds), which
    # only scoring a run may load.
    import subprocess
    import sys

    code = (
        "import sys, robustvae.cli, robustvae.experiments, robustvae.evaluation;"
        "print(sorted(m for m in sys.modules if m.startswith(('torchmetrics', "
        "'robustvae.evaluation.evaluators'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
