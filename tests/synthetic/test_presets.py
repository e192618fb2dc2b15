"""Presets: generated on first use into the cache, atomically, deterministically by seed."""

from __future__ import annotations

import dataclasses
import filecmp

import pytest

from ecg_data.paths import cache_root
from ecg_data.synthetic import ensure_preset
from ecg_data.synthetic import presets as P


@pytest.mark.parametrize(
    "name,marker",
    [("synth-ptbxl", "ptbxl_database.csv"), ("synth-mimic", "record_list.csv"), ("synth-cpsc2018", "A0001.hea")],
)
def test_preset_generated_under_cache(name, marker):
    root = ensure_preset(name, n=12, seed=1)
    assert root.parent == cache_root() / "synthetic" and root.name.startswith(name + "-")
    assert (root / marker).is_file() and (root / P.MANIFEST).is_file()
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")], (
        "no temp dir left behind (the generation lock file stays, by design)"
    )
    stamp = (root / P.MANIFEST).stat().st_mtime_ns
    assert ensure_preset(name, n=12, seed=1) == root
    assert (root / P.MANIFEST).stat().st_mtime_ns == stamp, "second call reuses the corpus"
    assert ensure_preset(name, n=12, seed=2) != root


def test_same_seed_same_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ECG_CACHE", str(tmp_path / "a"))
    a = ensure_preset("synth-ptbxl", n=10, seed=4)
    monkeypatch.setenv("ECG_CACHE", str(tmp_path / "b"))
    b = ensure_preset("synth-ptbxl", n=10, seed=4)
    assert a.name == b.name
    for rel in (
        "ptbxl_database.csv",
        "scp_statements.csv",
        "records500/00000/00007_hr.dat",
        "records100/00000/00010_lr.dat",
    ):
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def test_failed_generation_leaves_nothing(monkeypatch):
    def boom(root, records):
        next(iter(records))
        raise RuntimeError("disk full")

    monkeypatch.setitem(P.PRESETS, "synth-ptbxl", dataclasses.replace(P.PRESETS["synth-ptbxl"], writer=boom))
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_preset("synth-ptbxl", n=5, seed=9)
    assert not P.preset_dir("synth-ptbxl", n=5, seed=9).exists()
    assert not [
        p for p in (cache_root() / "synthetic").iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")
    ], "temp dir removed"


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        ensure_preset("synth-nope")


def test_synthetic_task_through_registry(monkeypatch):
    tasks = pytest.importorskip("ecg_data.tasks")
    monkeypatch.setitem(P.PRESETS, "synth-ptbxl", dataclasses.replace(P.PRESETS["synth-ptbxl"], default_n=120))
    task = tasks.get_task("synth_ptbxl_super")
    assert task.suite == "synthetic" and task.root.parent == cache_root() / "synthetic"
    assert set(task.classes) <= {"NORM", "MI", "STTC", "CD", "HYP"} and "NORM" in task.classes
    assert set(task.splits) == {"train", "val", "test"} and all(task.splits.values())


@pytest.mark.parametrize("task_name,preset", [("synth_cpsc2018", "synth-cpsc2018"), ("synth_mimic", "synth-mimic")])
def test_other_synthetic_tasks_through_registry(monkeypatch, task_name, preset):
    tasks = pytest.importorskip("ecg_data.tasks")
    monkeypatch.setitem(P.PRESETS, preset, dataclasses.replace(P.PRESETS[preset], default_n=80))
    task = tasks.get_task(task_name)
    assert task.suite == "synthetic" and task.root.name.startswith(preset + "-")
    assert all(task.splits[s] for s in ("train", "val", "test"))
    if task_name == "synth_cpsc2018":
        assert task.classes and set(task.classes) <= {"NORM", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE"}
    else:
        reports = task.reader().metadata().report
        assert reports.notna().all() and reports.str.endswith(".").all()


def test_synthetic_mimic_twin_keeps_a_larger_test_split(monkeypatch):
    """The synthetic twin splits 90/2/8 by subject (a report-generation test split large enough to compare
    statement F1); real MIMIC-IV-ECG keeps 96/2/2."""
    tasks = pytest.importorskip("ecg_data.tasks")
    from ecg_data.tasks import mimic

    monkeypatch.setitem(P.PRESETS, "synth-mimic", dataclasses.replace(P.PRESETS["synth-mimic"], default_n=400))
    task = tasks.get_task("synth_mimic")
    n = {s: len(v) for s, v in task.splits.items()}
    total = sum(n.values())
    assert abs(n["test"] / total - 0.08) < 0.03 and abs(n["val"] / total - 0.02) < 0.02
    assert tasks.TASKS.get("mimic_iv_ecg").split is mimic.subject_split and mimic.MIMIC_FRACTIONS == (0.96, 0.02, 0.02)
