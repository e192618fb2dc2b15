"""ecg-eval's modules import on their own, and no two of them import each other (directly or around a loop).

Why: the harness dispatches to the modes through the registry (``ecg_eval.modes``) and the modes start their
results from ``ecg_eval.cells``, so no mode imports the harness; a cycle would come back the day one of them did.
Every import statement counts, also those inside functions (a lazy import hides a cycle, it does not remove it).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import ecg_eval

PACKAGE = Path(ecg_eval.__file__).resolve().parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _checker():
    """The tree-wide check of .ci/import_cycles.py (one cycle finder for CI, pre-commit and this test)."""
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("import_cycles", root / ".ci" / "import_cycles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_import_cycle_inside_ecg_eval() -> None:
    chk = _checker()
    graph = chk.import_graph("ecg_eval", PACKAGE)
    cycle = chk.find_cycle(graph)
    assert cycle is None, f"import cycle inside ecg_eval: {' -> '.join(cycle)}"
    for mode_module in ("classification", "finetune", "retrieval", "report_generation", "transfer"):
        assert "ecg_eval.harness" not in graph[f"ecg_eval.{mode_module}"], f"{mode_module} imports the harness"


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
