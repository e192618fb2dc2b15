"""The import-cycle check of .ci/run: it finds a cycle (also through a lazy or relative import) and the tree has none."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _checker():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / ".ci" / "import_cycles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_finds_a_cycle_through_a_lazy_relative_import(tmp_path: Path) -> None:
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from toy.a import f\n")  # re-export: not a cycle
    (pkg / "a.py").write_text("from toy.sub import b\n\ndef f():\n    return b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def g():\n    from ..a import f\n    return f\n")
    chk = _checker()
    graph = chk.import_graph("toy", pkg)
    assert graph["toy.a"] == {"toy.sub.b"}
    assert graph["toy.sub.b"] == {"toy.a"}
    assert chk.find_cycle(graph) == ["toy.a", "toy.sub.b", "toy.a"]
    (pkg / "sub" / "b.py").write_text("def g():\n    return 1\n")
    assert chk.find_cycle(chk.import_graph("toy", pkg)) is None


def test_no_import_cycle_in_the_tree() -> None:
    chk = _checker()
    for name, root in chk.PACKAGES.items():
        graph = chk.import_graph(name, root)
        assert len(graph) > 3, name
        assert chk.find_cycle(graph) is None, f"{name}: {' -> '.join(chk.find_cycle(graph))}"
