"""A user's own method, kept OUTSIDE the package tree, registered and run through the harness to a leaderboard
row -- with the exact files docs/adding-a-method.md shows (extracted from its `<!-- file: ... -->` blocks)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from bl_e2e import REPO, compose

DOC = REPO / "docs" / "adding-a-method.md"


def write_doc_files(dest: Path) -> list[Path]:
    text = DOC.read_text()
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S)
    assert {name for name, _ in blocks} == {"my_method.py", "method/my_method.yaml"}
    out = []
    for name, body in blocks:
        p = dest / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
        out.append(p)
    return out


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


def test_user_method_outside_the_repo_to_a_leaderboard_row(tmp_path, small_synthetic, monkeypatch):
    from baselines.registry import METHODS, register_method
    from benchmarks.pipeline import run
    from benchmarks.run import expand_method_dir

    user_dir = tmp_path / "my_methods"
    write_doc_files(user_dir)
    assert REPO not in user_dir.parents  # really outside the package tree
    monkeypatch.setattr(sys, "path", list(sys.path))  # expand_method_dir prepends user_dir; undone after the test
    argv = expand_method_dir(["method=my_method", f"method_dir={user_dir}", *_short(tmp_path)])
    assert f"hydra.searchpath=[file://{user_dir.resolve()}]" in argv and str(user_dir.resolve()) in sys.path

    register_method("my_method", "my_method:MyMethod")
    try:
        assert METHODS.get("my_method").method_name == "my_method"
        # the same overrides the CLI composes (compose() adds the search path that method_dir= asked for)
        rest = [a for a in argv if not a.startswith(("hydra.searchpath=", "method_dir="))]
        run(compose(rest, search=user_dir.resolve()))
    finally:
        METHODS._entries.pop("my_method", None)

    from ecg_eval.results import read_result

    for task in ("synth_ptbxl_super", "synth_cpsc2018"):
        zs = read_result(tmp_path / "results" / "synthetic" / "my_method" / task / "zero_shot-seed0.json")
        assert zs["status"] == "ok" and zs["encoder_card"]["name"] == "my_method"
        lp = read_result(tmp_path / "results" / "synthetic" / "my_method" / task / "linear_probe-100-seed0.json")
        assert lp["status"] == "ok" and lp["pretrained_on"] == ["synth-mimic"]
    board = (tmp_path / "leaderboard" / "README.md").read_text()
    assert "| my_method " in board


@pytest.mark.slow
def test_user_method_via_the_cli(tmp_path):
    """The documented command itself (subprocess, default synthetic corpus sizes: minutes)."""
    user_dir = tmp_path / "my_methods"
    write_doc_files(user_dir)
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
