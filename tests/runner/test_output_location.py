"""A user's run leaves the clone clean (issue #10): results and the leaderboard go under the git-ignored run
store by default; writing into the committed leaderboard/ is the explicit ``output_dir=leaderboard``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.pipeline import run

REPO = Path(__file__).resolve().parents[2]


def test_default_output_is_under_the_ignored_run_store(compose_cfg):
    cfg = compose_cfg([])
    assert Path(cfg.results_dir) == Path("runs/leaderboard/results")
    assert Path(cfg.leaderboard_dir) == Path("runs/leaderboard")
    for p in (
        "runs/leaderboard/results/synthetic/melp/synth_ptbxl_super/zero_shot-seed0.json",
        "runs/leaderboard/README.md",
    ):
        ignored = subprocess.run(["git", "check-ignore", "-q", p], cwd=REPO)
        assert ignored.returncode == 0, f"{p} would show in git status"
    # the papers' numbers still come from the committed file
    assert Path(cfg.reference_file) == Path("leaderboard/reference.yaml") and (REPO / cfg.reference_file).is_file()


def test_contributors_write_the_committed_leaderboard_explicitly(compose_cfg):
    cfg = compose_cfg(["output_dir=leaderboard"])
    assert Path(cfg.results_dir) == Path("leaderboard/results") and Path(cfg.leaderboard_dir) == Path("leaderboard")


def test_toy_run_without_output_overrides_writes_under_run_store(tmp_path, compose_cfg, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(["method=toy", "dataset=toy", "backend._target_=ecgbench_toy.ToyBackend", "eval=quick"])
    with caplog.at_level("INFO", logger="ecgbench"):
        summary = run(cfg)
    results = sorted((tmp_path / "runs" / "leaderboard" / "results").rglob("*.json"))
    assert results and (tmp_path / "runs" / "leaderboard" / "README.md").is_file()
    assert not (tmp_path / "leaderboard").exists()
    assert summary["results_dir"] == Path("runs/leaderboard/results")
    assert any("done: result files under runs/leaderboard/results" in r.getMessage() for r in caplog.records)
