"""Declared dependencies are exactly the imported ones, per package (issue #16).

Every module imported anywhere in a package's source (lazy imports inside functions included) must be a
declared dependency, and every declared dependency must be imported. Imports inside ``try: ... except
ImportError`` are optional: they need not be declared, and a declared one counts as imported.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKSPACE = {
    "ecg_data": "ecg-data",
    "ecg_encoders": "ecg-encoders",
    "ecg_text_align": "ecg-text-align",
    "ecg_eval": "ecg-eval",
}
#: Import name -> distribution, for the few whose names differ and that an editable or absent install hides.
KNOWN = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "iterstrat": "iterative-stratification",
    "PIL": "pillow",
    "hydra": "hydra-core",
    "lightning": "lightning",
    "huggingface_hub": "huggingface-hub",
}
PACKAGES = {
    "ecg-data": [REPO / "packages/ecg-data/src"],
    "ecg-encoders": [REPO / "packages/ecg-encoders/src"],
    "ecg-text-align": [REPO / "packages/ecg-text-align/src"],
    "ecg-eval": [REPO / "packages/ecg-eval/src"],
    "ecglang-bench": [REPO / "benchmarks", REPO / "baselines"],
}
#: the root project's own top-level packages (imported by their names, not declared as dependencies)
OWN_MODULES = {"ecglang-bench": {"benchmarks", "baselines"}}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _optional(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``try:`` whose handlers catch ImportError / ModuleNotFoundError."""
    child, p = node, parents.get(node)
    while p is not None:
        if isinstance(p, ast.Try) and child in p.body:
            for h in p.handlers:
                names = [h.type] if not isinstance(h.type, ast.Tuple) else list(h.type.elts)
                if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
                    return True
        child, p = p, parents.get(p)
    return False


def imported_modules(roots: list[Path], *, optional: bool = False) -> set[str]:
    """Top-level modules imported outside (``optional=False``) or inside (``True``) ``try/except ImportError``."""
    out: set[str] = set()
    for root in roots:
        for f in root.rglob("*.py"):
            tree = ast.parse(f.read_text(encoding="utf-8"))
            parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
            for n in ast.walk(tree):
                if isinstance(n, ast.Import):
                    names = [a.name for a in n.names]
                elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
                    names = [n.module]
                else:
                    continue
                if _optional(n, parents) == optional:
                    out |= {x.split(".")[0] for x in names}
    return out - set(sys.stdlib_module_names) - {"__future__"}


def distribution(module: str, p2d: dict[str, list[str]]) -> str:
    if module in WORKSPACE:
        return WORKSPACE[module]
    if module in KNOWN:
        return KNOWN[module]
    dists = p2d.get(module)
    if not dists:
        pytest.fail(f"cannot tell which distribution provides imported module {module!r}; add it to KNOWN")
    return _norm(dists[0])


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_declared_dependencies_are_the_imported_ones(package: str) -> None:
    pyproject = REPO / ("pyproject.toml" if package == "ecglang-bench" else f"packages/{package}/pyproject.toml")
    declared = {
        _norm(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0])
        for d in tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    }
    p2d = md.packages_distributions()
    own = {package.replace("-", "_")} | OWN_MODULES.get(package, set())
    imported = {distribution(m, p2d) for m in imported_modules(PACKAGES[package]) - own}
    optional = {distribution(m, p2d) for m in imported_modules(PACKAGES[package], optional=True) - own}
    assert sorted(imported - declared) == [], f"{pyproject}: imported but not declared"
    assert sorted(declared - imported - optional) == [], f"{pyproject}: declared but never imported"
