"""A contributor's method, kept OUTSIDE the repository: the exact files docs/adding-a-method.md shows (extracted
from its ``<!-- file: ... -->`` blocks), found through ``method_dir=``, pretrained and scored by ``benchmarks/run.py``
to a leaderboard row, and the count of files the contributor wrote (docs/architecture.md, "Where a newcomer adds")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from contrib import REPO, compose_run, contributed_files, write_doc_files

DOC = REPO / "docs" / "adding-a-method.md"
#: the whole contribution: a model + stage module and its config (<= 2 files)
FILES = ["method/my_method.yaml", "my_method.py"]


def _short(tmp: Path) -> list[str]:
    return [
        "trainer.max_steps=3",
        "trainer.val_check_interval=null",
        "eval=quick",
        "eval.fractions=[1.0]",
        "eval.bootstrap=20",
        "dataset.tasks=[synth_ptbxl_super,synth_cpsc2018]",
        f"run_store={tmp / 'runs'}",
        f"results_dir={tmp / 'results'}",
        f"leaderboard_dir={tmp / 'leaderboard'}",
    ]


def test_toy_method_outside_the_repo_to_a_leaderboard_row(tmp_path, small_synthetic, monkeypatch):
    from baselines.registry import METHODS, register_method
    from benchmarks.pipeline import run
    from ecg_eval.results import read_result

    user_dir = tmp_path / "my_methods"
    assert sorted(write_doc_files(DOC, user_dir)) == FILES
    assert REPO not in user_dir.resolve().parents  # really outside the repository
    monkeypatch.setattr(sys, "path", list(sys.path))  # method_dir= prepends user_dir; undone after the test
    cfg = compose_run(["method=my_method", f"method_dir={user_dir}", *_short(tmp_path)])
    assert str(user_dir.resolve()) in sys.path

    register_method("my_method", "my_method:MyMethod")  # optional (docs step 3): lookup by name from Python
    try:
        assert METHODS.get("my_method").method_name == "my_method"
        run(cfg)
    finally:
        METHODS._entries.pop("my_method", None)
        sys.modules.pop("my_method", None)

    for task in ("synth_ptbxl_super", "synth_cpsc2018"):
        zs = read_result(tmp_path / "results" / "synthetic" / "my_method" / task / "zero_shot-seed0.json")
        assert zs["status"] == "ok" and zs["encoder_card"]["name"] == "my_method"
        lp = read_result(tmp_path / "results" / "synthetic" / "my_method" / task / "linear_probe-100-seed0.json")
        assert lp["status"] == "ok" and lp["pretrained_on"] == ["synth-mimic"]
    assert "| my_method " in (tmp_path / "leaderboard" / "README.md").read_text()
    assert contributed_files(user_dir) == FILES  # a method in <= 2 files


@pytest.mark.slow
def test_toy_method_via_the_cli(tmp_path):
    """The documented command itself (subprocess, default synthetic corpus sizes: minutes)."""
    user_dir = tmp_path / "my_methods"
    write_doc_files(DOC, user_dir)
    src = [str(REPO / "packages" / p / "src") for p in ("ecg-data", "ecg-encoders", "ecg-text-align", "ecg-eval")]
    env = {
        "PYTHONPATH": ":".join([*src, str(REPO)]),
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
        "ECG_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "method=my_method",
            f"method_dir={user_dir}",
            *_short(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| my_method " in (tmp_path / "leaderboard" / "README.md").read_text()
    assert contributed_files(user_dir) == FILES
