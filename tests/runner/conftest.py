"""Fixtures for the runner tests: the toy method directory, composed configs, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[2]
TOY = Path(__file__).resolve().parent / "toy"
CONFIGS = REPO / "configs"

if str(TOY) not in sys.path:  # the toy method's module (what method_dir= does for the CLI)
    sys.path.insert(0, str(TOY))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """Hydra's compose API over the repository's configs plus the toy directory on the search path."""

    def _compose(overrides: list[str], search: Path = TOY) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            return compose("config", overrides=[*overrides, f"hydra.searchpath=[file://{search}]"])

    return _compose


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """``python benchmarks/run.py ARGS`` in a subprocess, cwd = tmp_path, with this worktree's packages importable."""

    def _run(args: list[str], env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **(env or {})}
        src = [str(REPO / "packages" / p / "src") for p in ("ecg-data", "ecg-encoders", "ecg-text-align", "ecg-eval")]
        full_env["PYTHONPATH"] = os.pathsep.join([*src, str(REPO), full_env.get("PYTHONPATH", "")])
        full_env.setdefault("OMP_NUM_THREADS", "1")
        return subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "run.py"), *args],
            cwd=tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return _run
