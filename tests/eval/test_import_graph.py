"""ecg-eval's modules import on their own, and no two of them import each other (directly or around a loop).

Why: the harness dispatches to the modes through the registry (``ecg_eval.modes``) and the modes start their
results from ``ecg_eval.cells``, so no mode imports the harness; a cycle would come back the day one of them did.
Every import statement counts, also those inside functions (a lazy import hides a cycle, it does not remove it).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ecg_eval

PACKAGE = Path(ecg_eval.__file__).resolve().parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def import_graph(package: Path = PACKAGE, name: str = "ecg_eval") -> dict[str, set[str]]:
    """module -> the package's modules it imports (every ``import``/``from ... import`` statement, at any depth)."""
    mods = {p.stem for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                parts = node.module.split(".")
                if parts[0] != name:
                    continue
                if len(parts) > 1:
                    deps.add(parts[1])
                else:  # from ecg_eval import bootstrap
                    deps |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith(name + ".")}
        graph[path.stem] = deps - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_check_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_ecg_eval() -> None:
    graph = import_graph()
    assert find_cycle(graph) is None, f"import cycle inside ecg_eval: {' -> '.join(find_cycle(graph) or [])}"
    for mode_module in ("classification", "finetune", "retrieval", "report_generation", "transfer"):
        assert "harness" not in graph[mode_module], f"{mode_module} imports the harness"


def test_each_module_imports_on_its_own_without_hydra_or_lightning() -> None:
    """Each module first in a fresh interpreter state of the package (CI's drift environment has no hydra,
    omegaconf or lightning: no ecg_eval module may import them when it is imported)."""
    code = f"""
import importlib, sys
failed = []
for name in {MODULES!r}:
    for m in [m for m in sys.modules if m == "ecg_eval" or m.startswith("ecg_eval.")]:
        del sys.modules[m]
    try:
        importlib.import_module("ecg_eval." + name)
    except Exception as e:
        failed.append(f"{{name}}: {{type(e).__name__}}: {{e}}")
heavy = sorted(m for m in ("hydra", "omegaconf", "lightning") if m in sys.modules)
print(failed, heavy)
sys.exit(1 if failed or heavy else 0)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
