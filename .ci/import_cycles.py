"""Fail on an import cycle between the modules of one package (run by .ci/run and pre-commit).

Every ``import`` / ``from ... import`` statement counts, also those inside functions: a lazy import hides a
cycle from the interpreter, it does not remove it. Packages: the four libraries, ``baselines`` and
``benchmarks``. A package's ``__init__`` re-exporting its modules is not a cycle (the edge from a module to its
own package's ``__init__`` is not counted).

    python .ci/import_cycles.py        # exit 1 and print each cycle found
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "ecg_data": ROOT / "packages/ecg-data/src/ecg_data",
    "ecg_encoders": ROOT / "packages/ecg-encoders/src/ecg_encoders",
    "ecg_text_align": ROOT / "packages/ecg-text-align/src/ecg_text_align",
    "ecg_eval": ROOT / "packages/ecg-eval/src/ecg_eval",
    "baselines": ROOT / "baselines",
    "benchmarks": ROOT / "benchmarks",
}


def module_names(name: str, root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the package."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _target(dotted: str, mods: dict[str, Path]) -> str | None:
    """The longest module prefix of ``dotted`` that is a module of the package."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in mods:
            return cand
    return None


def import_graph(name: str, root: Path) -> dict[str, set[str]]:
    """module -> modules of the same package it imports (absolute and relative imports, at any depth)."""
    mods = module_names(name, root)
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".")
                    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                    full = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    full = node.module or ""
                if full.split(".")[0] != name:
                    continue
                for alias in node.names:  # `from pkg import submodule` imports the submodule
                    sub = f"{full}.{alias.name}"
                    t = sub if sub in mods else _target(full, mods)
                    if t:
                        deps.add(t)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == name and (t := _target(alias.name, mods)):
                        deps.add(t)
        # a module importing its own package (or a parent package's __init__) is the re-export pattern
        parents = {".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 1)}
        graph[mod] = deps - {mod} - parents
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}
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


def main() -> int:
    bad = 0
    for name, root in PACKAGES.items():
        graph = import_graph(name, root)
        cycle = find_cycle(graph)
        if cycle:
            bad += 1
            print(f"import cycle inside {name}: {' -> '.join(cycle)}", file=sys.stderr)
        else:
            print(f"{name}: {len(graph)} modules, no import cycle")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
