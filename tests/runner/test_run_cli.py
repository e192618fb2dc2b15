"""benchmarks/run.py as a user runs it: subprocess, exit codes, messages, resume after a kill."""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.pipeline.errors import InjectedStop
from benchmarks.pipeline.store import RunStore

TOY = Path(__file__).resolve().parent / "toy"


def _args(tmp: Path, method: str = "toy", dataset: str = "toy") -> list[str]:
    return [
        f"method={method}",
        f"dataset={dataset}",
        f"method_dir={TOY}",
        "backend._target_=ecgbench_toy.ToyBackend",
        "eval=quick",
        f"run_store={tmp / 'runs'}",
        f"results_dir={tmp / 'results'}",
        f"leaderboard_dir={tmp / 'leaderboard'}",
    ]


def test_resume_after_kill_following_zero_shot(tmp_path, cli):
    calls = tmp_path / "calls.txt"
    env = {"TOY_CALLS": str(calls), "ECGBENCH_STOP_AFTER": "zero_shot"}
    first = cli(_args(tmp_path), env=env)
    assert first.returncode == InjectedStop.EXIT_CODE, first.stderr
    results = sorted(p.name for p in (tmp_path / "results").rglob("*.json"))
    assert results == ["zero_shot-seed0.json", "zero_shot-seed0.json"]
    assert not (tmp_path / "leaderboard" / "README.md").exists()

    second = cli(_args(tmp_path), env={"TOY_CALLS": str(calls)})
    assert second.returncode == 0, second.stderr
    events = [(e["stage"], e["status"]) for e in RunStore(tmp_path / "runs").events()]
    n_first = events.index(("zero_shot", "ran")) + 1
    assert events[n_first:] == [
        ("pretrain", "skipped"),
        ("zero_shot", "skipped"),
        ("linear_probe", "ran"),
        ("linear_probe_paper", "ran"),
        ("retrieval", "ran"),
        ("report_generation", "ran"),
        ("publish", "ran"),
    ]
    ran = [s for s, status in events if status == "ran"]
    assert len(ran) == len(set(ran)), f"a stage ran twice: {ran}"
    assert calls.read_text().split() == ["init", "main", "load", "load"]  # pretraining stages ran once
    assert (tmp_path / "leaderboard" / "README.md").is_file()
    assert "linear_probe: ran 6 cells" in second.stdout + second.stderr
    assert "zero_shot: skipped" in second.stdout + second.stderr


def test_unknown_method_lists_valid_names(tmp_path, cli):
    out = cli(_args(tmp_path, method="no_such_method"))
    assert out.returncode != 0
    assert "Could not find 'method/no_such_method'" in out.stderr
    assert "Available options in 'method'" in out.stderr and "\ttoy\n" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_dataset_lists_valid_names(tmp_path, cli):
    out = cli(_args(tmp_path, dataset="ptbxl_superr"))
    assert out.returncode != 0
    assert "Available options in 'dataset'" in out.stderr
    for name in ("ptbxl_super", "cpsc2018", "csn", "synthetic"):
        assert f"\t{name}\n" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_dataset_is_one_clean_message(tmp_path, cli):
    out = cli(_args(tmp_path, dataset="toy_missing"))
    assert out.returncode == 2
    assert (
        out.stderr.strip().splitlines()[-1]
        == "error: toy_missing: expected <root>/toy/RECORDS; published at https://example.org/toy"
    )
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "runs" / "toy").exists()  # stopped before pretraining


def test_method_dir_outside_repo_and_multirun(tmp_path, cli):
    """A user's method in its own directory, found via method_dir=, swept over two seeds with -m."""
    ext = tmp_path / "elsewhere"
    (ext / "method").mkdir(parents=True)
    shutil.copy(TOY / "ecgbench_toy.py", ext / "user_method.py")
    (ext / "method" / "mine.yaml").write_text(
        (TOY / "method" / "toy.yaml")
        .read_text()
        .replace("ecgbench_toy.", "user_method.")
        .replace("name: toy", "name: mine")
    )
    (ext / "dataset").mkdir()
    shutil.copy(TOY / "dataset" / "toy.yaml", ext / "dataset" / "toy.yaml")
    args = [a for a in _args(tmp_path, method="mine") if not a.startswith(("method_dir=", "backend."))]
    out = cli(["-m", *args, f"method_dir={ext}", "backend._target_=user_method.ToyBackend", "seed=0,1"])
    assert out.returncode == 0, out.stderr
    names = {p.relative_to(tmp_path / "results").parts[1] for p in (tmp_path / "results").rglob("*.json")}
    assert names == {"mine", "mine-pt1"}
    assert len(list((tmp_path / "runs" / "mine").glob("*-seed*"))) == 2
