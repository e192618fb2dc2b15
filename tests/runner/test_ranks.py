"""Rank awareness of the runner (no processes started): who writes, what a DDP child runs, loggers from configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.pipeline import ranks
from benchmarks.pipeline.store import RunStore, read_marker, write_marker
from ecg_text_align.distributed import launched_rank
from ecg_text_align.train import LoggerConfigError, build_loggers

LAUNCH_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_NTASKS", "SLURM_PROCID", "TORCHELASTIC_RUN_ID")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for v in LAUNCH_VARS:
        monkeypatch.delenv(v, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "env,rank",
    [
        ({}, 0),
        ({"RANK": "3", "LOCAL_RANK": "1"}, 3),  # torchrun
        ({"LOCAL_RANK": "1", "NODE_RANK": "0"}, 1),  # a child of Lightning's launcher
        ({"LOCAL_RANK": "0", "NODE_RANK": "0"}, 0),  # Lightning's rank 0 after it launched
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, 1_000_000),  # local rank 0 of the second node: not global 0
        ({"SLURM_NTASKS": "16", "SLURM_PROCID": "5"}, 5),  # srun
        ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, 0),  # a single-task allocation
    ],
)
def test_launched_rank_from_each_launcher(env: dict, rank: int, clean_env: pytest.MonkeyPatch) -> None:
    for k, v in env.items():
        clean_env.setenv(k, v)
    assert launched_rank() == rank
    assert ranks.externally_launched() == (bool(env) and env != {"SLURM_NTASKS": "1", "SLURM_PROCID": "0"})


def test_only_global_rank_zero_writes_events_and_markers(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    store = RunStore(tmp_path / "runs")
    out = tmp_path / "stage" / "out.ckpt"
    out.parent.mkdir()
    out.write_text("x")
    clean_env.setenv("RANK", "1")
    store.log_event("r", "pretrain", "ran")
    write_marker(out.parent, out)
    assert store.events() == [] and read_marker(out.parent) is None
    clean_env.setenv("RANK", "0")
    store.log_event("r", "pretrain", "ran")
    write_marker(out.parent, out)
    assert [e["stage"] for e in store.events()] == ["pretrain"] and read_marker(out.parent) is not None


def test_child_command_is_this_jobs_overrides_not_the_sweep() -> None:
    cmd = ranks.child_command(
        ["method=merl", "seed=1", "trainer=ddp"],
        ["hydra.mode=MULTIRUN", "hydra.searchpath=[file:///x]"],
        "/runs/_hydra/m/1",
        2,
    )
    assert cmd[1].endswith("benchmarks/run.py") and "-m" not in cmd
    assert cmd[2:5] == ["method=merl", "seed=1", "trainer=ddp"]
    assert "hydra.searchpath=[file:///x]" in cmd and "hydra.mode=MULTIRUN" not in cmd
    assert "hydra.run.dir='/runs/_hydra/m/1'" in cmd and "hydra.output_subdir=null" in cmd
    # method_dir= is expanded into the search path by run.py itself: never both
    with_dir = ranks.child_command(["method_dir=/m"], ["hydra.searchpath=[file:///m]"], "/d", 1)
    assert not any(c.startswith("hydra.searchpath=") for c in with_dir)


def test_install_child_command_replaces_lightnings_hydra_command() -> None:
    from lightning.pytorch.strategies.launchers import subprocess_script as launcher

    before = launcher._hydra_subprocess_cmd
    try:
        ranks.install_child_command()
        assert launcher._hydra_subprocess_cmd is ranks._hydra_child_cmd
    finally:
        launcher._hydra_subprocess_cmd = before


def test_reset_after_job_drops_the_launchers_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.delenv("MASTER_PORT", raising=False)
    before = ranks.env_snapshot()
    clean_env.setenv("MASTER_PORT", "12345")
    clean_env.setenv("LOCAL_RANK", "0")
    ranks.reset_after_job(before)
    assert "MASTER_PORT" not in os.environ and "LOCAL_RANK" not in os.environ


def test_loggers_several_at_once_none_and_a_missing_package(tmp_path: Path) -> None:
    two = build_loggers(
        {
            "csv": {"_target_": "lightning.pytorch.loggers.CSVLogger", "name": "logs", "version": 0},
            "csv2": {"_target_": "lightning.pytorch.loggers.CSVLogger", "name": "more"},
        },
        tmp_path,
    )
    assert [type(l).__name__ for l in two] == ["CSVLogger", "CSVLogger"]
    assert Path(two[0].log_dir) == tmp_path / "logs" / "version_0"  # save_dir defaults to the stage directory
    assert build_loggers(False, tmp_path) is False
    assert type(build_loggers(None, tmp_path)[0]).__name__ == "CSVLogger"  # the default
    with pytest.raises(LoggerConfigError, match="cannot import"):
        build_loggers({"x": {"_target_": "no_such_pkg.Logger"}}, tmp_path)
    with pytest.raises(LoggerConfigError, match="expected"):
        build_loggers({"x": "csv"}, tmp_path)


def test_logger_group_composes(compose_cfg) -> None:
    cfg = compose_cfg(["logger=[csv,tensorboard]"])
    assert set(cfg.trainer.logger) == {"csv", "tensorboard"}
    assert compose_cfg(["logger=none"]).trainer.logger is False
    from benchmarks.pipeline.store import run_address

    # the logger choice is not part of the run address
    assert run_address(compose_cfg(["logger=none"])) == run_address(compose_cfg([]))
